import AArch64
import Devices
import GuestMemory
import KVM

/// An AArch64 machine shaped like `qemu-system-aarch64 -M virt -cpu cortex-a57`, run by
/// Hyperstep's AArch64 interpreter: RAM at 0x40000000, the PL011, the GICv2, the generic
/// timers, PSCI and semihosting (`VirtPlatform`).
///
/// Boot: an ELF64 for EM_AARCH64 is loaded by its segments and entered at its entry point;
/// an arm64 Linux `Image` is loaded at RAM + text_offset and entered at its first byte with
/// X0 = the device tree Hyperstep generates (Linux's Documentation/arch/arm64/booting.rst).
/// Either way the boot CPU starts at EL1h with the MMU and caches off and DAIF masked, as
/// QEMU starts it; the other CPUs wait for PSCI CPU_ON.
///
/// Scheduling is deterministic: the CPUs run in index order, each for at most `quantum`
/// instructions and never past its next timer deadline, and time is virtual (one counter
/// tick per instruction at a nominal 1 GHz), so two runs are identical instruction for
/// instruction. A CPU waiting in WFI/WFE has its clock brought up to the others'.
public final class VirtMachine {
  public let memory: GuestRAM
  public let cpus: [A64CPU]
  let platform: VirtPlatform
  /// Where the kernel starts and where the device tree was put.
  public let entry: UInt64
  public let deviceTreeAddress: UInt64
  let configuration: MachineConfiguration
  /// Instructions a CPU runs before the next one gets its turn (tests shorten it to make
  /// the CPUs interleave finely).
  public var quantum: UInt64 = 10_000

  public init(configuration: MachineConfiguration, console: ConsoleSink = StandardOutputConsole()) throws(MachineError)
  {
    self.configuration = configuration
    let size = configuration.memorySize
    guard size >= MachineConfiguration.minimumMemory, size <= 255 << 30 else {
      throw .badConfiguration("--memory must be between 2 MiB and 255 GiB on AArch64 (RAM starts at 1 GiB)")
    }
    guard (1...8).contains(configuration.cpuCount) else {
      throw .badConfiguration("--cpus must be 1 to 8 on AArch64 (the GICv2 has eight CPU interfaces)")
    }
    do {
      memory = try GuestRAM([MemoryRegionSpec(start: GuestAddress(VirtPlatform.ramStart), size: size)])
    } catch {
      throw .host("cannot allocate \(size >> 20) MiB of guest RAM: \(error)")
    }
    platform = VirtPlatform(ram: memory, cpuCount: configuration.cpuCount, console: console)
    let image = try AArch64Image(configuration.kernel, name: configuration.kernelName)
    let ramEnd = VirtPlatform.ramStart + size
    // The device tree and the initrd at the top of RAM, below a 2 MiB-aligned limit.
    deviceTreeAddress = (ramEnd - (2 << 20)) & ~UInt64(0x1f_ffff)
    var initrdRange: Range<UInt64>?
    if let initrd = configuration.initrd {
      let start = (deviceTreeAddress - UInt64(initrd.count)) & ~UInt64(0xfff)
      initrdRange = start..<(start + UInt64(initrd.count))
    }
    entry = try image.load(
      into: memory, ramStart: VirtPlatform.ramStart, below: initrdRange?.lowerBound ?? deviceTreeAddress)
    if let initrd = configuration.initrd, let range = initrdRange {
      try? memory.write(initrd, at: GuestAddress(range.lowerBound))
    }
    let tree = VirtDeviceTree.blob(
      memorySize: size, cpuCount: configuration.cpuCount, commandLine: configuration.commandLine, initrd: initrdRange)
    try? memory.write(tree, at: GuestAddress(deviceTreeAddress))
    var cpus: [A64CPU] = []
    let monitor = configuration.cpuCount > 1 ? GlobalExclusiveMonitor(cpuCount: configuration.cpuCount) : nil
    for index in 0..<configuration.cpuCount {
      let cpu = A64CPU(memory: memory, bus: VirtCPUBus(platform: platform, cpu: index), cpuIndex: UInt8(index))
      cpu.deliversExceptions = true
      if let monitor { cpu.attach(globalMonitor: monitor) }
      cpus.append(cpu)
    }
    self.cpus = cpus
    var state = cpus[0].state
    state.pc = entry
    state.x[0] = deviceTreeAddress
    cpus[0].state = state
  }

  /// Where RAM starts (QEMU virt's map).
  public static let ramStart = VirtPlatform.ramStart

  /// Whether a kernel file is for AArch64 (an ELF for EM_AARCH64 or an arm64 Linux Image), so
  /// that the CLI boots it on this machine without `--arch`.
  public static func isAArch64Kernel(_ bytes: [UInt8]) -> Bool { AArch64Image.isAArch64(bytes) }

  /// The serial port, for a console that types into the guest.
  public var uart: PL011 { platform.uart }

  /// Runs the guest until it exits, powers off, resets, waits forever or times out.
  public func run() -> VirtOutcome {
    let deadline = configuration.timeoutMilliseconds.map {
      HostIO.monotonicNanoseconds() + UInt64(max($0, 0)) * 1_000_000
    }
    defer { platform.console.flush() }
    while true {
      if let deadline, HostIO.monotonicNanoseconds() >= deadline { return .timedOut }
      if case .ended(let outcome) = runRound().stop { return outcome }
    }
  }

  /// Why a debugger's step or resume stopped.
  public enum Stop: Sendable, Equatable {
    /// One instruction retired.
    case step
    /// The instruction took this synchronous exception (its ESR_EL1 value): the PC is at
    /// the handler's vector.
    case exception(syndrome: UInt32)
    /// An IRQ (or, `fiq`, an FIQ) was taken at this boundary (`--irq deliver`): the PC is at
    /// its vector, ELR_EL1 the instruction it pre-empted.
    case interrupt(fiq: Bool)
    /// The guest asked Hyperstep something (`hvc #0x4853`, W0 = the value).
    case guestRequest(value: UInt32)
    /// The CPU waits in WFI/WFE with nothing to wake it: a step runs nothing.
    case halted
    case breakpoint
    /// A host watch caught an access at `address`; the PC is on the accessing instruction.
    case watch(address: UInt64, write: Bool)
    /// A host watch of instruction fetches covers the PC; nothing ran.
    case fetchWatch(address: UInt64)
    /// The MSR at the PC was about to write `value` to a host-watched system register;
    /// nothing of it ran (`A64CPU.hostSystemRegisterWrites`).
    case systemRegisterWrite(SystemRegisterName, value: UInt64)
    /// `resume`'s `shouldStop` said so.
    case interrupted
    case ended(VirtOutcome)
  }

  /// Executes one instruction on CPU `index`, the others standing still. With
  /// `deliverInterrupts`, an interrupt the CPU can take now is taken instead, and the stop
  /// is at its vector (`--irq deliver`); otherwise interrupts wait while stepping (`block`).
  public func step(cpu index: Int, deliverInterrupts: Bool) -> Stop {
    startRequestedCPUs()
    let cpu = cpus[index]
    refreshInterrupts(index)
    // A CPU waiting for a timer: its time passes to the deadline, as it would unstepped,
    // and the interrupt wakes it. Only a wait nothing will end is a halt.
    if cpu.isWaiting, let deadline = cpu.nextTimerDeadline {
      if cpu.counter < deadline { cpu.counterBase &+= deadline - cpu.counter }
      refreshInterrupts(index)
    }
    if deliverInterrupts {
      let fiq = cpu.fiqLine && cpu.state.pstate.daif & PState.f == 0
      if cpu.takeInterruptIfPending() { return .interrupt(fiq: fiq) }
    }
    if cpu.isWaiting { return .halted }
    let stop = stop(for: cpu.step())
    noteUndefined(index)
    platform.console.flush()
    return stop
  }

  /// Steps CPU `index` as `step` does, again and again, calling `body` with the PC after each
  /// plain step (`.step`) until it answers false (then nil) or a step is anything else (then
  /// that stop). For a tracer: while no interrupt line is up, no device was touched and no
  /// timer deadline passed, nothing can have changed the lines, so they are not sampled
  /// again; every other step goes through `step` itself.
  public func stepPlain(cpu index: Int, deliverInterrupts: Bool, body: (UInt64) -> Bool) -> Stop? {
    let cpu = cpus[index]
    while true {
      // One step that samples the lines (`step`), then as many as can go without them.
      let stop = step(cpu: index, deliverInterrupts: deliverInterrupts)
      guard case .step = stop else { return stop }
      if !body(cpu.pc) { return nil }
      if cpu.irqLine || cpu.fiqLine || cpu.isWaiting || !platform.pendingPowerOn.isEmpty { continue }
      switch cpu.stepPlainly(deadline: cpu.nextTimerDeadline, body: body) {
      case .body: return nil
      case .refresh: continue
      case .other(let result):
        noteUndefined(index)
        let stop = self.stop(for: result)
        guard case .step = stop else { return stop }
        if !body(cpu.pc) { return nil }
      }
    }
  }

  /// Runs every CPU until a host breakpoint or watch stops one, the guest ends, or
  /// `shouldStop` (asked between rounds) says so. Returns the CPU that stopped.
  /// With `reportingVectors`, also stops after each exception or interrupt a CPU takes, at
  /// its vector (an event API's exception and interrupt events): the round ends there, and
  /// the next one starts again from CPU 0.
  public func resume(reportingVectors: Bool = false, shouldStop: () -> Bool) -> (cpu: Int, stop: Stop) {
    defer { platform.console.flush() }
    while true {
      if shouldStop() { return (0, .interrupted) }
      let round = runRound(reportingVectors: reportingVectors)
      if round.stop != .step { return round }
    }
  }

  /// Whether CPU `index` runs: the boot CPU, or one PSCI CPU_ON started.
  public func isPoweredOn(_ index: Int) -> Bool { platform.poweredOn[index] }

  /// One round of the schedule: each running CPU once, up to its quantum or timer deadline.
  /// `.step` when the round ended normally.
  /// A round a stop cut short: the CPU whose turn it was and the instructions left of its
  /// turn. The next round goes on from there, so stopping (a debugger's breakpoints, the
  /// event API's stops) changes the schedule as little as it can: the CPUs before it do not
  /// run again first.
  private var unfinishedRound: (cpu: Int, budget: UInt64)?

  private func runRound(reportingVectors: Bool = false) -> (cpu: Int, stop: Stop) {
    if let ending = platform.ending { return (0, .ended(ending)) }
    startRequestedCPUs()
    var ranAny = false
    let resumed = unfinishedRound
    unfinishedRound = nil
    for (index, cpu) in cpus.enumerated() where platform.poweredOn[index] {
      var turn = max(quantum, 1)
      if let resumed {
        if index < resumed.cpu || index == resumed.cpu && resumed.budget == 0 { continue }
        if index == resumed.cpu { turn = resumed.budget }
      }
      refreshInterrupts(index)
      if cpu.isWaiting { continue }
      let fiq = cpu.fiqLine && cpu.state.pstate.daif & PState.f == 0
      if cpu.takeInterruptIfPending() && reportingVectors {
        unfinishedRound = (index, turn)
        return (index, .interrupt(fiq: fiq))
      }
      var budget = turn
      if let timer = cpu.nextTimerDeadline { budget = max(1, min(budget, timer &- cpu.counter)) }
      let (executed, result) = cpu.run(maxInstructions: budget)
      if executed > 0 || !cpu.isWaiting { ranAny = true }
      noteUndefined(index)
      let stop = stop(for: result)
      switch stop {
      case .step, .halted: continue
      case .exception where !reportingVectors, .interrupt where !reportingVectors: continue
      default:
        unfinishedRound = (index, turn - min(executed, turn))
        return (index, stop)
      }
    }
    // A round that went on from a stop left the CPUs before it out: it proves no wait.
    if !ranAny, resumed == nil, let ending = waitForTime() {
      platform.ending = ending
      return (0, .ended(ending))
    }
    return (0, .step)
  }

  /// Encodings already named on stderr, so each is named once (at most 16).
  private var reportedUndefined: Set<UInt64> = []

  /// When CPU `index` found an instruction the interpreter does not implement, says once on
  /// stderr which word at which address; the guest got the UNDEFINED exception, as from a
  /// CPU without the instruction. UDF, UNDEFINED by design, is not reported.
  private func noteUndefined(_ index: Int) {
    guard let address = cpus[index].takeUndefinedInstruction(), !reportedUndefined.contains(address),
      reportedUndefined.count <= 16
    else { return }
    reportedUndefined.insert(address)
    let word = cpus[index].translate(address).flatMap { try? memory.load(UInt32.self, at: GuestAddress($0)) }
    guard let word, word >> 16 != 0 else { return }
    let line =
      reportedUndefined.count > 16
      ? "hyperstep: note: more unimplemented instructions; not shown\n"
      : "hyperstep: note: CPU \(index): the interpreter does not implement the instruction 0x\(String(word, radix: 16)) at 0x\(String(address, radix: 16)); the guest gets UNDEFINED\n"
    platform.console.flush()
    try? HostIO.writeAll(2, Array(line.utf8)[...])  // a note: a closed stderr must not stop the guest
  }

  private func stop(for result: A64StepResult) -> Stop {
    switch result {
    case .retired, .exception, .waiting: return .step
    case .delivered(let exception): return .exception(syndrome: exception.syndrome)
    case .ioStop:
      if let ending = platform.ending { return .ended(ending) }
      if let request = platform.guestRequest {
        platform.guestRequest = nil
        return .guestRequest(value: request)
      }
      return .step
    case .hostBreakpoint: return .breakpoint
    case .hostWatch(let address, let write): return .watch(address: address, write: write)
    case .hostFetchWatch(let address): return .fetchWatch(address: address)
    case .hostSystemRegisterWrite(let name, let value): return .systemRegisterWrite(name, value: value)
    }
  }

  /// Every running CPU waits: moves every clock to the earliest timer deadline, or reports
  /// that nothing will ever wake them.
  private func waitForTime() -> VirtOutcome? {
    let running = cpus.indices.filter { platform.poweredOn[$0] }
    let deadlines = running.compactMap { cpus[$0].nextTimerDeadline }
    guard let earliest = deadlines.min() else {
      if !platform.pendingPowerOn.isEmpty { return nil }
      return .waitingForever(pc: running.first.map { cpus[$0].state.pc } ?? 0)
    }
    for index in running where cpus[index].counter < earliest {
      cpus[index].counterBase &+= earliest - cpus[index].counter
    }
    return nil
  }

  /// The timers' outputs and the UART's interrupt into the GIC, the GIC's output to the CPU.
  private func refreshInterrupts(_ index: Int) {
    let cpu = cpus[index]
    let gic = platform.gic
    gic.setLevel(30, cpu: index, cpu.physicalTimerFiring)
    gic.setLevel(27, cpu: index, cpu.virtualTimerFiring)
    gic.setLevel(PL011.virtInterrupt, platform.uart.interruptPending)
    cpu.irqLine = gic.irqLine(cpu: index)
  }

  /// Carries out PSCI CPU_ON: the CPU starts at the entry point at EL1h, MMU off, with the
  /// context ID in X0 (PSCI 5.1.4), its clock at the caller's.
  private func startRequestedCPUs() {
    guard !platform.pendingPowerOn.isEmpty else { return }
    let now = cpus.indices.filter { platform.poweredOn[$0] }.map { cpus[$0].counter }.max() ?? 0
    for request in platform.pendingPowerOn {
      let cpu = cpus[request.cpu]
      var state = A64State()
      state.pc = request.entry
      state.x[0] = request.context
      cpu.state = state
      if cpu.counter < now { cpu.counterBase &+= now - cpu.counter }
      platform.poweredOn[request.cpu] = true
    }
    platform.pendingPowerOn.removeAll()
  }
}

/// A kernel file for the AArch64 machine: an ELF64 for EM_AARCH64, or an arm64 Linux Image.
struct AArch64Image {
  enum Kind {
    case elf(ELFFile)
    /// The Image header's text_offset (booting.rst, "Call the kernel image").
    case linuxImage(textOffset: UInt64)
  }
  let bytes: [UInt8]
  let kind: Kind
  let name: String

  /// The arm64 Image header's magic at offset 56: "ARM\x64".
  static let imageMagic: [UInt8] = [0x41, 0x52, 0x4d, 0x64]

  /// Whether the file is for AArch64: an ELF with e_machine 183 or an arm64 Image.
  static func isAArch64(_ bytes: [UInt8]) -> Bool {
    if bytes.count >= 64 && Array(bytes[56..<60]) == imageMagic { return true }
    return ELFFile.hasMagic(bytes) && bytes.count >= 20 && bytes[18] == 183 && bytes[19] == 0
  }

  init(_ bytes: [UInt8], name: String) throws(MachineError) {
    self.bytes = bytes
    self.name = name
    if ELFFile.hasMagic(bytes) {
      do {
        kind = .elf(try ELFFile(bytes, for: .aarch64))
      } catch {
        throw .badImage(file: name, error)
      }
    } else if bytes.count >= 64 && Array(bytes[56..<60]) == Self.imageMagic {
      let textOffset = (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[8 + $1]) << UInt64(8 * $1) }
      let imageSize = (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[16 + $1]) << UInt64(8 * $1) }
      // An image_size of 0 marks a kernel older than 3.17, whose text_offset is 0x80000.
      kind = .linuxImage(textOffset: imageSize == 0 ? 0x80000 : textOffset)
    } else {
      throw .badImage(
        file: name,
        .unrecognized(firstBytes: Array(bytes.prefix(4))))
    }
  }

  /// Puts the kernel into RAM (all of it below `limit`); returns its entry point.
  func load(into memory: GuestRAM, ramStart: UInt64, below limit: UInt64) throws(MachineError) -> UInt64 {
    switch kind {
    case .elf(let elf):
      for segment in elf.segments {
        let end = segment.physicalAddress &+ segment.memorySize
        guard segment.physicalAddress >= ramStart, end <= limit, end >= segment.physicalAddress else {
          throw .badConfiguration(
            "\(name): a segment at 0x\(String(segment.physicalAddress, radix: 16)) lies outside guest RAM (0x\(String(ramStart, radix: 16))-0x\(String(limit, radix: 16)))"
          )
        }
        try? memory.write(elf.fileBytes(of: segment), at: GuestAddress(segment.physicalAddress))
      }
      return elf.entry
    case .linuxImage(let textOffset):
      let base = ramStart + textOffset
      guard base + UInt64(bytes.count) <= limit else {
        throw .badConfiguration("\(name): the kernel does not fit in guest RAM; give more --memory")
      }
      try? memory.write(bytes, at: GuestAddress(base))
      return base
    }
  }
}

/// The device tree of the virt machine, as Linux's bindings describe each device.
enum VirtDeviceTree {
  static func blob(memorySize: UInt64, cpuCount: Int, commandLine: String, initrd: Range<UInt64>?) -> [UInt8] {
    typealias Node = FlattenedDeviceTree.Node
    let gicPhandle: UInt32 = 1
    let clockPhandle: UInt32 = 2
    var root = Node("")
    root.add("#address-cells", cells: [2])
    root.add("#size-cells", cells: [2])
    root.add("compatible", string: "linux,dummy-virt")
    root.add("model", string: "Hyperstep virt")
    root.add("interrupt-parent", cells: [gicPhandle])

    var chosen = Node("chosen")
    chosen.add("bootargs", string: commandLine)
    chosen.add("stdout-path", string: "/pl011@9000000")
    if let initrd {
      chosen.add("linux,initrd-start", FlattenedDeviceTree.bigEndian64(initrd.lowerBound))
      chosen.add("linux,initrd-end", FlattenedDeviceTree.bigEndian64(initrd.upperBound))
    }
    root.children.append(chosen)

    var memoryNode = Node("memory@40000000")
    memoryNode.add("device_type", string: "memory")
    memoryNode.add("reg", cells: [0, 0x4000_0000, UInt32(memorySize >> 32), UInt32(truncatingIfNeeded: memorySize)])
    root.children.append(memoryNode)

    var cpusNode = Node("cpus")
    cpusNode.add("#address-cells", cells: [1])
    cpusNode.add("#size-cells", cells: [0])
    for index in 0..<cpuCount {
      var cpu = Node("cpu@\(String(index, radix: 16))")
      cpu.add("device_type", string: "cpu")
      cpu.add("compatible", string: "arm,cortex-a57")
      cpu.add("reg", cells: [UInt32(index)])
      cpu.add("enable-method", string: "psci")
      cpusNode.children.append(cpu)
    }
    root.children.append(cpusNode)

    var psci = Node("psci")
    psci.add("compatible", strings: ["arm,psci-1.0", "arm,psci-0.2", "arm,psci"])
    psci.add("method", string: "hvc")
    root.children.append(psci)

    // PPI interrupt specifiers: type 1, the PPI number, flags = CPU mask << 8 | level-high (4).
    let ppiFlags = UInt32((1 << cpuCount) - 1) << 8 | 4
    var timer = Node("timer")
    timer.add("compatible", string: "arm,armv8-timer")
    timer.add("interrupts", cells: [1, 13, ppiFlags, 1, 14, ppiFlags, 1, 11, ppiFlags, 1, 10, ppiFlags])
    timer.add("always-on")
    root.children.append(timer)

    var gic = Node("intc@8000000")
    gic.add("compatible", string: "arm,cortex-a15-gic")
    gic.add("#interrupt-cells", cells: [3])
    gic.add("interrupt-controller")
    gic.add("reg", cells: [0, 0x0800_0000, 0, 0x1_0000, 0, 0x0801_0000, 0, 0x1_0000])
    gic.add("phandle", cells: [gicPhandle])
    root.children.append(gic)

    var clock = Node("apb-pclk")
    clock.add("compatible", string: "fixed-clock")
    clock.add("#clock-cells", cells: [0])
    clock.add("clock-frequency", cells: [24_000_000])
    clock.add("clock-output-names", string: "clk24mhz")
    clock.add("phandle", cells: [clockPhandle])
    root.children.append(clock)

    var uart = Node("pl011@9000000")
    uart.add("compatible", strings: ["arm,pl011", "arm,primecell"])
    uart.add("reg", cells: [0, 0x0900_0000, 0, 0x1000])
    uart.add("interrupts", cells: [0, 1, 4])  // SPI 1, level-high
    uart.add("clocks", cells: [clockPhandle, clockPhandle])
    uart.add("clock-names", strings: ["uartclk", "apb_pclk"])
    root.children.append(uart)

    return FlattenedDeviceTree.blob(root)
  }
}
