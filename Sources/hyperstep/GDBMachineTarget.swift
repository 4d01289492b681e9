import Debugger
import GDBRemote
import GuestMemory
import Introspection
import KVM
import Machine

/// The machine as the GDB server sees it: one thread per vCPU. A continue is a run of the
/// event API with gdb's breakpoints and watchpoints as subscriptions whose handlers stop it;
/// a single step drives that vCPU's stepper directly, so `stepi` keeps the step contract.
final class GDBMachineTarget: ServedTarget {
  let machine: Machine
  let session: IntrospectionSession
  /// One stepper per vCPU (the session's), sharing one breakpoint store.
  let steppers: [Stepper]
  /// vCPU 0's stepper: memory and monitor commands go through it.
  var stepper: Stepper { steppers[0] }
  /// gdb's breakpoints. Software ones are planted only while the guest runs (the session
  /// does it), so memory gdb reads between runs needs no masking.
  private var softwareBreakpoints: [UInt64] = []
  /// Software breakpoints gdb set where nothing was mapped, served as hardware ones.
  private var unmappedSoftwareBreakpoints: Set<UInt64> = []
  private var hardwareBreakpoints: [UInt64] = []
  /// Watchpoints. On the interpreter: write, read and access watchpoints, any number and
  /// length, exact (the engine compares every data access with them). On KVM, which on this
  /// host delivers no data breakpoints (README), where the machine can protect pages (one
  /// vCPU, read-only slots): the same, at full speed, through pages KVM sees protected (write
  /// watchpoints of 1-8 bytes compared after each write to their pages, the others as the
  /// session's memory watches). Otherwise write watchpoints only, stepped and compared.
  private var watchpoints: [(kind: BreakpointKind, address: UInt64, length: Int)] = []
  private var onInterpreter: Bool { session.engine == .interpreter }
  /// The user chose the engine (`monitor accel`): breakpoints and watchpoints no longer move
  /// the vCPUs to the engine that serves them.
  private var engineChosen = false
  /// Set once the guest has ended: later requests are refused.
  private(set) var exitStatus: Int32?
  /// Translate addresses as guest-physical rather than guest-virtual (`monitor phys on`).
  private var physicalMode = false

  static let kernelGSBase: UInt32 = 0xc000_0102

  init(session: IntrospectionSession) {
    self.session = session
    machine = session.machine
    steppers = machine.cpus.indices.map { session.stepper(forVCPU: $0) }
  }

  /// Stops a running continue, from any thread (Ctrl-C, a hang-up, a new client).
  var interrupter: @Sendable () -> Void {
    let session = self.session
    return { session.requestStop() }
  }

  var threads: [Int] { machine.cpus.map { $0.id + 1 } }

  func threadName(_ thread: Int) -> String { "vCPU \(thread - 1)" }

  private var vcpu: any VirtualCPU { stepper.vcpu }

  /// The vCPU behind a gdb thread id. Other vCPUs are stopped while the debugger holds the
  /// machine, so their registers can be read from this thread.
  private func vcpu(for thread: Int) throws -> any VirtualCPU {
    guard machine.cpus.indices.contains(thread - 1) else { throw TargetError("no thread \(thread)") }
    return machine.cpus[thread - 1]
  }

  private func stepper(for thread: Int) throws -> Stepper {
    guard steppers.indices.contains(thread - 1) else { throw TargetError("no thread \(thread)") }
    return steppers[thread - 1]
  }

  // MARK: Registers

  func readRegisters(thread: Int, into buffer: inout [UInt8], full: Bool) throws {
    let stepper = try stepper(for: thread)
    let vcpu = stepper.vcpu
    let registers = try vcpu.registers()
    let special = stepper.specialRegisters
    var image = RegisterImage(buffer: buffer)
    let general = [
      registers.rax, registers.rbx, registers.rcx, registers.rdx, registers.rsi, registers.rdi, registers.rbp,
      registers.rsp, registers.r8, registers.r9, registers.r10, registers.r11, registers.r12, registers.r13,
      registers.r14, registers.r15, registers.rip,
    ]
    for (number, value) in general.enumerated() { image.set(number, value) }
    image.set(17, stepper.guestFlags(registers))
    for (offset, segment) in [special.cs, special.ss, special.ds, special.es, special.fs, special.gs].enumerated() {
      image.set(18 + offset, UInt64(segment.selector))
    }
    guard full else {
      buffer = image.buffer
      return
    }
    let fpu = try vcpu.fpuRegisters()
    // A failed read is an error reply, never a 0 that gdb would show as the register's value.
    guard let kernelGSBase = try vcpu.modelSpecificRegisters([Self.kernelGSBase]).first else {
      throw TargetError("KVM returned no value for MSR_KERNEL_GS_BASE")
    }
    for index in 0..<8 { image.setBytes(24 + index, fpu.st[index]) }
    // FXSAVE's abridged tag has one bit per register; gdb wants the full word (11 = empty).
    var tag: UInt64 = 0
    for index in 0..<8 where fpu.abridgedTag & (1 << index) == 0 { tag |= 3 << (2 * UInt64(index)) }
    let x87: [UInt64] = [
      UInt64(fpu.controlWord), UInt64(fpu.statusWord), tag, 0, fpu.lastInstructionPointer & 0xffff_ffff, 0,
      fpu.lastDataPointer & 0xffff_ffff, UInt64(fpu.lastOpcode),
    ]
    for (offset, value) in x87.enumerated() { image.set(32 + offset, value) }
    for index in 0..<16 { image.setBytes(40 + index, fpu.xmm[index]) }
    image.set(56, UInt64(fpu.mxcsr))
    image.set(57, special.fs.base)
    image.set(58, special.gs.base)
    image.set(59, kernelGSBase)
    for (offset, value) in [special.cr0, special.cr2, special.cr3, special.cr4, special.cr8, special.efer].enumerated()
    {
      image.set(60 + offset, value)
    }
    buffer = image.buffer
  }

  func writeRegisters(thread: Int, _ bytes: [UInt8]) throws {
    let stepper = try stepper(for: thread)
    let vcpu = stepper.vcpu
    let image = RegisterImage(buffer: bytes)
    var registers = Registers()
    registers.rax = image.get(0)
    registers.rbx = image.get(1)
    registers.rcx = image.get(2)
    registers.rdx = image.get(3)
    registers.rsi = image.get(4)
    registers.rdi = image.get(5)
    registers.rbp = image.get(6)
    registers.rsp = image.get(7)
    registers.r8 = image.get(8)
    registers.r9 = image.get(9)
    registers.r10 = image.get(10)
    registers.r11 = image.get(11)
    registers.r12 = image.get(12)
    registers.r13 = image.get(13)
    registers.r14 = image.get(14)
    registers.r15 = image.get(15)
    registers.rip = image.get(16)
    registers.rflags = image.get(17) | 0x2
    var special = stepper.specialRegisters
    special.fs.base = image.get(57)
    special.gs.base = image.get(58)
    special.cr0 = image.get(60)
    special.cr2 = image.get(61)
    special.cr3 = image.get(62)
    special.cr4 = image.get(63)
    special.cr8 = image.get(64)
    special.efer = image.get(65)
    var fpu = try vcpu.fpuRegisters()
    for index in 0..<8 { fpu.st[index] = image.bytes(24 + index) }
    fpu.controlWord = UInt16(truncatingIfNeeded: image.get(32))
    fpu.statusWord = UInt16(truncatingIfNeeded: image.get(33))
    for index in 0..<16 { fpu.xmm[index] = image.bytes(40 + index) }
    fpu.mxcsr = UInt32(truncatingIfNeeded: image.get(56))
    do {
      try vcpu.setSpecialRegisters(special)
      try vcpu.setRegisters(registers)
      try vcpu.setFPURegisters(fpu)
      try vcpu.setModelSpecificRegisters([(Self.kernelGSBase, image.get(59))])
    } catch {
      throw TargetError("\(error)")
    }
    stepper.registersChanged(registers, special: special)
  }

  // MARK: Memory

  func readMemory(thread: Int, address: UInt64, count: Int) throws -> [UInt8] {
    do {
      if physicalMode { return try machine.memory.read(at: GuestAddress(address), count: count) }
      return try stepper.readMemory(linear: address, count: count)
    } catch {
      throw TargetError("\(error)")
    }
  }

  func writeMemory(thread: Int, address: UInt64, _ bytes: [UInt8]) throws {
    do {
      if physicalMode {
        try machine.memory.write(bytes, at: GuestAddress(address))
        return machine.hostWroteGuestMemory()
      }
      try stepper.writeMemory(linear: address, bytes)
    } catch {
      throw TargetError("\(error)")
    }
  }

  /// The page around `address` as the vCPU's page tables map it (guest-physical mode: the
  /// 4 KiB page, readable where RAM is).
  func memoryRegion(thread: Int, address: UInt64) throws -> MemoryRegion {
    if physicalMode {
      let inRAM = (try? machine.memory.read(at: GuestAddress(address), count: 1)) != nil
      return MemoryRegion(start: address & ~0xfff, size: 0x1000, permissions: inRAM ? "rwx" : "")
    }
    let special = try stepper(for: thread).specialRegisters
    let page: GuestPage
    do {
      page = try GuestCPU(registers: Registers(), special: special).walker(machine.memory).page(containing: address)
    } catch {
      throw TargetError("\(error)")
    }
    let permissions = page.mapped ? "r" + (page.writable ? "w" : "") + (page.executable ? "x" : "") : ""
    return MemoryRegion(start: page.start, size: page.size, permissions: permissions)
  }

  // MARK: Breakpoints

  /// The interpreter watches any number of ranges; KVM's stepped write watchpoints share the
  /// four debug-register slots with hardware breakpoints, as on the hardware (checked below).
  var watchpointSlots: Int? { watchpointsTakeSlots ? 4 : nil }

  /// Whether gdb's write watchpoints share the four debug-register slots with hardware
  /// breakpoints: on KVM without read-only memory slots, where they are served by stepping
  /// (as a hardware watchpoint would take a slot). Write-protected pages take none.
  private var watchpointsTakeSlots: Bool { !onInterpreter && !machine.canWriteProtect }

  /// The debug-register slots gdb's breakpoints and watchpoints take on KVM.
  private var slotsInUse: Int { hardwareBreakpoints.count + (watchpointsTakeSlots ? watchpoints.count : 0) }

  func insertBreakpoint(_ kind: BreakpointKind, address: UInt64, length: Int) throws -> Bool {
    switch kind {
    case .software:
      do {
        _ = try stepper.readMemory(linear: address, count: 1)
      } catch {
        // Nothing maps the address yet (a kernel's `break start_kernel` before its page
        // tables exist): no INT3 can be planted, so the PC is compared instead, as for a
        // hardware breakpoint (the interpreter any number, KVM in a debug-register slot),
        // until gdb removes it. Refused only when no slot is left.
        guard !hardwareBreakpoints.contains(address) else { return true }
        do {
          _ = try insertBreakpoint(.hardware, address: address, length: length)
        } catch let refusal as TargetError {
          throw TargetError(code: refusal.code, "\(error); comparing the PC instead failed: \(refusal)")
        }
        unmappedSoftwareBreakpoints.insert(address)
        return true
      }
      if !softwareBreakpoints.contains(address) { softwareBreakpoints.append(address) }
      return true
    case .hardware:
      guard !hardwareBreakpoints.contains(address) else { return true }
      // The interpreter compares the PC with any number of addresses; KVM has four slots.
      if !onInterpreter && slotsInUse >= 4 {
        try moveToInterpreter(for: "a fifth hardware breakpoint or watchpoint")
      }
      guard onInterpreter || hardwareBreakpoints.count < 4 else {
        throw TargetError(code: 0x0e, "all four debug-register slots are in use")
      }
      hardwareBreakpoints.append(address)
      return true
    case .write, .read, .access:
      // KVM with protected pages serves any kind, number and length, as the interpreter does.
      let kvmServesAll = machine.canWriteProtect
      if !onInterpreter && !kvmServesAll
        && (kind != .write || !(1...8).contains(length) || (watchpointsTakeSlots && slotsInUse >= 4))
      {
        try moveToInterpreter(
          for: kind == .write ? "this watchpoint" : "a \(kind == .read ? "read" : "access") watchpoint")
      }
      if !onInterpreter && !kvmServesAll {
        guard kind == .write else {
          // x86 has no read-only watchpoints, and this host no access watchpoints either.
          throw TargetError(code: 0x16, "read and access watchpoints need the interpreter (--accel emu)")
        }
        guard (1...8).contains(length) else { throw TargetError(code: 0x16, "watch 1 to 8 bytes") }
        guard !watchpointsTakeSlots || slotsInUse < 4 else {
          throw TargetError(code: 0x0e, "all four debug-register slots are in use")
        }
      }
      guard length >= 1 else { throw TargetError(code: 0x16, "a watchpoint covers at least one byte") }
      _ = try readMemory(thread: 1, address: address, count: min(length, 4096))
      if !watchpoints.contains(where: { $0 == (kind, address, length) }) { watchpoints.append((kind, address, length)) }
      return true
    }
  }

  func removeBreakpoint(_ kind: BreakpointKind, address: UInt64, length: Int) throws -> Bool {
    switch kind {
    case .software:
      softwareBreakpoints.removeAll { $0 == address }
      if unmappedSoftwareBreakpoints.remove(address) != nil { hardwareBreakpoints.removeAll { $0 == address } }
      return true
    case .hardware:
      hardwareBreakpoints.removeAll { $0 == address }
      return true
    case .write, .read, .access:
      watchpoints.removeAll { $0 == (kind, address, length) }
      return true
    }
  }

  // MARK: Execution

  func step(thread: Int) throws -> StopEvent {
    try event(for: try stepper(for: thread).step(), thread: thread)
  }

  /// All-stop: every vCPU runs on a thread of its own (the session's) until a breakpoint,
  /// a watchpoint, Ctrl-C or the machine's end stops one; the others then stop too, and that
  /// first stop is the one reported. Guest requests and MSR writes are for tracing: no
  /// subscription, so no stop.
  func resume(thread: Int) throws -> StopEvent {
    for id in session.subscriptionIDs { try session.unsubscribe(id) }
    do {
      for address in softwareBreakpoints { try session.subscribe(.softwareBreakpoint(at: address)) { _, _ in .stop } }
      for address in hardwareBreakpoints { try session.subscribe(.hardwareBreakpoint(at: address)) { _, _ in .stop } }
      for watch in watchpoints {
        if onInterpreter || watch.kind != .write || !(1...8).contains(watch.length) {
          try session.subscribe(.memoryAccess(Self.memoryWatch(watch))) { _, _ in .stop }
        } else {
          try session.subscribe(.writeWatchpoint(at: watch.address, length: watch.length)) { _, _ in .stop }
        }
      }
    } catch {
      throw TargetError("\(error)")
    }
    switch try session.run() {
    case .machineEnded(let outcome):
      return exitEvent(outcome, thread: outcome.crashState.map { $0.vcpu + 1 } ?? thread)
    case .stopped(let vcpu, let event):
      let stopped = vcpu >= 0 ? vcpu + 1 : thread
      switch event {
      case .softwareBreakpoint(let address): return .breakpoint(thread: stopped, kind: .software, address: address)
      case .hardwareBreakpoint(let address): return .breakpoint(thread: stopped, kind: .hardware, address: address)
      case .writeWatchpoint(let address, _, _): return .breakpoint(thread: stopped, kind: .write, address: address)
      case .memoryAccess(let hit, let watch):
        return watchStop(hit, watch, thread: stopped) ?? .interrupted(thread: stopped)
      default: return .interrupted(thread: stopped)
      }
    }
  }

  func interrupt() { session.requestStop() }

  /// gdb's kinds of watchpoint as the engine's memory watches.
  static func memoryWatch(_ watch: (kind: BreakpointKind, address: UInt64, length: Int)) -> MemoryWatch {
    let kinds: MemoryAccessKinds =
      switch watch.kind {
      case .read: .read
      case .access: [.read, .write]
      default: .write
      }
    return MemoryWatch(start: watch.address, length: UInt64(watch.length), kinds: kinds)
  }

  /// The stop gdb is told for an access to one of its watchpoints: the kind it set, and the
  /// accessed address (within the watched range, where gdb looks for it).
  private func watchStop(_ hit: MemoryAccessHit, _ watch: MemoryWatch, thread: Int) -> StopEvent? {
    guard let set = watchpoints.first(where: { Self.memoryWatch($0) == watch && watch.kinds.contains(hit.kind) })
    else { return nil }
    let address = max(hit.address, watch.start)
    return .breakpoint(thread: thread, kind: set.kind, address: watch.contains(address) ? address : watch.start)
  }

  private func event(for stop: Stop, thread: Int) throws -> StopEvent {
    switch stop.reason {
    case .memoryAccess(let hits):
      // A stepped instruction touched a watched location: the watchpoint's stop, as a
      // hardware watchpoint reports it (a watch no longer set is a plain step).
      for hit in hits {
        for watch in watchpoints.map(Self.memoryWatch)
        where watch.kinds.contains(hit.kind) && hit.address < watch.start &+ watch.length
          && hit.address &+ hit.size > watch.start
        {
          if let event = watchStop(hit, watch, thread: thread) { return event }
        }
      }
      return .step(thread: thread)
    case .halt(interruptsEnabled: false):
      return .halted(thread: thread)
    case .step, .halt, .exception, .interrupt, .guestRequest, .msrWrite, .protectedPageWritten:
      return .step(thread: thread)
    case .breakpoint(let address):
      let kind: BreakpointKind = hardwareBreakpoints.contains(address) ? .hardware : .software
      return .breakpoint(thread: thread, kind: kind, address: address)
    case .interrupted:
      return .interrupted(thread: thread)
    case .exit(let outcome):
      return exitEvent(outcome, thread: thread)
    }
  }

  private func exitEvent(_ outcome: RunOutcome, thread: Int) -> StopEvent {
    guard let status = outcome.cleanExitStatus else {
      return .crashed(thread: thread, reason: TraceWriter.outcomeName(outcome))
    }
    exitStatus = status
    return .exited(status: status)
  }

  // MARK: Session

  /// Moves the vCPUs from KVM to the interpreter for a breakpoint or watchpoint only the
  /// interpreter serves (read and access watchpoints, any number, any length), when the
  /// machine can move and the user has not chosen the engine; says so on the server's stderr.
  /// Otherwise nothing happens, and the caller refuses as KVM must.
  private func moveToInterpreter(for what: String) throws {
    guard !engineChosen, machine.engineSwitchRefusal(allVCPUsTogether: true) == nil else { return }
    do { try session.switchEngine(to: .interpreter) } catch { throw TargetError("\(error)") }
    warn("note: moved the vCPUs to Hyperstep's own CPU for \(what) (monitor accel kvm moves them back)")
  }

  /// `monitor accel`: the engine, or a switch of every vCPU between KVM and the interpreter
  /// (a KVM machine, its in-kernel interrupt controllers' state moving with its vCPUs). Going to
  /// KVM is refused while gdb holds watchpoints KVM cannot serve (read or access ones, or
  /// more than its four debug-register slots with the hardware breakpoints).
  private func accel(_ name: String?, extra: Bool) -> String {
    guard let name else { return "engine: \(onInterpreter ? "emu" : "kvm")\n" }
    guard !extra, name == "emu" || name == "kvm" else { return "usage: monitor accel [emu|kvm]\n" }
    let target: EngineKind = name == "emu" ? .interpreter : .kvm
    if target == .kvm && onInterpreter {
      if !machine.canWriteProtect && watchpoints.contains(where: { $0.kind != .write || !(1...8).contains($0.length) })
      {
        return
          "cannot switch to kvm: read, access and long watchpoints need the interpreter on this machine; delete them first\n"
      }
      let slots = hardwareBreakpoints.count + (machine.canWriteProtect ? 0 : watchpoints.count)
      if slots > 4 {
        return
          "cannot switch to kvm: \(slots) hardware breakpoints and watchpoints take debug-register slots, KVM has four\n"
      }
    }
    do {
      try session.switchEngine(to: target)
    } catch {
      return "\(error)\n"
    }
    engineChosen = true
    return "engine: \(name)\n"
  }

  func monitor(_ command: String) -> String {
    let words = command.split(separator: " ").map(String.init)
    switch words.first {
    case "help", nil:
      return """
        Hyperstep monitor commands:
          help                 this list
          registers            control registers, EFER and the descriptor tables
          dr                   the guest's own debug registers DR0-DR3, DR6, DR7
          irq block|deliver    interrupts while stepping (now \(stepper.policy.rawValue))
          phys on|off          read and write memory by guest-physical address (now \(physicalMode ? "on" : "off"))
          translate ADDR       guest-virtual to guest-physical through the guest's page tables
          accel [emu|kvm]      the engine running the vCPUs (now \(onInterpreter ? "emu" : "kvm")); switch it

        """
    case "registers", "cr":
      let special: SpecialRegisters
      do { special = try vcpu.specialRegisters() } catch { return "cannot read the special registers: \(error)\n" }
      func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }
      return """
        cr0=\(hex(special.cr0)) cr2=\(hex(special.cr2)) cr3=\(hex(special.cr3)) cr4=\(hex(special.cr4)) cr8=\(hex(special.cr8))
        efer=\(hex(special.efer)) gdt=\(hex(special.gdt.base))/\(hex(UInt64(special.gdt.limit))) idt=\(hex(special.idt.base))/\(hex(UInt64(special.idt.limit)))

        """
    case "dr":
      let registers: DebugRegisters
      do { registers = try vcpu.debugRegisters() } catch { return "cannot read the debug registers: \(error)\n" }
      func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }
      let (dr0, dr1, dr2, dr3) = registers.address
      return
        "dr0=\(hex(dr0)) dr1=\(hex(dr1)) dr2=\(hex(dr2)) dr3=\(hex(dr3)) dr6=\(hex(registers.dr6)) dr7=\(hex(registers.dr7))\n"
    case "irq":
      guard words.count == 2, let policy = InterruptPolicy(rawValue: words[1]) else {
        return "usage: monitor irq block|deliver\n"
      }
      do { for stepper in steppers { try stepper.setPolicy(policy) } } catch {
        return "cannot change the policy: \(error)\n"
      }
      return "interrupts while stepping: \(policy.rawValue)\n"
    case "translate":
      guard words.count == 2, let address = parseAddress(words[1]) else { return "usage: monitor translate ADDR\n" }
      let special: SpecialRegisters
      do { special = try vcpu.specialRegisters() } catch { return "cannot read the special registers: \(error)\n" }
      let walker = GuestCPU(registers: Registers(), special: special).walker(machine.memory)
      do {
        let physical = try walker.translate(address)
        return "0x\(String(address, radix: 16)) -> guest-physical \(physical)\n"
      } catch {
        return "0x\(String(address, radix: 16)): \(error)\n"
      }
    case "accel":
      return accel(words.dropFirst().first, extra: words.count > 2)
    case "phys":
      guard words.count == 2, ["on", "off"].contains(words[1]) else { return "usage: monitor phys on|off\n" }
      physicalMode = words[1] == "on"
      return "memory addresses are now guest-\(physicalMode ? "physical" : "virtual")\n"
    default:
      return "unknown monitor command '\(command)'; try 'monitor help'\n"
    }
  }

  func detach() {}

  func kill() {}
}

/// The `g` packet's binary image, addressed by gdb register number.
struct RegisterImage {
  /// Targets fill their machine's full image (x86-64 or AArch64); the session narrows it for gdb.
  let layout: RegisterLayout
  var buffer: [UInt8]

  init(buffer: [UInt8], layout: RegisterLayout = .x86_64) {
    self.layout = layout
    self.buffer = buffer.count == layout.totalBytes ? buffer : [UInt8](repeating: 0, count: layout.totalBytes)
  }

  mutating func set(_ number: Int, _ value: UInt64) {
    let offset = layout.offsets[number]
    for index in 0..<layout.registers[number].bytes {
      buffer[offset + index] = index < 8 ? UInt8(truncatingIfNeeded: value >> (8 * UInt64(index))) : 0
    }
  }

  mutating func setBytes(_ number: Int, _ bytes: [UInt8]) {
    let offset = layout.offsets[number]
    for index in 0..<layout.registers[number].bytes {
      buffer[offset + index] = index < bytes.count ? bytes[index] : 0
    }
  }

  func get(_ number: Int) -> UInt64 {
    let offset = layout.offsets[number]
    var value: UInt64 = 0
    for index in 0..<min(8, layout.registers[number].bytes) {
      value |= UInt64(buffer[offset + index]) << (8 * UInt64(index))
    }
    return value
  }

  func bytes(_ number: Int) -> [UInt8] {
    let offset = layout.offsets[number]
    return Array(buffer[offset..<offset + layout.registers[number].bytes])
  }
}
