import GuestMemory

/// The AArch64 interpreter proper: state, memory and counters in one struct mutated through
/// `inout`, as the x86 core is, so that the hot path makes no class accesses, reference
/// counting or allocation per instruction.
struct A64Core {
  var state = A64State()
  let ram: GuestRAM
  /// Only MMIO, HVC/SMC and semihosting reach this existential; none is a hot path.
  var bus: any A64Bus
  var retiredInstructions: UInt64 = 0
  /// The generic timer's count when `retiredInstructions` was 0: the counter runs at
  /// `counterFrequency`, one tick per retired instruction (virtual time, as on x86).
  var counterBase: UInt64 = 0
  var deliversExceptions = false
  /// Set by a device write or a call that asked to stop; reported after the instruction.
  var ioStopRequested = false
  /// The address of the last instruction the decoder did not know, until taken.
  var undefinedInstructionAddress: UInt64?
  /// The CPU's index: MPIDR_EL1.Aff0.
  var cpuIndex: UInt8 = 0
  /// The interrupt lines the platform's interrupt controller drives.
  var irqLine = false
  var fiqLine = false
  /// Decoded instructions by physical address.
  var decodeCache = A64DecodeCache()
  /// Translations of the MMU (`A64TLB`), dropped on TLBI, TTBR/TCR/SCTLR writes.
  var tlb = A64TLB()
  /// Breakpoints, watchpoints or software step may fire (`refreshDebugArmed`): the only
  /// debug test on the hot path.
  var debugArmed = false
  var stepSyndrome = StepSyndrome()
  /// A host debugger's breakpoints and watches (`HostDebug`); `hostArmed` when it has any.
  var host = HostDebug()
  var hostArmed = false
  /// Counts what may change the platform's interrupt lines: MMIO accesses, HVC/SMC and
  /// semihosting calls, and writes to the timer registers. A tracer skips refreshing the
  /// interrupt lines between steps that leave it unchanged (`VirtMachine.stepPlain`).
  var platformEpoch: UInt64 = 0
  /// The machine's global exclusive monitor, when it has more than one CPU.
  var globalMonitor: GlobalExclusiveMonitor?

  /// The generic counter's frequency, CNTFRQ_EL0: one tick per instruction at a nominal 1 GHz.
  static let counterFrequency: UInt64 = 1_000_000_000

  init(ram: GuestRAM, bus: any A64Bus) {
    self.ram = ram
    self.bus = bus
  }

  var counter: UInt64 { counterBase &+ retiredInstructions }

  // MARK: Stepping

  /// Executes one instruction (or takes a pending exception), as `A64CPU.step` describes.
  mutating func step() -> A64StepResult {
    if state.waiting { return .waiting }
    let pc = state.pc
    // Software step (D2.12): in the active-pending state the Software Step exception is
    // taken before the next instruction; in active-not-pending the instruction runs and
    // the state becomes active-pending.
    if hostArmed, let stop = hostStopBeforeInstruction(pc) { return stop }
    let stepping = debugArmed && softwareStepActive
    if stepping && !state.pstate.ss { return raise(softwareStepException(), at: pc) }
    do throws(A64Exception) {
      if state.pstate.il { throw .illegalExecutionState }
      if pc & 3 != 0 { throw .pcAlignment(pc) }
      if debugArmed && breakpointMatches(pc) {
        throw .make(state.pstate.el == 0 ? .breakpointLower : .breakpointSame, iss: Self.debugFaultStatus)
      }
      let instruction = try fetch(pc)
      state.pc = pc &+ 4
      try execute(instruction, at: pc)
      retiredInstructions &+= 1
      if stepping && instruction.operation != .exceptionReturn {
        state.pstate.ss = false
        let exclusive = instruction.operation == .loadExclusive || instruction.operation == .loadExclusivePair
        stepSyndrome = StepSyndrome(valid: true, exclusive: exclusive)
      } else if instruction.operation == .exceptionReturn {
        // Active-pending entered by an exception return: the syndrome's EX is not valid.
        stepSyndrome = StepSyndrome()
      }
      if ioStopRequested {
        ioStopRequested = false
        return .ioStop
      }
      return state.waiting ? .waiting : .retired
    } catch {
      state.pc = pc
      if error == .hostStop {
        if let hit = host.hit {
          host.hit = nil
          return .hostWatch(address: hit.address, write: hit.write)
        }
        if let write = host.systemRegisterHit {
          host.systemRegisterHit = nil
          return .hostSystemRegisterWrite(write.name, value: write.value)
        }
      }
      if error == .undefined { undefinedInstructionAddress = pc }
      return raise(error, at: pc)
    }
  }

  /// Steps while each step retires plainly, calling `body` with the PC after each, until
  /// `body` answers false, a step does anything else, or one touched a device (changed
  /// `platformEpoch`) or reached `deadline` on the counter (the caller samples the interrupt
  /// lines again). One access to the core for the whole run, where a step per call from
  /// outside costs a dynamic exclusivity check and a copy of the state to read the PC.
  mutating func stepPlainly(deadline: UInt64?, body: (UInt64) -> Bool) -> A64PlainRunEnd {
    while true {
      let epoch = platformEpoch
      let result = step()
      guard result == .retired, !state.waiting else { return .other(result) }
      if !body(state.pc) { return .body }
      if platformEpoch != epoch || deadline.map({ counter >= $0 }) ?? false { return .refresh }
    }
  }

  /// Runs up to `budget` instructions; stops early on anything but a plain retirement.
  mutating func run(budget: UInt64) -> (executed: UInt64, stop: A64StepResult) {
    let start = retiredInstructions
    while retiredInstructions &- start < budget {
      if irqLine && state.pstate.daif & PState.i == 0 || fiqLine && state.pstate.daif & PState.f == 0 {
        return (retiredInstructions &- start, .retired)
      }
      let result = step()
      if result != .retired { return (retiredInstructions &- start, result) }
    }
    return (retiredInstructions &- start, .retired)
  }

  /// The decoded instruction at a virtual PC.
  /// Read straight out of its cache slot: an `Optional` in between made every fetch copy the
  /// instruction twice through the stack (a store-forwarding stall the profile showed).
  @inline(__always)
  mutating func fetch(_ pc: UInt64) throws(A64Exception) -> A64Instruction {
    let physical = try translate(pc, .fetch)
    let slot = A64DecodeCache.slot(physical)
    if !decodeCache.holds(slot, physical) { try decode(at: physical, pc: pc) }
    return decodeCache.slots[slot].instruction
  }

  @inline(never)
  mutating func decode(at physical: UInt64, pc: UInt64) throws(A64Exception) {
    guard let word = ram.loadPhysical(UInt32.self, at: physical) else {
      // Instructions come from RAM only: a fetch from MMIO space is an external abort.
      throw .instructionAbort(pc, .synchronousExternal, fromLowerLevel: state.pstate.el == 0)
    }
    decodeCache.insert(A64Decoder.decode(word), at: physical)
  }

  /// An exception `error` raised by the instruction at `pc`: taken to EL1 when exceptions
  /// are delivered, else returned with the state as before the instruction.
  mutating func raise(_ error: A64Exception, at pc: UInt64) -> A64StepResult {
    guard deliversExceptions else { return .exception(error) }
    // SVC, HVC and SMC return to the next instruction; everything else to the faulting one
    // (ARM ARM D1.10.1, "preferred exception return address").
    let generated: Bool
    switch A64Exception.Class(rawValue: UInt32(error.exceptionClass)) {
    case .supervisorCall, .hypervisorCall, .secureMonitorCall: generated = true
    default: generated = false
    }
    if generated {
      retiredInstructions &+= 1
      // SVC, HVC and SMC complete before they trap: a step in progress moves on to
      // active-pending, so SPSR_EL1.SS is 0 (D2.12.5).
      if debugArmed && softwareStepActive {
        state.pstate.ss = false
        stepSyndrome = StepSyndrome(valid: true, exclusive: false)
      }
    }
    takeException(error, returnAddress: generated ? pc &+ 4 : pc, vectorOffset: 0)
    return .delivered(error)
  }

  // MARK: Exception entry (ARM ARM D1.10, AArch64.TakeException)

  /// Takes an exception to EL1: ESR, FAR, ELR and SPSR written, PSTATE masked, the PC at
  /// VBAR_EL1 + the vector for the current state + `vectorOffset` (0 synchronous, 0x80 IRQ,
  /// 0x100 FIQ, 0x180 SError).
  mutating func takeException(_ exception: A64Exception?, returnAddress: UInt64, vectorOffset: UInt64) {
    let base: UInt64 = state.pstate.el == 0 ? 0x400 : (state.pstate.spSel ? 0x200 : 0)
    state.system.spsr = state.pstate.spsr
    state.system.elr = returnAddress
    if let exception {
      state.system.esr = UInt64(exception.syndrome)
      if let address = exception.faultAddress { state.system.far = address }
    }
    state.pstate.el = 1
    state.pstate.spSel = true
    state.pstate.daif = 0x3c0
    state.pstate.ss = false
    state.pstate.il = false
    state.waiting = false
    state.pc = (state.system.vbar & ~0x7ff) &+ base &+ vectorOffset
  }

  /// Takes a pending IRQ or FIQ if PSTATE lets it in (D1.13): true when one was taken.
  mutating func takeInterruptIfPending() -> Bool {
    if fiqLine && state.pstate.daif & PState.f == 0 {
      takeException(nil, returnAddress: state.pc, vectorOffset: 0x100)
      return true
    }
    if irqLine && state.pstate.daif & PState.i == 0 {
      takeException(nil, returnAddress: state.pc, vectorOffset: 0x80)
      return true
    }
    return false
  }
}

// MARK: Registers, read in place

extension A64Core {
  /// Register `n` (31: XZR). `mutating`, so the read is of the core in place: through a
  /// method of `A64State` the optimiser copied all of X0-X30 (248 bytes) per read.
  @inline(__always) mutating func reg(_ n: UInt8) -> UInt64 { n == 31 ? 0 : state.x[Int(n)] }

  /// Register `n` where 31 is the stack pointer.
  @inline(__always) mutating func regOrSP(_ n: UInt8) -> UInt64 { n == 31 ? state.sp : state.x[Int(n)] }
}
