import KVM
import Machine

/// Steps one vCPU precisely: every instruction the guest executes is reported exactly once,
/// in order, with the guest unable to tell that it is being stepped. See the README's
/// "step contract" for the rules.
///
/// This file holds the state and the two entry points, `step()` and `run(until:watchingHandlers:)`,
/// which only dispatch; each rule is kept by an extension in a file of its own, whose comments
/// say how. Those in `KVM/` make good what KVM's single-step gets wrong (an engine that steps
/// exactly would need none of them); the others are the engine-agnostic part.
///
/// Must be driven from one thread (KVM wants vCPU ioctls from the thread that runs it).
public final class Stepper {
  public let machine: Machine
  /// The vCPU, whichever engine runs it (the interpreter twin after `switchEngine`).
  public internal(set) var vcpu: any VirtualCPU
  /// The same vCPU when KVM runs it: the KVM-only paths (everything under `KVM/`) use this.
  let kvmVCPU: VCPU?
  /// The interpreter vCPU this stepper drives: the machine's own, or on a KVM machine the
  /// twin its vCPU moved to (`switchEngine`); nil while KVM runs it.
  var interpreter: InterpreterVCPU?
  /// The KVM vCPU, on the paths only a KVM machine takes.
  var kvm: VCPU { kvmVCPU! }
  public internal(set) var policy: InterruptPolicy

  /// The guest's own EFLAGS.TF. KVM hides TF from KVM_GET_REGS while it single-steps and
  /// drops it when stepping is switched off, so the stepper keeps the guest's copy.
  var guestTrapFlag: Bool
  /// Halted with interrupts off: nothing will run again.
  var halted = false
  /// Halted with interrupts on (in-kernel APIC): the next step waits for an interrupt.
  var waitingForInterrupt = false
  /// Segment and control registers, refreshed only after instructions that can change them.
  /// On the interpreter a stop only marks them stale (`specialIsStale`), and the first read
  /// after it brings them up to date: a traced step would otherwise build and compare the
  /// whole set after every instruction, for a trace that never looks at them.
  var special: SpecialRegisters {
    get {
      if specialIsStale, let interpreter {
        specialIsStale = false
        // The interpreter's registers cannot fail to read; the last known ones are kept if they did.
        // (Set as the setter would, without going through it from inside the getter.)
        if let current = try? interpreter.specialRegisters(), current != storedSpecial {
          specialGeneration &+= 1
          storedSpecial = current
        }
      }
      return storedSpecial
    }
    set {
      specialIsStale = false
      // Only a real change counts: stops and event handlers re-read these often, and every bump
      // throws away the cached code-page translation.
      if newValue != storedSpecial { specialGeneration &+= 1 }
      storedSpecial = newValue
    }
  }
  private var storedSpecial: SpecialRegisters
  /// The interpreter has run since `storedSpecial` was read from it.
  var specialIsStale = false
  /// Bumped on every change of `special`, so caches keyed on it compare one integer.
  var specialGeneration = 0
  /// Reused for instruction bytes: no allocation per step.
  var fetchBuffer = [UInt8](repeating: 0, count: 15)
  /// Breakpoint bytes in guest memory, shared with the steppers of the other vCPUs.
  public let breakpoints: BreakpointStore
  var handlers: HandlerBreakpoints { breakpoints.handlers }
  var mode: Mode = .idle
  /// Which debug-register slots the host's breakpoints and the guest's own hold in the
  /// current run (see `DebugRegisterSharing`).
  var debugRegisterSharing = DebugRegisterSharing()
  /// Whether `run(until:)` stops after each trapped MSR write (`trace --msr-events` wants the
  /// stop; the event API, which hears of the write from inside the exit, does not).
  public var stopsAtMSRWrites = true
  /// The hardware breakpoint the last `run(until:)` stopped at, while still standing there.
  var stoppedAtBreakpoint: UInt64?
  /// The handler entry the last `run(until:watchingHandlers: true)` stopped at: its planted
  /// INT3 has not run, and the next run steps the real first instruction before going on.
  var stoppedAtHandler: UInt64?

  /// How other threads stop a running `run(until:)`.
  public let stopSwitch: StopSwitch
  /// The linear PC of the next instruction when known without asking KVM (KVM_GET_REGS is
  /// the dearest part of a step on some hosts, so a plain step does without it).
  var knownPC: UInt64?
  /// On the interpreter: the platform has nothing new for this vCPU for `steps` more retired
  /// instructions (to the next device deadline), unless its device accesses pass `accesses`
  /// (see `platformIsQuiet`).
  var quietPlatform: (steps: UInt64, accesses: UInt64)?
  /// The last code page translated, reused while paging state is unchanged.
  var codePage: (linear: UInt64, physical: UInt64, generation: Int)?
  /// On KVM: the memory watches (`setMemoryWatches`), served through pages KVM sees
  /// protected (KVM/Stepper+ProtectedPages.swift), and where their bytes are now.
  var kvmMemoryWatches: [MemoryWatch] = []
  var kvmWatchPieces: [WatchPiece] = []
  /// On hosts where Hyperstep serves the guest's data breakpoints (PVM): its debug registers
  /// may have changed since they were last read (Machine/GuestDataBreakpoints.swift).
  var guestDebugRegistersStale = true
  /// On KVM: pages where a guest write stops a run for the caller's compare (its write
  /// watchpoints' pages) or a new translation (the page tables mapping watched bytes).
  var writeStopPages = Set<UInt64>()

  enum Mode: Equatable {
    case idle
    case stepping
    case running(breakpoints: [UInt64], handlers: Bool)
  }

  /// - Parameter breakpoints: the store shared with the other vCPUs' steppers (a new one if nil).
  public init(
    machine: Machine, vcpu index: Int = 0, policy: InterruptPolicy = .block, breakpoints: BreakpointStore? = nil
  )
    throws
  {
    guard machine.cpus.indices.contains(index) else { throw DebuggerError("there is no vCPU \(index)") }
    self.machine = machine
    self.vcpu = machine.cpus[index]
    kvmVCPU = machine.kvmVCPUs.isEmpty ? nil : machine.kvmVCPUs[index]
    interpreter = machine.interpreterVCPUs.isEmpty ? nil : machine.interpreterVCPUs[index]
    self.policy = policy
    vcpu.bindToCurrentThread()
    // Nearly every stop reads the registers; let KVM hand them over with the exit.
    _ = kvmVCPU?.mirrorStateOnExit([.registers, .specialRegisters])
    guestTrapFlag = try vcpu.registers().rflags & RFlags.trap != 0
    storedSpecial = try vcpu.specialRegisters()
    self.breakpoints = breakpoints ?? BreakpointStore(machine: machine)
    stopSwitch = StopSwitch(vcpu: vcpu)
  }

  /// The linear address of the next instruction.
  public func pc() throws -> UInt64 {
    if let knownPC { return knownPC }
    let pc = special.cs.base &+ (try vcpu.registers().rip)
    knownPC = pc
    return pc
  }

  /// Every stop is made here: it records what the next `run(until:)` must step off first.
  func stop(_ reason: StopReason, pc: UInt64? = nil) throws -> Stop {
    if let pc { knownPC = pc }
    if case .breakpoint(let address) = reason { stoppedAtBreakpoint = address } else { stoppedAtBreakpoint = nil }
    stoppedAtHandler = nil
    return Stop(reason: reason, pc: try self.pc(), vcpu: vcpu.id)
  }

  /// The stop for an exit that ends the machine (triple fault, failed entry, emulation failure...).
  func terminalStop(_ exit: VCPUExit) throws -> Stop {
    try stop(.exit(machine.terminalOutcome(of: exit, on: kvm)!))
  }

  /// Makes a running `run(until:)` return `.interrupted` soon. Safe from any thread.
  public func requestStop() { stopSwitch.requestStop() }

  // MARK: Stepping

  /// Executes exactly one instruction (or delivers one event) and stops before the next.
  public func step() throws -> Stop {
    if let interpreter { return try interpreterStep(interpreter) }
    let guestBreakpoints = machine.servesGuestDataBreakpoints
    guard !kvmMemoryWatches.isEmpty || guestBreakpoints else { return try kvmStep() }
    // Watched pages are protected: the step's accesses to them are compared afterwards.
    if guestBreakpoints && guestDebugRegistersStale {
      try machine.followGuestDataBreakpoints(kvm)
      guestDebugRegistersStale = false
    }
    let stop: Stop
    if kvmMemoryWatches.isEmpty && machine.memoryProtection.isEmpty {
      stop = try kvmStep()  // no page protected: nothing to compare
    } else {
      let pc = try self.pc()
      _ = machine.takeProtectedAccesses(vcpu: kvm.id)
      _ = machine.takeAssistWatchHits(kvm)
      stop = try withWatchHits(try kvmStep(), pc: pc)
    }
    // A stepped MOV to a debug register (0F 23, after any prefixes): read them before the next.
    if guestBreakpoints, let opcode = fetchBuffer.firstIndex(where: { !Self.isPrefix($0) }),
      opcode + 1 < fetchBuffer.count, fetchBuffer[opcode] == 0x0f, fetchBuffer[opcode + 1] == 0x23
    {
      guestDebugRegistersStale = true
    }
    return stop
  }

  private static func isDebugExit(_ exit: VCPUExit) -> Bool {
    if case .debug = exit { return true }
    return false
  }

  /// Legacy prefixes and REX, which may come before an opcode.
  private static func isPrefix(_ byte: UInt8) -> Bool {
    switch byte {
    case 0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x66, 0x67, 0xf0, 0xf2, 0xf3, 0x40...0x4f: true
    default: false
    }
  }

  private func kvmStep() throws -> Stop {
    if let away = machine.kernelChipsAway(from: kvm.id) { throw DebuggerError(away) }
    kvm.bindToCurrentThread()  // any one thread at a time may drive a stepper
    if let halt = try haltedStop() { return halt }
    if waitingForInterrupt { return try waitForInterrupt() }
    try enterStepping()
    let pc = try self.pc()
    // The stepper's own INT3s stand in for the instruction that runs now: lift them for one step.
    let lifted = handlers.lift(at: pc)
    defer { if lifted { handlers.replant(at: pc) } }
    let hostBreakpoint = breakpoints[pc]
    if let hostBreakpoint { try machine.memory.store(hostBreakpoint.original, at: hostBreakpoint.physical) }
    // The same byte was just written with `try`: putting the INT3 back cannot fail.
    defer { if let hostBreakpoint { try? machine.memory.store(UInt8(0xcc), at: hostBreakpoint.physical) } }
    let decoded = decode(at: pc)
    // A plain instruction needs no registers (no KVM_GET_REGS); the others read or retire it.
    let registers = try decoded.kind == .other ? Registers() : kvm.registers()
    knownPC = nil

    switch decoded.kind {
    case .halt:
      return try retireHalt(decoded, registers: registers)
    case .softwareInterrupt(_, let opcode) where opcode != .into || registers.rflags & RFlags.overflow != 0:
      return try stepThroughInterpreter()
    case .interruptReturn:
      return try stepThroughInterpreter()
    default:
      return try singleStep(at: pc, decoded, registers: registers)
    }
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
    if let interpreter {
      return try interpreterRun(interpreter, until: breakpoints, watchingHandlers: watchingHandlers)
    }
    if let away = machine.kernelChipsAway(from: kvm.id) { throw DebuggerError(away) }
    if let first = try stepOffStop(runningTo: breakpoints), first.reason != .step { return first }
    kvm.bindToCurrentThread()
    // Without an interrupt controller nothing can wake a vCPU halted with interrupts off;
    // with one, it sleeps in the kernel until something does (or until it is stopped).
    if halted && !machine.hasInterruptController { return try stop(.halt(interruptsEnabled: false)) }
    knownPC = nil  // (a stop requested before this call ends it at once: callers clear stale ones)
    halted = false
    waitingForInterrupt = false
    let running = try runningMode(breakpoints: breakpoints, watchingHandlers: watchingHandlers)
    try applyDebugState(running)
    let guestBreakpoints = machine.servesGuestDataBreakpoints
    if guestBreakpoints && guestDebugRegistersStale { try machine.followGuestDataBreakpoints(kvm) }
    while true {
      let exit = try kvm.run()
      // The guest may have written its debug registers while it ran (no exit on this host);
      // not read at the host's breakpoint exits, the event API's fastest path.
      if guestBreakpoints, !Self.isDebugExit(exit) { try machine.followGuestDataBreakpoints(kvm, force: false) }
      guestDebugRegistersStale = false
      if let stop = try stopAfterRunning(exit, mode: running, watchingHandlers: watchingHandlers) { return stop }
    }
  }
}
