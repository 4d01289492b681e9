import Devices
import KVM
import Synchronization
import X86

/// Instructions KVM cannot carry out, carried out by Hyperstep's interpreter.
///
/// When KVM's instruction emulator gives up (an emulation failure: on PVM hosts INT n, INT3,
/// INTO and IRET in protected mode, `lock cmpxchg16b`, DAA, LDMXCSR and more), the vCPU's
/// whole state (`EngineState`) moves into an interpreter CPU that shares guest RAM and the
/// machine's devices, the interpreter runs that one instruction (delivering any exception it
/// raises through the guest's IDT, as the CPU would), and the state moves back; KVM goes on.
/// One general path instead of a user-space copy of each instruction KVM lacks.
///
/// What does not cross: KVM's in-kernel interrupt controllers. An assisted instruction that
/// reaches one of them (the PIC, PIT or speaker ports, the local APIC or I/O APIC page) is not
/// completed: its effect on the in-kernel chip cannot be made from here, and the guest stops
/// with an error naming the instruction, as it did before the assist existed.
final class KVMAssist: @unchecked Sendable {
  // @unchecked: used only by the thread driving its vCPU (`Machine.assist(for:)`).
  unowned let machine: Machine
  let vcpu: VCPU
  /// The vCPU's interpreter twin (the one an engine switch moves it to): its `InterpreterBus`
  /// reaches the machine's devices as KVM's exits do, and access watchers read its state.
  let twin: InterpreterVCPU
  var cpu: X86CPU { twin.cpu }

  init(machine: Machine, vcpu: VCPU) {
    self.machine = machine
    self.vcpu = vcpu
    twin = machine.interpreterTwin(for: vcpu.id)
  }

  private var bus: InterpreterBus { twin.bus! }  // a twin always has its bus (Machine.interpreterTwin)

  /// What became of the instruction KVM gave up on.
  enum Outcome {
    /// Done: KVM can run on.
    case completed
    /// Done, and a device asked for this (the debug-exit port, a reset, a power-off).
    case deviceAction(DeviceAction)
    /// The instruction was HLT (or delivery halted): the vCPU is halted.
    case halted
    /// The instruction's exception could not be delivered: the guest's machine shuts down.
    case tripleFault
    /// Not carried out, and why.
    case refused(String)
  }

  /// Runs the instruction at the vCPU's RIP in the interpreter and gives the state back.
  func completeInstruction() throws -> Outcome {
    try step().outcome
  }

  /// Moves the vCPU into the interpreter, runs up to `count` steps there (an instruction, or
  /// the delivery of the exception an instruction raised, as the CPU would make it; stopping
  /// early at a device's request, a halt or an end) and moves it back. Returns the steps.
  func run(instructions count: UInt64, carryingTime: Bool) throws -> (executed: UInt64, outcome: Outcome) {
    try run(instructions: count, carryingTime: carryingTime) { _ in true }
  }

  /// As above, asking `goOn` before every step after the first whether to take it.
  func run(instructions count: UInt64, carryingTime: Bool, while goOn: (X86CPU) -> Bool) throws -> (
    executed: UInt64, outcome: Outcome
  ) {
    let before = try moveIn()
    // Steps, as the stepper counts them: an instruction retired, or an event delivered by
    // an instruction that faulted (which retires nothing, but is progress).
    var steps: UInt64 = 0
    while steps < count {
      if steps > 0 && !goOn(cpu) { break }
      let result = cpu.step()
      steps &+= 1
      let outcome = self.outcome(of: result)
      guard case .completed = outcome else {
        if case .refused = outcome { return (steps, outcome) }
        if case .tripleFault = outcome { return (steps, outcome) }
        try moveOut(since: before, carryingTime: carryingTime)
        return (steps, outcome)
      }
    }
    try moveOut(since: before, carryingTime: carryingTime)
    return (steps, .completed)
  }

  /// One step in the interpreter, and what the CPU made of it (`.delivered` names the event
  /// delivered, the CPU then at its handler's first instruction).
  func step() throws -> (result: StepResult, outcome: Outcome) {
    try once { $0.step() }
  }

  /// Delivers exception `vector` between instructions, as a trap (the return address is RIP
  /// as it stands), through the guest's IDT or IVT.
  func deliverTrap(vector: UInt8) throws -> (result: StepResult, outcome: Outcome) {
    try once { $0.deliverTrap(vector: vector) }
  }

  /// Moves the vCPU in, does `body` to the interpreter once, and moves it back, unless the
  /// result is one KVM must not see (a refusal leaves KVM's state as it was; after a triple
  /// fault the state is the one before the instruction anyway).
  private func once(_ body: (X86CPU) -> StepResult) throws -> (result: StepResult, outcome: Outcome) {
    let before = try moveIn()
    let result = body(cpu)
    let outcome = self.outcome(of: result)
    switch outcome {
    case .refused, .tripleFault: break
    default: try moveOut(since: before, carryingTime: false)
    }
    return (result, outcome)
  }

  /// The vCPU's state from KVM into the interpreter; returns it, for `moveOut`.
  private func moveIn() throws -> EngineState {
    let before = try EngineState(reading: vcpu)
    cpu.state = before.x86State
    // Guest RAM may have changed under KVM since the last assist: decode afresh.
    cpu.invalidateDecodedInstructions()
    bus.kernelDeviceAccess = nil
    _ = twin.takeDeviceAction()
    return before
  }

  /// The interpreter's state back into KVM (only what changed since `before`). Without
  /// `carryingTime` KVM's TSC runs on by itself: writing back the value read before would
  /// set it back by the time the assist took. With it, KVM goes on from the interpreter's.
  private func moveOut(since before: EngineState, carryingTime: Bool) throws {
    var after = EngineState(cpu.state)
    if !carryingTime, let tsc = EngineState.transferredMSRs.firstIndex(of: MSRIndex.tsc) {
      after.msrs[tsc] = before.msrs[tsc]
    }
    try after.write(to: vcpu, since: before)
  }

  /// What one interpreter step means for KVM's run.
  private func outcome(of result: StepResult) -> Outcome {
    if let conflict = bus.kernelDeviceAccess {
      return .refused("the instruction reaches \(conflict), which KVM emulates in the kernel")
    }
    switch result {
    case .retired, .delivered: return .completed
    case .ioStop:
      let action = twin.takeDeviceAction()
      return action == .none ? .completed : .deviceAction(action)
    case .halted: return .halted
    case .tripleFault: return .tripleFault
    case .exception(let exception): return .refused("the interpreter raised \(exception) undelivered")
    case .unsupported(let feature): return .refused("the guest needs \(feature), which the interpreter lacks")
    }
  }
}

extension Machine {
  /// The interpreter that completes `vcpu`'s failed instructions (made on first use; each
  /// vCPU's is touched only by the thread driving that vCPU).
  func assist(for vcpu: VCPU) -> KVMAssist {
    kvmAssists.withLock { assists in
      if let assist = assists[vcpu.id] { return assist }
      let assist = KVMAssist(machine: self, vcpu: vcpu)
      assists[vcpu.id] = assist
      return assist
    }
  }

  /// What a run loop does after KVM failed to emulate an instruction: the outcome that ends
  /// the run, or nil when the interpreter carried the instruction out and KVM can go on.
  public func completeWithInterpreter(_ vcpu: VCPU, failure exit: VCPUExit) -> RunOutcome? {
    let outcome: KVMAssist.Outcome
    do {
      outcome = try assist(for: vcpu).completeInstruction()
    } catch {
      return .internalError(description: "cannot move the vCPU to the interpreter: \(error)", snapshot(vcpu))
    }
    switch outcome {
    case .completed: return nil
    case .deviceAction(let action): return self.outcome(of: action)
    case .halted:
      if hasInterruptController {
        // Halted in the kernel, as after a HLT KVM ran: an interrupt wakes it.
        do {
          try vcpu.setMultiprocessingState(.halted)
        } catch {
          return .internalError(description: "cannot halt the vCPU in KVM: \(error)", snapshot(vcpu))
        }
        return nil
      }
      return haltOutcome(vcpu)
    case .tripleFault: return .tripleFault(snapshot(vcpu))
    case .refused(let reason):
      guard case .internalError(let description, let state)? = terminalOutcome(of: exit, on: vcpu) else {
        return terminalOutcome(of: exit, on: vcpu)
      }
      return .internalError(description: description + "; the interpreter did not complete it: " + reason, state)
    }
  }
}

extension Machine {
  /// Moves a KVM vCPU into the interpreter for up to `steps` steps (instructions, or events
  /// delivered by faulting ones) and back, losing nothing (`EngineState`; the TSC goes on
  /// from the interpreter's count; on a one-vCPU machine with KVM's in-kernel chips, their
  /// state too, and the interpreter then takes interrupts as it runs). Returns the steps taken and the outcome that ends the
  /// machine, if the guest ended it there. A debugger stepping the vCPU releases it first
  /// (`Stepper.releaseForOtherEngine`).
  public func runOnInterpreter(_ vcpu: VCPU, steps: UInt64) throws -> (steps: UInt64, outcome: RunOutcome?) {
    if kernelChipModels != nil && engineSwitchRefusal == nil {
      return try runWithKernelChips(vcpu, steps: steps)
    }
    let (taken, outcome) = try assist(for: vcpu).run(instructions: steps, carryingTime: true)
    return (taken, ending(outcome, vcpu))
  }

  /// `runOnInterpreter` on a one-vCPU machine with KVM's in-kernel chips: the vCPU moves with
  /// their state (`moveToInterpreter`), runs as the interpreter runs a vCPU (interrupts taken
  /// where the CPU would take them; halted with interrupts on, virtual time skips to the next
  /// timer, and that wait is a step, as is taking the interrupt), and moves back with it (`moveToKVM`; still
  /// halted, KVM keeps waiting). A halt with interrupts off ends the run as on KVM.
  private func runWithKernelChips(_ vcpu: VCPU, steps: UInt64) throws -> (steps: UInt64, outcome: RunOutcome?) {
    let twin = try moveToInterpreter(vcpu.id)
    var taken: UInt64 = 0
    var outcome: RunOutcome?
    while taken < steps && outcome == nil {
      if let delivered = serviceInterrupts(twin, deliver: true) {
        taken += 1
        outcome = interpreterOutcome(of: delivered, on: twin)
        continue
      }
      if twin.cpu.isHalted {
        guard twin.cpu.interruptFlag else {
          outcome = haltOutcome(twin)
          break
        }
        // Waiting to the next device deadline is a step (it may bring no interrupt, if the
        // guest masked it, and the run must end all the same).
        taken += 1
        if !skipIdleTime(for: twin) { outcome = haltOutcome(twin) }  // nothing will ever wake it
        continue
      }
      let result = twin.cpu.step()
      taken += 1
      outcome = interpreterOutcome(of: result, on: twin)
    }
    try moveToKVM(vcpu.id)
    return (taken, outcome)
  }

  /// The outcome that ends the machine after the interpreter ran a KVM vCPU, or nil when the
  /// guest goes on. (A halt ends a run here as KVM's HLT exit ends the plain run loop's.)
  func ending(_ outcome: KVMAssist.Outcome, _ vcpu: VCPU) -> RunOutcome? {
    switch outcome {
    case .completed: nil
    case .deviceAction(let action): self.outcome(of: action)
    case .halted: haltOutcome(vcpu)
    case .tripleFault: .tripleFault(snapshot(vcpu))
    case .refused(let reason):
      .internalError(description: "the interpreter cannot carry out the instruction: " + reason, snapshot(vcpu))
    }
  }
}

/// One step of a KVM vCPU that the interpreter made (`Machine.stepOnInterpreter`).
public enum InterpreterStep: Sendable, Equatable {
  /// An instruction retired.
  case retired
  /// An event was delivered through the guest's IDT or IVT (by the instruction: INT n, a
  /// fault, a single-step trap after it; or injected): the vCPU is at its handler.
  case delivered(vector: UInt8)
  /// The guest ended the machine there (a device's request, a halt, a triple fault) or the
  /// interpreter could not go on (the outcome says why).
  case ended(RunOutcome)
}

extension Machine {
  /// Runs the instruction at a KVM vCPU's RIP in the interpreter (a debugger's step of an
  /// instruction KVM cannot step faithfully: INT n, IRET on hosts that lose the trap after
  /// it). The stepper releases the vCPU first (`Stepper.releaseForOtherEngine`).
  public func stepOnInterpreter(_ vcpu: VCPU) throws -> InterpreterStep {
    let (result, outcome) = try assist(for: vcpu).step()
    return try interpreterStep(result, outcome, vcpu)
  }

  /// Delivers exception `vector` to a KVM vCPU's guest, as a trap between instructions (the
  /// return address is RIP as it stands), through the interpreter's delivery: the guest's
  /// own #DB after a single-step trap KVM swallowed, say. The caller sets DR6 first.
  public func deliverTrapOnInterpreter(_ vcpu: VCPU, vector: UInt8) throws -> InterpreterStep {
    let (result, outcome) = try assist(for: vcpu).deliverTrap(vector: vector)
    return try interpreterStep(result, outcome, vcpu)
  }

  private func interpreterStep(_ result: StepResult, _ outcome: KVMAssist.Outcome, _ vcpu: VCPU) throws
    -> InterpreterStep
  {
    if let end = ending(outcome, vcpu) { return .ended(end) }
    if case .delivered(let event) = result { return .delivered(vector: event.vector) }
    return .retired
  }
}
