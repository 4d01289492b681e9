import AArch64
import GDBRemote
import GuestMemory
import Machine
import Synchronization

/// An AArch64 virt machine as the GDB server sees it: one thread per CPU, registers in gdb's
/// AArch64 layout (`RegisterLayout.aarch64`), memory by virtual address through the guest's
/// stage 1 tables. Breakpoints and watchpoints are the CPUs' host ones (`A64CPU.hostBreakpoints`,
/// `hostWatches`): nothing is planted in guest memory and no guest debug state changes, so
/// the guest's own software step, breakpoints, watchpoints and exclusives work underneath.
/// A watchpoint stops with the PC on the accessing instruction, as gdb expects on AArch64.
final class GDBVirtTarget: ServedTarget {
  let vm: VirtMachine
  let layout = RegisterLayout.aarch64
  private(set) var exitStatus: Int32?
  /// `--irq deliver`: a step takes a pending interrupt and stops at its vector.
  var deliverInterrupts: Bool
  private let stopRequested = StopFlag()
  private var watchpoints: [(kind: BreakpointKind, address: UInt64, length: Int)] = []
  private var breakpoints: Set<UInt64> = []

  init(vm: VirtMachine, deliverInterrupts: Bool) {
    self.vm = vm
    self.deliverInterrupts = deliverInterrupts
  }

  var interrupter: @Sendable () -> Void {
    let flag = stopRequested
    return { flag.raise() }
  }

  var threads: [Int] { Array(1...vm.cpus.count) }
  func threadName(_ thread: Int) -> String { "CPU \(thread - 1)" }

  private func cpu(_ thread: Int) throws -> A64CPU {
    guard vm.cpus.indices.contains(thread - 1) else { throw TargetError("no thread \(thread)") }
    return vm.cpus[thread - 1]
  }

  // MARK: Registers

  /// Where each system register of the layout (`RegisterLayout.aarch64SystemRegisters`)
  /// lives in the state, for reading and writing alike; CurrentEL, computed from PSTATE, has
  /// no place and is read-only.
  static var systemRegisterPaths: [String: WritableKeyPath<A64State, UInt64>] {
    [
      "SCTLR_EL1": \.system.sctlr, "TCR_EL1": \.system.tcr, "TTBR0_EL1": \.system.ttbr0,
      "TTBR1_EL1": \.system.ttbr1, "MAIR_EL1": \.system.mair, "VBAR_EL1": \.system.vbar, "ESR_EL1": \.system.esr,
      "FAR_EL1": \.system.far, "ELR_EL1": \.system.elr, "SPSR_EL1": \.system.spsr, "SP_EL0": \.spEL0,
      "SP_EL1": \.spEL1, "MDSCR_EL1": \.system.mdscr, "CONTEXTIDR_EL1": \.system.contextidr,
      "TPIDR_EL1": \.system.tpidrEL1, "TPIDR_EL0": \.system.tpidrEL0, "CNTV_CTL_EL0": \.system.cntvCTL,
      "CNTV_CVAL_EL0": \.system.cntvCVAL, "CNTP_CTL_EL0": \.system.cntpCTL, "CNTP_CVAL_EL0": \.system.cntpCVAL,
    ]
  }

  /// The system registers of the layout, in its order, as read from a state.
  private func systemValues(_ state: A64State) -> [UInt64] {
    let paths = Self.systemRegisterPaths
    return RegisterLayout.aarch64SystemRegisters.map { name in
      paths[name].map { state[keyPath: $0] } ?? UInt64(state.pstate.el) << 2  // CurrentEL
    }
  }

  func readRegisters(thread: Int, into buffer: inout [UInt8], full: Bool) throws {
    let cpu = try cpu(thread)
    let state = cpu.state
    var image = RegisterImage(buffer: buffer, layout: layout)
    for index in 0..<31 { image.set(index, state.x[index]) }
    image.set(31, state.sp)
    image.set(32, state.pc)
    image.set(33, state.pstate.spsr)
    if full {
      for index in 0..<32 {
        let low = state.vLow(UInt8(index))
        let high = state.vHigh(UInt8(index))
        image.setBytes(
          34 + index, (0..<16).map { UInt8(truncatingIfNeeded: ($0 < 8 ? low : high) >> UInt64(8 * ($0 % 8))) })
      }
      image.set(66, state.fpsr)
      image.set(67, state.fpcr)
      for (offset, value) in systemValues(state).enumerated() { image.set(68 + offset, value) }
    }
    buffer = image.buffer
  }

  func writeRegisters(thread: Int, _ bytes: [UInt8]) throws {
    let cpu = try cpu(thread)
    let image = RegisterImage(buffer: bytes, layout: layout)
    var state = cpu.state
    for index in 0..<31 { state.x[index] = image.get(index) }
    state.sp = image.get(31)
    state.pc = image.get(32)
    // PSTATE as gdb's cpsr: NZCV, DAIF, SS, IL, EL and SPSel, in SPSR form (M[3:0] = EL << 2 | SP).
    let cpsr = image.get(33)
    if PState.isLegalReturn(cpsr) { state.pstate.restore(cpsr) } else { state.pstate.nzcv = UInt32(cpsr & 0xf000_0000) }
    for index in 0..<32 {
      let v = image.bytes(34 + index)
      let low = (0..<8).reduce(UInt64(0)) { $0 | UInt64(v[$1]) << UInt64(8 * $1) }
      let high = (8..<16).reduce(UInt64(0)) { $0 | UInt64(v[$1]) << UInt64(8 * ($1 - 8)) }
      state.setV(UInt8(index), low: low, high: high)
    }
    state.fpsr = image.get(66)
    state.fpcr = image.get(67)
    let paths = Self.systemRegisterPaths
    for (offset, name) in RegisterLayout.aarch64SystemRegisters.enumerated() {
      if let path = paths[name] { state[keyPath: path] = image.get(68 + offset) }
    }
    cpu.state = state
  }

  // MARK: Memory, by virtual address

  /// The physical address of each page-sized piece of `count` bytes at virtual `address`.
  private func pieces(_ cpu: A64CPU, _ address: UInt64, _ count: Int) throws -> [(physical: UInt64, count: Int)] {
    var result: [(UInt64, Int)] = []
    var cursor = address
    var left = count
    while left > 0 {
      let chunk = min(left, Int(0x1000 - (cursor & 0xfff)))
      guard let physical = cpu.translate(cursor) else {
        throw TargetError(code: 14, "0x\(String(cursor, radix: 16)) is not mapped")
      }
      result.append((physical, chunk))
      cursor &+= UInt64(chunk)
      left -= chunk
    }
    return result
  }

  func readMemory(thread: Int, address: UInt64, count: Int) throws -> [UInt8] {
    var bytes: [UInt8] = []
    for (physical, chunk) in try pieces(try cpu(thread), address, count) {
      do { bytes += try vm.memory.read(at: GuestAddress(physical), count: chunk) } catch {
        throw TargetError(code: 14, "guest-physical 0x\(String(physical, radix: 16)) is not RAM")
      }
    }
    return bytes
  }

  func writeMemory(thread: Int, address: UInt64, _ bytes: [UInt8]) throws {
    var offset = 0
    for (physical, chunk) in try pieces(try cpu(thread), address, bytes.count) {
      do { try vm.memory.write(bytes[offset..<offset + chunk], at: GuestAddress(physical)) } catch {
        throw TargetError(code: 14, "guest-physical 0x\(String(physical, radix: 16)) is not RAM")
      }
      offset += chunk
    }
    // Written behind the CPUs' backs: they must decode it afresh.
    for cpu in vm.cpus { cpu.invalidateDecodedInstructions() }
  }

  /// With the MMU off (VA = PA), RAM is one region and what lies around it another, with no
  /// permissions (devices or nothing); with it on, the run of pages around `address` that all
  /// translate or all do not, up to its 2 MiB boundary. LLDB walks regions one after another
  /// before it sets a watchpoint: page by page, that was a query per 4 KiB up to the address.
  func memoryRegion(thread: Int, address: UInt64) throws -> MemoryRegion {
    let cpu = try cpu(thread)
    if cpu.state.system.sctlr & 1 == 0 {
      let ram = VirtMachine.ramStart..<(VirtMachine.ramStart + vm.memory.ramSize)
      if address < ram.lowerBound { return MemoryRegion(start: 0, size: ram.lowerBound, permissions: "") }
      if ram.contains(address) {
        return MemoryRegion(start: ram.lowerBound, size: UInt64(ram.count), permissions: "rwx")
      }
      return MemoryRegion(start: ram.upperBound, size: (1 << 48) - ram.upperBound, permissions: "")
    }
    let page = address & ~0xfff
    let mapped = cpu.translate(page) != nil
    var end = page + 0x1000
    while end & 0x1f_ffff != 0 && (cpu.translate(end) != nil) == mapped { end += 0x1000 }
    return MemoryRegion(start: page, size: end - page, permissions: mapped ? "rwx" : "")
  }

  // MARK: Breakpoints and watchpoints

  var watchpointSlots: Int? { nil }

  func insertBreakpoint(_ kind: BreakpointKind, address: UInt64, length: Int) throws -> Bool {
    switch kind {
    case .software, .hardware:
      breakpoints.insert(address)
    case .write, .read, .access:
      watchpoints.append((kind, address, max(length, 1)))
    }
    apply()
    return true
  }

  func removeBreakpoint(_ kind: BreakpointKind, address: UInt64, length: Int) throws -> Bool {
    switch kind {
    case .software, .hardware:
      breakpoints.remove(address)
    case .write, .read, .access:
      if let index = watchpoints.firstIndex(where: {
        $0.kind == kind && $0.address == address && $0.length == max(length, 1)
      }) {
        watchpoints.remove(at: index)
      }
    }
    apply()
    return true
  }

  private func apply() {
    let watches = watchpoints.map {
      HostWatch(
        start: $0.address, length: UInt64($0.length), reads: $0.kind != .write, writes: $0.kind != .read)
    }
    for cpu in vm.cpus {
      cpu.hostBreakpoints = breakpoints
      cpu.hostWatches = watches
    }
  }

  /// The watchpoint gdb set that an access at `address` hit: its kind decides the stop
  /// reason (an access watchpoint reports `awatch`, whichever way it was hit).
  private func watchKind(_ address: UInt64, write: Bool) -> BreakpointKind {
    let hit = watchpoints.first {
      address < $0.address &+ UInt64($0.length) && address &+ 1 > $0.address
        && (write ? $0.kind != .read : $0.kind != .write)
    }
    return hit?.kind ?? (write ? .write : .read)
  }

  // MARK: Running

  func step(thread: Int) throws -> StopEvent {
    guard exitStatus == nil else { throw TargetError("the guest has ended") }
    let index = thread - 1
    _ = try cpu(thread)
    // A step from a breakpoint runs the instruction there.
    vm.cpus[index].passBreakpointOnce()
    return event(vm.step(cpu: index, deliverInterrupts: deliverInterrupts), cpu: index)
  }

  func resume(thread: Int) throws -> StopEvent {
    guard exitStatus == nil else { throw TargetError("the guest has ended") }
    stopRequested.lower()
    for cpu in vm.cpus where breakpoints.contains(cpu.state.pc) { cpu.passBreakpointOnce() }
    while true {
      let (index, stop) = vm.resume { stopRequested.isRaised }
      // A guest request means nothing to gdb: run on.
      if case .guestRequest = stop { continue }
      return event(stop, cpu: index)
    }
  }

  func interrupt() { stopRequested.raise() }

  private func event(_ stop: VirtMachine.Stop, cpu index: Int) -> StopEvent {
    let thread = index + 1
    switch stop {
    // Fetch watches and system-register stops are the event API's; gdb never sets them.
    case .step, .exception, .interrupt, .guestRequest, .fetchWatch, .systemRegisterWrite: return .step(thread: thread)
    case .halted: return .halted(thread: thread)
    case .breakpoint: return .breakpoint(thread: thread, kind: .software, address: vm.cpus[index].state.pc)
    case .watch(let address, let write):
      return .breakpoint(thread: thread, kind: watchKind(address, write: write), address: address)
    case .interrupted: return .interrupted(thread: thread)
    case .ended(let outcome):
      let status: Int32
      switch outcome {
      case .exit(let code, _): status = Int32(truncatingIfNeeded: code & 0xff)
      case .powerOff, .reset: status = ExitStatus.success.rawValue
      case .waitingForever: status = ExitStatus.haltedForever.rawValue
      case .timedOut: status = ExitStatus.timedOut.rawValue
      }
      exitStatus = status
      return .exited(status: status)
    }
  }

  func monitor(_ command: String) -> String {
    let words = command.split(separator: " ").map(String.init)
    switch words.first {
    case "help", nil:
      return """
        monitor accel            the engine (AArch64 guests run on Hyperstep's interpreter)
        monitor irq block|deliver  interrupts while stepping
        monitor translate ADDR   the guest-physical address of a virtual one

        """
    case "accel":
      return "emu: Hyperstep's AArch64 interpreter (KVM cannot run AArch64 on this x86-64 host)\n"
    case "irq":
      guard words.count == 2, ["block", "deliver"].contains(words[1]) else {
        return "usage: monitor irq block|deliver\n"
      }
      deliverInterrupts = words[1] == "deliver"
      return "interrupts while stepping: \(words[1])\n"
    case "translate":
      guard words.count == 2, let address = parseAddress(words[1]) else { return "usage: monitor translate ADDR\n" }
      guard let physical = vm.cpus[0].translate(address) else {
        return "0x\(String(address, radix: 16)) is not mapped\n"
      }
      return "0x\(String(address, radix: 16)) -> guest-physical 0x\(String(physical, radix: 16))\n"
    default:
      return "unknown monitor command '\(command)'; try 'monitor help'\n"
    }
  }

  func detach() {
    breakpoints = []
    watchpoints = []
    apply()
  }

  func kill() {}
}

/// A flag another thread raises to stop a running resume.
final class StopFlag: Sendable {
  private let value = Atomic<Bool>(false)
  func raise() { value.store(true, ordering: .relaxed) }
  func lower() { value.store(false, ordering: .relaxed) }
  var isRaised: Bool { value.load(ordering: .relaxed) }
}
