import Devices
import GuestMemory
import KVM
import Machine
import Synchronization

/// Steps one vCPU precisely: every instruction the guest executes is reported exactly once,
/// in order, with the guest unable to tell that it is being stepped. See the README's
/// "step contract" for the rules; the comments here say how each is kept.
///
/// Must be driven from one thread (KVM wants vCPU ioctls from the thread that runs it).
public final class Stepper {
  public let machine: Machine
  public let vcpu: VCPU
  public private(set) var policy: InterruptPolicy

  /// The guest's own EFLAGS.TF. KVM hides TF from KVM_GET_REGS while it single-steps and
  /// drops it when stepping is switched off, so the stepper keeps the guest's copy.
  private var guestTrapFlag: Bool
  /// Halted with interrupts off: nothing will run again.
  private var halted = false
  /// Halted with interrupts on (in-kernel APIC): the next step waits for an interrupt.
  private var waitingForInterrupt = false
  /// Segment and control registers, refreshed only after instructions that can change them.
  private var special: SpecialRegisters {
    // Only a real change counts: stops and event handlers re-read these often, and every bump
    // throws away the cached code-page translation.
    didSet { if special != oldValue { specialGeneration &+= 1 } }
  }
  /// Bumped on every change of `special`, so caches keyed on it compare one integer.
  private var specialGeneration = 0
  /// Reused for instruction bytes: no allocation per step.
  private var fetchBuffer = [UInt8](repeating: 0, count: 15)
  /// Breakpoint bytes in guest memory, shared with the steppers of the other vCPUs.
  public let breakpoints: BreakpointStore
  private var handlers: HandlerBreakpoints { breakpoints.handlers }
  private var mode: Mode = .idle
  /// The debug-register slot of each host breakpoint in the current run, and the slots the
  /// guest's own breakpoints hold beside them (see `sharedDebugRegisters`).
  private var hostSlots: [Int: UInt64] = [:]
  private var guestSlots: [Int] = []
  /// Whether `run(until:)` stops after each trapped MSR write (`trace --msr-events` wants the
  /// stop; the event API, which hears of the write from inside the exit, does not).
  public var stopsAtMSRWrites = true
  /// The hardware breakpoint the last `run(until:)` stopped at, while still standing there.
  private var stoppedAtBreakpoint: UInt64?
  /// The handler entry the last `run(until:watchingHandlers: true)` stopped at: its planted
  /// INT3 has not run, and the next run steps the real first instruction before going on.
  private var stoppedAtHandler: UInt64?

  /// How other threads stop a running `run(until:)`.
  public let stopSwitch: StopSwitch
  /// The linear PC of the next instruction when known without asking KVM (KVM_GET_REGS is
  /// the dearest part of a step on some hosts, so a plain step does without it).
  private var knownPC: UInt64?
  /// The last code page translated, reused while paging state is unchanged.
  private var codePage: (linear: UInt64, physical: UInt64, generation: Int)?

  private enum Mode: Equatable {
    case idle
    case stepping
    case running(breakpoints: [UInt64], handlers: Bool)
  }

  /// DR6.BS: the #DB came from single-stepping.
  static let singleStepStatus: UInt64 = 1 << 14
  static let vectorsWithErrorCode: Set<UInt8> = [8, 10, 11, 12, 13, 14, 17, 21, 29, 30]

  /// - Parameter breakpoints: the store shared with the other vCPUs' steppers (a new one if nil).
  public init(
    machine: Machine, vcpu index: Int = 0, policy: InterruptPolicy = .block, breakpoints: BreakpointStore? = nil
  )
    throws
  {
    guard machine.vcpus.indices.contains(index) else { throw DebuggerError("there is no vCPU \(index)") }
    self.machine = machine
    self.vcpu = machine.vcpus[index]
    self.policy = policy
    vcpu.bindToCurrentThread()
    // Nearly every stop reads the registers; let KVM hand them over with the exit.
    vcpu.mirrorStateOnExit([.registers, .specialRegisters])
    guestTrapFlag = try vcpu.registers().rflags & RFlags.trap != 0
    special = try vcpu.specialRegisters()
    self.breakpoints = breakpoints ?? BreakpointStore(memory: machine.memory)
    stopSwitch = StopSwitch(vcpu: vcpu)
  }

  /// The linear address of the next instruction.
  public func pc() throws -> UInt64 {
    if let knownPC { return knownPC }
    let pc = special.cs.base &+ (try vcpu.registers().rip)
    knownPC = pc
    return pc
  }

  private var codeSize: CodeSize { GuestCPU.codeSize(of: special) }

  /// Decodes the instruction at `pc` through the guest's page tables (one translation per page).
  private func decode(at pc: UInt64) -> DecodedInstruction {
    let page = pc & ~0xfff
    let physical: UInt64
    if let cached = codePage, cached.linear == page, cached.generation == specialGeneration {
      physical = cached.physical
    } else {
      guard let translated = try? walker().translate(page) else { return DecodedInstruction(kind: .other, length: 0) }
      physical = translated.value
      codePage = (page, physical, specialGeneration)
    }
    let offset = pc & 0xfff
    let size = codeSize
    if offset <= 0x1000 - 15, (try? machine.memory.read(at: GuestAddress(physical + offset), into: &fetchBuffer)) != nil
    {
      return InstructionDecoder.decode(fetchBuffer, size: size)
    }
    // Near the end of a page (or of RAM) the instruction may continue on the next page.
    var bytes = (try? machine.memory.read(at: GuestAddress(physical + offset), count: Int(0x1000 - offset))) ?? []
    bytes += (try? walker().read(linear: page + 0x1000, count: 15 - bytes.count)) ?? []
    return InstructionDecoder.decode(bytes, size: size)
  }

  public func setPolicy(_ policy: InterruptPolicy) throws {
    self.policy = policy
    if mode == .stepping { try applyDebugState(.stepping) }
  }

  // MARK: Host breakpoints, memory and interruption

  /// Plants an INT3 at a linear address (through the current page tables).
  public func insertSoftwareBreakpoint(at linear: UInt64) throws {
    guard breakpoints[linear] == nil else { return }
    let physical = try walker().translate(linear)
    let current = try machine.memory.load(UInt8.self, at: physical)
    let original = handlers.originalBytes([current], at: physical)[0]
    breakpoints[linear] = (physical, original)
    try machine.memory.store(UInt8(0xcc), at: physical)
  }

  public func isSoftwareBreakpoint(_ linear: UInt64) -> Bool { breakpoints[linear] != nil }

  public func removeSoftwareBreakpoint(at linear: UInt64) throws {
    guard let entry = breakpoints[linear] else { return }
    breakpoints[linear] = nil
    let handlerPlanted = handlers.vectors(at: linear) != nil
    try machine.memory.store(handlerPlanted ? UInt8(0xcc) : entry.original, at: entry.physical)
  }

  /// The segment and control registers as of the last stop (kept current by the stepper, so
  /// a debugger need not ask KVM at every stop).
  public var specialRegisters: SpecialRegisters { special }

  /// Guest memory at a linear address as the guest wrote it: the stepper's own INT3s are
  /// shown as the bytes they replaced. With `cr3`, the address is translated through that
  /// address space (another process's page tables) in the current paging mode.
  public func readMemory(linear: UInt64, count: Int, cr3: UInt64? = nil) throws -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(count)
    try walker(cr3: cr3).forEachPage(linear: linear, count: count) { physical, piece in
      bytes += breakpoints.unplanted(try machine.memory.read(at: physical, count: piece.count), at: physical)
    }
    return bytes
  }

  /// Writes guest memory at a linear address (under `cr3` if given), keeping planted
  /// breakpoints planted.
  public func writeMemory(linear: UInt64, _ bytes: [UInt8], cr3: UInt64? = nil) throws {
    try walker(cr3: cr3).forEachPage(linear: linear, count: bytes.count) { physical, piece in
      try machine.memory.write(bytes[piece], at: physical)
      try breakpoints.rewritten(Array(bytes[piece]), at: physical, memory: machine.memory)
    }
  }

  /// The guest's page walker for its current paging mode, through `cr3` or its own CR3.
  public func walker(cr3: UInt64? = nil) -> PageWalker {
    PageWalker(
      memory: machine.memory,
      mode: PagingMode(cr0: special.cr0, cr3: cr3 ?? special.cr3, cr4: special.cr4, efer: special.efer))
  }

  /// RFLAGS as the guest sees it: KVM hides the guest's own TF while stepping.
  public func guestFlags(_ registers: Registers) -> UInt64 {
    (registers.rflags & ~RFlags.trap) | (guestTrapFlag ? RFlags.trap : 0)
  }

  /// Records a register write from a debugger, keeping the stepper's view in step.
  public func registersChanged(_ registers: Registers, special newSpecial: SpecialRegisters?) {
    guestTrapFlag = registers.rflags & RFlags.trap != 0
    if let newSpecial { special = newSpecial }
    knownPC = nil
  }

  /// Reloads the segment and control registers from KVM (for callers inside a run, where the
  /// guest may have changed them since the last stop).
  public func refreshSpecialRegisters() throws {
    special = try vcpu.specialRegisters()
  }

  /// Makes a running `run(until:)` return `.interrupted` soon. Safe from any thread.
  public func requestStop() { stopSwitch.requestStop() }

  private func takeStopRequest() -> Bool { stopSwitch.take() }

  // MARK: Modes

  private func applyDebugState(_ newMode: Mode, admitInterrupts: Bool = false, handlerBreakpoint: UInt64? = nil)
    throws
  {
    var debug = GuestDebug(options: [.softwareBreakpoints])
    switch newMode {
    case .idle:
      handlers.remove()
      // Stopped after running free, KVM's setting can stay until the next step or run
      // replaces it: it intercepts nothing while the vCPU stands still, and it hides nothing
      // of the guest's state. After stepping it must go, as KVM hides the guest's own TF
      // while it single-steps. (Saves an ioctl per breakpoint event.)
      if mode != .stepping {
        mode = newMode
        return
      }
      debug = GuestDebug()
    case .stepping:
      debug.options.insert(.singleStep)
      if policy == .block && !admitInterrupts { debug.options.insert(.blockInterrupts) }
      if let handlerBreakpoint {
        debug.options.insert(.hardwareBreakpoints)
        debug.debugRegisters[0] = handlerBreakpoint
        debug.debugRegisters[7] = 1  // L0, execution
      }
      handlers.refresh(for: special)
    case .running(let breakpoints, let watchHandlers):
      // Full speed: the handler breakpoints would stop every exception, so they come out
      // unless exceptions and interrupts are being watched.
      if watchHandlers { handlers.refresh(for: special) } else { handlers.remove() }
      hostSlots = [:]
      guestSlots = []
      if !breakpoints.isEmpty {
        debug.options.insert(.hardwareBreakpoints)
        debug.debugRegisters = try sharedDebugRegisters(hostBreakpoints: breakpoints)
      }
    }
    try vcpu.setGuestDebug(debug)
    // Switching KVM's single-step off clears TF; put the guest's own back.
    if newMode != .stepping && guestTrapFlag {
      var registers = try vcpu.registers()
      registers.rflags |= RFlags.trap
      try vcpu.setRegisters(registers)
    }
    mode = newMode
  }

  /// DR0-DR7 for a run with host breakpoints, shared with the guest's own. While the host has
  /// breakpoints KVM loads only what the host gives it (KVM_GUESTDBG_USE_HW_BP), so the
  /// guest's enabled slots (L or G set in its DR7, as it last wrote them) are copied in as
  /// they are, and the host takes free slots from DR3 down (guests start from DR0). The
  /// guest still reads back what it wrote: KVM answers its MOV from DRn from its own copy.
  /// A guest slot enabled while the vCPU runs counts from the next stop: KVM handles the
  /// guest's DR writes itself, without an exit.
  private func sharedDebugRegisters(hostBreakpoints: [UInt64]) throws -> [UInt64] {
    let guest = try vcpu.debugRegisters()
    let used = (0..<4).filter { guest.dr7 >> (2 * UInt64($0)) & 0b11 != 0 }
    let free = (0..<4).reversed().filter { !used.contains($0) }
    guard hostBreakpoints.count <= free.count else {
      throw DebuggerError(
        "no free debug-register slot for \(hostBreakpoints.count) host hardware breakpoints: the guest's own "
          + "breakpoints hold \(used.map { "DR\($0)" }.joined(separator: ", ")) of the four")
    }
    var registers: [UInt64] = [guest.address.0, guest.address.1, guest.address.2, guest.address.3, 0, 0, 0, 0]
    var dr7: UInt64 = 0
    for slot in used {
      let shift = UInt64(slot)
      dr7 |= guest.dr7 & (0b11 << (2 * shift) | 0xf << (16 + 4 * shift))  // its enables, R/W and LEN
    }
    for (address, slot) in zip(hostBreakpoints, free) {
      registers[slot] = address
      dr7 |= 1 << (2 * UInt64(slot))  // Ln: local enable; R/W and LEN 0: execution
      hostSlots[slot] = address
    }
    registers[7] = dr7
    guestSlots = used
    return registers
  }

  private func stop(_ reason: StopReason, pc: UInt64? = nil) throws -> Stop {
    if let pc { knownPC = pc }
    if case .breakpoint(let address) = reason { stoppedAtBreakpoint = address } else { stoppedAtBreakpoint = nil }
    stoppedAtHandler = nil
    return Stop(reason: reason, pc: try self.pc(), vcpu: vcpu.id)
  }

  // MARK: Stepping

  /// Executes exactly one instruction (or delivers one event) and stops before the next.
  public func step() throws -> Stop {
    vcpu.bindToCurrentThread()  // any one thread at a time may drive a stepper
    if halted { return try stop(.halt(interruptsEnabled: false)) }
    if machine.hasInterruptController && !waitingForInterrupt {
      // A vCPU that halted (in the kernel) while running, or never started, cannot step:
      // KVM_RUN would wait for an interrupt or a SIPI. Report it instead of blocking.
      switch try vcpu.multiprocessingState() {
      case .halted:
        let interruptsOn = try vcpu.registers().rflags & RFlags.interruptEnable != 0
        if interruptsOn { waitingForInterrupt = true } else { halted = true }
        return try stop(.halt(interruptsEnabled: interruptsOn))
      case .uninitialized, .initReceived:
        return try stop(.halt(interruptsEnabled: false))
      default:
        break
      }
    }
    if waitingForInterrupt { return try waitForInterrupt() }
    if mode != .stepping {
      // Outside stepping KVM leaves TF alone, so RFLAGS holds the guest's own: after a
      // full-speed run (the guest may have set or cleared it meanwhile) it is the copy to keep.
      guestTrapFlag = try vcpu.registers().rflags & RFlags.trap != 0
      try applyDebugState(.stepping)
    } else {
      handlers.refresh(for: special)
    }
    let pc = try self.pc()
    let lifted = handlers.lift(at: pc)
    defer { if lifted { handlers.replant(at: pc) } }
    let hostBreakpoint = breakpoints[pc]
    if let hostBreakpoint { try machine.memory.store(hostBreakpoint.original, at: hostBreakpoint.physical) }
    defer { if let hostBreakpoint { try? machine.memory.store(UInt8(0xcc), at: hostBreakpoint.physical) } }
    let decoded = decode(at: pc)
    let trapDue = guestTrapFlag
    var trapFlagAfter: Bool?
    var registers = Registers()
    if decoded.kind != .other { registers = try vcpu.registers() }
    knownPC = nil

    switch decoded.kind {
    case .halt:
      // KVM's single-step runs straight past HLT; the stepper retires it itself.
      registers.rip &+= UInt64(decoded.length)
      try vcpu.setRegisters(registers)
      try applyDebugState(.stepping)
      let interruptsOn = registers.rflags & RFlags.interruptEnable != 0
      if machine.hasInterruptController {
        // Halted in the kernel, as the CPU would be after HLT: an interrupt (or INIT, NMI)
        // wakes it when it runs again.
        try vcpu.setMultiprocessingState(.halted)
      }
      if interruptsOn && machine.hasInterruptController {
        waitingForInterrupt = true
      } else {
        halted = true
      }
      return try stop(.halt(interruptsEnabled: interruptsOn))
    case .softwareInterrupt(let vector, let opcode) where opcode != .into || registers.rflags & RFlags.overflow != 0:
      // Delivered here, so the frame shows the guest's own TF and the stop is at the handler.
      var newSpecial = special
      var flags = registers.rflags & ~RFlags.trap
      if guestTrapFlag { flags |= RFlags.trap }
      let frame = try InterruptDelivery.deliver(
        vector: vector, returnAddress: registers.rip &+ UInt64(decoded.length), flags: flags,
        software: opcode != .int1, registers: &registers, special: &newSpecial, memory: machine.memory)
      try vcpu.setSpecialRegisters(newSpecial)
      try vcpu.setRegisters(registers)
      special = newSpecial
      guestTrapFlag = false
      try applyDebugState(.stepping)
      return try stop(.exception(vector: vector), pc: frame.handler)
    case .popFlags:
      trapFlagAfter = try stackFlagsTrapBit(registers, slot: 0, width: 0)
    case .interruptReturn(let width):
      // Retired here: a host that emulates IRET may lose the step trap after it.
      var newSpecial = special
      let flags = try InterruptDelivery.interruptReturn(
        operandBytes: width, registers: &registers, special: &newSpecial, memory: machine.memory)
      guestTrapFlag = flags & RFlags.trap != 0
      registers.rflags &= ~RFlags.trap
      try vcpu.setSpecialRegisters(newSpecial)
      try vcpu.setRegisters(registers)
      special = newSpecial
      handlers.refresh(for: special)
      try applyDebugState(.stepping)
      if trapDue { return try deliverGuestSingleStep() }
      return try stop(.step)
    default:
      break
    }

    // Real mode has no planted INT3s (see HandlerBreakpoints): for an instruction that will
    // likely fault, a hardware breakpoint on its handler gives the stop at the handler.
    var faultHandler: (vector: UInt8, address: UInt64)?
    if special.cr0 & 1 == 0, let vector = decoded.likelyFault,
      let entry = HandlerBreakpoints.handlerAddresses(
        special, GuestCPU(registers: registers, special: special).walker(machine.memory)
      )
      .first(where: { $0.0 == vector })
    {
      faultHandler = (vector, entry.1)
      try applyDebugState(.stepping, handlerBreakpoint: entry.1)
    }
    defer { if faultHandler != nil { try? applyDebugState(.stepping) } }

    var request: UInt32?
    var msrWrite: (index: UInt32, value: UInt64)?
    var completing = false
    runLoop: while true {
      let exit = try vcpu.run()
      switch exit {
      case .debug(let info):
        if info.exception == 3, let vectors = handlers.vectors(at: info.pc) {
          return try handlerEntry(at: info.pc, vectors: vectors, trapDue: trapDue, decoded: decoded)
        }
        if let faultHandler, info.dr6 & 1 != 0, info.pc == faultHandler.address {
          return try handlerEntry(at: info.pc, vectors: [faultHandler.vector], trapDue: trapDue, decoded: decoded)
        }
        if completing { vcpu.cancelImmediateExit() }
        knownPC = info.pc
        break runLoop
      case .portOut, .portIn, .mmioRead, .mmioWrite:
        // KVM drops the step trap after I/O it hands to user space; completing the
        // instruction with immediate_exit set returns right after it instead.
        let action = machine.serviceDeviceExit(exit, on: vcpu)
        if case .guestRequest(let value) = action {
          request = value
        } else if let outcome = machine.outcome(of: action) {
          return try stop(.exit(outcome))
        }
        vcpu.requestImmediateExit()
        completing = true
      case .msrRead, .msrWrite:
        msrWrite = machine.serviceMSRExit(exit, on: vcpu)
        vcpu.requestImmediateExit()
        completing = true
      case .interrupted:
        if completing {
          if let countBytes = decoded.repeatCountBytes {
            // KVM finishes a REP string instruction's last I/O iteration without moving RIP
            // on; it retires it on the next entry, executing nothing. Let it, so the stop
            // after the last iteration is at the next instruction, as on the CPU.
            let now = try vcpu.registers()
            let mask: UInt64 = countBytes == 8 ? .max : (1 << (8 * UInt64(countBytes))) - 1
            if special.cs.base &+ now.rip == pc && now.rcx & mask == 0 {
              completing = false
              continue
            }
          }
          break runLoop
        }
      case .halt:
        break runLoop
      case .internalError(let suberror, _) where suberror == VCPUExit.emulationFailureSuberror:
        let now = special.cs.base &+ (try vcpu.registers().rip)
        if let vectors = handlers.vectors(at: now) {
          // Some hosts (PVM) report an executed INT3 as an emulation failure at its address.
          return try handlerEntry(at: now, vectors: vectors, trapDue: trapDue, decoded: decoded)
        }
        return try stop(.exit(machine.terminalOutcome(of: exit, on: vcpu)!))
      case .shutdown, .internalError, .failedEntry, .systemEvent, .other:
        return try stop(.exit(machine.terminalOutcome(of: exit, on: vcpu)!))
      }
    }

    if let trapFlagAfter {
      guestTrapFlag = trapFlagAfter
      try applyDebugState(.stepping)  // KVM forgets its own TF when the guest pops one
    }
    if decoded.changesSystemState {
      special = try vcpu.specialRegisters()
      knownPC = nil
      handlers.refresh(for: special)
    }
    if decoded.kind == .loadStackSegment {
      // MOV SS / POP SS: the next instruction runs in their shadow, with no trap (and so no
      // stop) between them. Some hosts stop there anyway; the stepper runs on to match the CPU.
      if let request { return try stop(.guestRequest(value: request)) }
      return try step()
    }
    if trapDue {
      // The guest's own single-step trap, which KVM swallowed: deliver #DB with DR6.BS.
      return try deliverGuestSingleStep()
    }
    if let request { return try stop(.guestRequest(value: request)) }
    if let msrWrite { return try stop(.msrWrite(index: msrWrite.index, value: msrWrite.value)) }
    return try stop(.step)
  }

  /// After HLT with interrupts on: the vCPU sleeps until an interrupt arrives, even under the
  /// `block` policy (nothing else could wake it), and the stop is at the handler's first
  /// instruction.
  private func waitForInterrupt() throws -> Stop {
    waitingForInterrupt = false
    try applyDebugState(.stepping, admitInterrupts: true)
    defer { try? applyDebugState(.stepping) }
    knownPC = nil
    let none = DecodedInstruction(kind: .other, length: 0)
    while true {
      let exit = try vcpu.run()
      switch exit {
      case .debug(let info):
        if info.exception == 3, let vectors = handlers.vectors(at: info.pc) {
          return try handlerEntry(at: info.pc, vectors: vectors, trapDue: false, decoded: none)
        }
        return try stop(.step, pc: info.pc)
      case .internalError(let suberror, _) where suberror == VCPUExit.emulationFailureSuberror:
        let now = special.cs.base &+ (try vcpu.registers().rip)
        if let vectors = handlers.vectors(at: now) {
          return try handlerEntry(at: now, vectors: vectors, trapDue: false, decoded: none)
        }
        return try stop(.exit(machine.terminalOutcome(of: exit, on: vcpu)!))
      case .interrupted:
        continue
      case .portIn, .portOut, .mmioRead, .mmioWrite:
        let action = machine.serviceDeviceExit(exit, on: vcpu)
        if let outcome = machine.outcome(of: action) { return try stop(.exit(outcome)) }
      case .msrRead, .msrWrite:
        _ = machine.serviceMSRExit(exit, on: vcpu)
      case .halt:
        return try stop(.step)
      case .shutdown, .internalError, .failedEntry, .systemEvent, .other:
        return try stop(.exit(machine.terminalOutcome(of: exit, on: vcpu)!))
      }
    }
  }

  /// The flags word a POPF (slot 0) or IRET (slot 2) is about to load: its TF bit.
  private func stackFlagsTrapBit(_ registers: Registers, slot: UInt64, width: Int) throws -> Bool {
    let cpu = GuestCPU(registers: registers, special: special)
    let stackWidth = UInt64(width == 0 ? cpu.codeSize.rawValue : width)
    let address = special.ss.base &+ registers.rsp &+ slot * stackWidth
    let flags = try cpu.walker(machine.memory).read(linear: address + 1, count: 1)[0]
    return flags & 1 != 0  // bit 8 of the flags word
  }

  /// A stop at a handler's first instruction: the hardware (or KVM) delivered an exception
  /// or interrupt and ran into the INT3 planted there, which has not executed.
  private func handlerEntry(at pc: UInt64, vectors: [UInt8], trapDue: Bool, decoded: DecodedInstruction) throws -> Stop
  {
    var registers = try vcpu.registers()
    special = try vcpu.specialRegisters()
    let vector = vectors.count == 1 ? vectors[0] : Self.likelyVector(vectors, decoded: decoded)
    // The pushed flags must show the guest's TF as it was, not the host's.
    let cpu = GuestCPU(registers: registers, special: special)
    let width = UInt64(cpu.codeSize.rawValue)
    let errorCodeSlots: UInt64 = Self.vectorsWithErrorCode.contains(vector) ? 1 : 0
    let flagsAddress = special.ss.base &+ registers.rsp &+ (errorCodeSlots + 2) * width + 1
    let walker = cpu.walker(machine.memory)
    if var byte = try? walker.read(linear: flagsAddress, count: 1)[0] {
      byte = trapDue ? byte | 1 : byte & ~1
      try? walker.write([byte], linear: flagsAddress)
    }
    guestTrapFlag = false
    registers.rflags &= ~RFlags.resume
    try applyDebugState(.stepping)
    var software = false
    if case .softwareInterrupt(let number, _) = decoded.kind, number == vector { software = true }
    let reason: StopReason = vector >= 32 && !software ? .interrupt(vector: vector) : .exception(vector: vector)
    return try stop(reason, pc: pc)
  }

  /// For handlers shared by several vectors: the one the last instruction most likely raised.
  static func likelyVector(_ vectors: [UInt8], decoded: DecodedInstruction) -> UInt8 {
    if case .softwareInterrupt(let vector, _) = decoded.kind, vectors.contains(vector) { return vector }
    for preferred: UInt8 in [13, 14, 6, 0] where vectors.contains(preferred) { return preferred }
    return vectors.min() ?? 0
  }

  private func deliverGuestSingleStep() throws -> Stop {
    let handler = try deliverGuestDebugException(status: Self.singleStepStatus)
    guestTrapFlag = false
    try applyDebugState(.stepping)
    return try stop(.exception(vector: 1), pc: handler)
  }

  /// Delivers #DB to the guest's own handler with these DR6 status bits added, as the CPU
  /// would have; returns the handler's address. The return address is RIP as it stands (a
  /// breakpoint's fault: the instruction; a trap: the one after). The frame's TF is the
  /// guest's: KVM's own while stepping is taken out, and at full speed RFLAGS is the guest's.
  private func deliverGuestDebugException(status: UInt64) throws -> UInt64 {
    var registers = try vcpu.registers()
    var newSpecial = try vcpu.specialRegisters()
    var debugRegisters = try vcpu.debugRegisters()
    debugRegisters.dr6 |= status
    try vcpu.setDebugRegisters(debugRegisters)
    let frame = try InterruptDelivery.deliver(
      vector: 1, returnAddress: registers.rip,
      flags: mode == .stepping ? guestFlags(registers) : registers.rflags, software: false,
      registers: &registers, special: &newSpecial, memory: machine.memory)
    try vcpu.setSpecialRegisters(newSpecial)
    try vcpu.setRegisters(registers)
    special = newSpecial
    return frame.handler
  }

  // MARK: Running

  /// Runs at full speed until the guest reaches one of up to four addresses (hardware
  /// breakpoints), asks for stepping or other attention through the control port, or ends.
  ///
  /// With `watchingHandlers`, it also stops at the first instruction of the guest's handler
  /// for any exception or interrupt delivered (through INT3s planted there, as for stepping;
  /// not in real mode). Without stepping the cause is not seen, so vectors below 32 are
  /// reported as exceptions and the rest as interrupts, a software INT n among them.
  public func run(until breakpoints: [UInt64] = [], watchingHandlers: Bool = false) throws -> Stop {
    guard breakpoints.count <= 4 else {
      throw DebuggerError("at most 4 hardware breakpoints, \(breakpoints.count) asked for")
    }
    // Stopped by a host breakpoint where we stand: step off it first (a step runs the byte an
    // INT3 replaced), or it would fire again at once. (Arriving at one by other means is a
    // hit, which the run reports.)
    // The same for a handler entry: its planted INT3 stands in for the real instruction.
    let standingOn =
      stoppedAtHandler
      ?? stoppedAtBreakpoint.flatMap { hit in breakpoints.contains(hit) || self.breakpoints[hit] != nil ? hit : nil }
    if let standingOn, try pc() == standingOn {
      let first = try step()
      if first.reason != .step { return first }
    }
    vcpu.bindToCurrentThread()
    // Without an interrupt controller nothing can wake a vCPU halted with interrupts off;
    // with one, it sleeps in the kernel until something does (or until it is stopped).
    if halted && !machine.hasInterruptController { return try stop(.halt(interruptsEnabled: false)) }
    knownPC = nil  // (a stop requested before this call ends it at once: callers clear stale ones)
    halted = false
    waitingForInterrupt = false
    // An application processor still waiting for INIT/SIPI never starts while KVM loads
    // debug registers for it (seen on PVM): it runs without hardware breakpoints until then.
    let state = machine.hasInterruptController ? try vcpu.multiprocessingState() : .runnable
    let waitingForStartup = state == .uninitialized || state == .initReceived
    let running = Mode.running(
      breakpoints: waitingForStartup ? [] : breakpoints, handlers: watchingHandlers && !waitingForStartup)
    try applyDebugState(running)
    while true {
      let exit = try vcpu.run()
      switch exit {
      case .debug(let info) where info.exception == 3 && self.breakpoints[info.pc] != nil:
        special = try vcpu.specialRegisters()
        try applyDebugState(.idle)
        return try stop(.breakpoint(address: info.pc), pc: info.pc)
      case .debug(let info) where info.exception == 3 && watchingHandlers && handlers.vectors(at: info.pc) != nil:
        return try handlerReached(at: info.pc)
      case .debug(let info):
        let hits = (0..<4).filter { info.dr6 & (1 << UInt64($0)) != 0 }
        if let slot = hits.first(where: { hostSlots[$0] != nil }), let address = hostSlots[slot] {
          special = try vcpu.specialRegisters()
          try applyDebugState(.idle)
          return try stop(.breakpoint(address: address), pc: info.pc)
        }
        if let slot = hits.first(where: { guestSlots.contains($0) }) {
          // The guest's own breakpoint, in a slot it shares with ours: its #DB, its DR6 bit.
          if try vcpu.registers().rflags & RFlags.resume != 0 {
            // The guest returned to the instruction with RF set, which should have held this
            // breakpoint back for one instruction; with the host's registers loaded in its
            // place it fires anyway (seen on PVM). Run that instruction by a step, on.
            let first = try step()
            if first.reason != .step { return first }
            try applyDebugState(running)
            continue
          }
          _ = try deliverGuestDebugException(status: 1 << UInt64(slot))
          continue
        }
      case .portOut, .portIn, .mmioRead, .mmioWrite:
        let action = machine.serviceDeviceExit(exit, on: vcpu)
        if case .guestRequest(let value) = action {
          vcpu.requestImmediateExit()
          _ = try vcpu.run()  // finish the OUT; nothing after it runs
          special = try vcpu.specialRegisters()
          try applyDebugState(.idle)
          return try stop(.guestRequest(value: value))
        }
        if let outcome = machine.outcome(of: action) { return try stop(.exit(outcome)) }
      case .msrRead, .msrWrite:
        if let write = machine.serviceMSRExit(exit, on: vcpu), stopsAtMSRWrites {
          vcpu.requestImmediateExit()
          _ = try vcpu.run()  // finish the WRMSR; nothing after it runs
          vcpu.cancelImmediateExit()
          special = try vcpu.specialRegisters()
          try applyDebugState(.idle)
          return try stop(.msrWrite(index: write.index, value: write.value))
        }
      case .halt:
        let registers = try vcpu.registers()
        if registers.rflags & RFlags.interruptEnable == 0 {
          halted = true
          return try stop(.exit(.halted))
        }
        return try stop(.exit(.haltedForever(machine.snapshot(vcpu))))
      case .interrupted:
        if takeStopRequest() {
          special = try vcpu.specialRegisters()
          try applyDebugState(.idle)
          return try stop(.interrupted)
        }
        continue
      case .internalError(let suberror, _) where suberror == VCPUExit.emulationFailureSuberror:
        // On PVM an executed INT3 is an emulation failure at its address: ours, or the guest's.
        let now = special.cs.base &+ (try vcpu.registers().rip)
        if self.breakpoints[now] != nil {
          special = try vcpu.specialRegisters()
          try applyDebugState(.idle)
          return try stop(.breakpoint(address: now), pc: now)
        }
        if watchingHandlers && handlers.vectors(at: now) != nil { return try handlerReached(at: now) }
        if try machine.completeFailedEmulation(on: vcpu) { continue }
        return try stop(.exit(machine.terminalOutcome(of: exit, on: vcpu)!))
      case .shutdown, .internalError, .failedEntry, .systemEvent, .other:
        return try stop(.exit(machine.terminalOutcome(of: exit, on: vcpu)!))
      }
    }
  }
}

extension Stepper {
  /// A handler entry met at full speed: the guest has delivered the event and stands on the
  /// INT3 planted over the handler's first instruction. The frame is the guest's own (no
  /// host TF while running), so nothing in it needs undoing.
  fileprivate func handlerReached(at pc: UInt64) throws -> Stop {
    let vectors = handlers.vectors(at: pc) ?? []  // (before going idle takes the INT3s out)
    special = try vcpu.specialRegisters()
    try applyDebugState(.idle)
    let vector = Self.likelyVector(vectors, decoded: DecodedInstruction(kind: .other, length: 0))
    let result = try stop(vector < 32 ? .exception(vector: vector) : .interrupt(vector: vector), pc: pc)
    stoppedAtHandler = pc
    return result
  }
}

/// Stops a running stepper from another thread (a debugger's Ctrl-C, a new client).
public final class StopSwitch: Sendable {
  private let requested = Mutex(false)
  private let vcpu: VCPU

  init(vcpu: VCPU) { self.vcpu = vcpu }

  /// Makes the stepper's current or next `run(until:)` return `.interrupted`.
  public func requestStop() {
    requested.withLock { $0 = true }
    vcpu.kick()
  }

  /// Consumes a pending stop request; true if there was one.
  public func take() -> Bool {
    requested.withLock { value in
      defer { value = false }
      return value
    }
  }
}
