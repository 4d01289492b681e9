import Devices
import KVM
import Machine
import X86

/// Stepping and running on the interpreter engine. The interpreter executes exactly one
/// instruction per `step()` and touches nothing else, so none of the KVM fixes apply: no
/// trap flag is borrowed, no INT3 is planted (host breakpoints are compared with the PC
/// before each instruction, so the guest never sees them in its memory), and interrupts
/// reach a stepped vCPU only through the interpreter's own delivery.
extension Stepper {
  /// Instructions run between looks at the stop switch while running.
  static let interpreterRunSlice = 10_000

  func interpreterStep(_ vcpu: InterpreterVCPU) throws -> Stop {
    if vcpu.waitingForStartup { return try stop(.halt(interruptsEnabled: false)) }
    if vcpu.cpu.state.halted {
      // Nothing can wake it yet (the interpreter's machines have no interrupt sources).
      return try stop(.halt(interruptsEnabled: vcpu.cpu.state.rflags & RFlags.interruptEnable != 0))
    }
    let result = vcpu.cpu.step()
    return try interpreterStop(after: result, vcpu, running: false)
  }

  /// Runs until a breakpoint (any number: they are addresses compared with the PC, not
  /// debug-register slots), a device's request, a halt, or `requestStop()`.
  func interpreterRun(_ vcpu: InterpreterVCPU, until addresses: [UInt64], watchingHandlers: Bool) throws -> Stop {
    knownPC = nil
    halted = false
    if vcpu.waitingForStartup { return try stop(.halt(interruptsEnabled: false)) }
    let targets = Set(addresses).union(breakpoints.addresses)
    let cpu = vcpu.cpu
    // Stopped at a breakpoint where we stand: its instruction runs first (the stop was before
    // it), or it would fire again at once. Arriving at one by another stop is a hit, as on KVM.
    let here = try pc()
    var first = stoppedAtBreakpoint == here
    while true {
      if stopSwitch.take() { return try interpreterStop(.interrupted, vcpu) }
      if cpu.state.halted { return try interpreterHaltedWhileRunning(vcpu) }
      if targets.isEmpty {
        let (_, result) = cpu.run(maxInstructions: UInt64(Self.interpreterRunSlice))
        if case .retired = result { continue }
        if let stop = try interpreterStopWhileRunning(after: result, vcpu, watchingDeliveries: watchingHandlers) {
          return stop
        }
        continue
      }
      for _ in 0..<Self.interpreterRunSlice {
        let state = cpu.state
        let pc = state[.cs].base &+ state.rip
        if !first && targets.contains(pc) { return try interpreterStop(.breakpoint(address: pc), vcpu) }
        first = false
        let result = cpu.step()
        if case .retired = result { continue }
        if let stop = try interpreterStopWhileRunning(after: result, vcpu, watchingDeliveries: watchingHandlers) {
          return stop
        }
        if cpu.state.halted { break }
      }
    }
  }

  /// A stop made on the interpreter: the stepper's view of the segment and control
  /// registers is refreshed first (any instruction may have changed them).
  func interpreterStop(_ reason: StopReason, _ vcpu: InterpreterVCPU) throws -> Stop {
    let state = vcpu.cpu.state
    special = state.specialRegisters
    return try stop(reason, pc: state[.cs].base &+ state.rip)
  }

  /// The stop after one instruction stepped on its own.
  func interpreterStop(after result: StepResult, _ vcpu: InterpreterVCPU, running: Bool) throws -> Stop {
    switch result {
    case .retired:
      return try interpreterStop(.step, vcpu)
    case .halted:
      let interruptsOn = vcpu.cpu.state.rflags & RFlags.interruptEnable != 0
      if !interruptsOn { halted = true }
      return try interpreterStop(.halt(interruptsEnabled: interruptsOn), vcpu)
    default:
      return try interpreterStopWhileRunning(after: result, vcpu, watchingDeliveries: true)
        ?? interpreterStop(.step, vcpu)
    }
  }

  /// The stop a run makes after an instruction that did more than retire; nil to run on.
  /// With `watchingDeliveries`, an exception or interrupt delivered stops at its handler's first
  /// instruction (always for a step; for a run when it watches handlers).
  func interpreterStopWhileRunning(after result: StepResult, _ vcpu: InterpreterVCPU, watchingDeliveries: Bool)
    throws -> Stop?
  {
    switch result {
    case .retired:
      return nil
    case .halted:
      return try interpreterHaltedWhileRunning(vcpu)
    case .ioStop:
      let action = vcpu.takeDeviceAction()
      if case .guestRequest(let value) = action { return try interpreterStop(.guestRequest(value: value), vcpu) }
      if let outcome = machine.outcome(of: action) { return try interpreterStop(.exit(outcome), vcpu) }
      return nil
    case .delivered(let event):
      // The stop is at the handler's first instruction, as KVM's stepper makes it.
      guard watchingDeliveries else { return nil }
      let reason: StopReason =
        event.kind == .externalInterrupt ? .interrupt(vector: event.vector) : .exception(vector: event.vector)
      return try interpreterStop(reason, vcpu)
    case .exception, .unsupported, .tripleFault:
      return try interpreterStop(.exit(machine.interpreterOutcome(of: result, on: vcpu)!), vcpu)
    }
  }

  /// HLT while running: with interrupts off the machine has ended cleanly; with them on,
  /// nothing could ever wake it (the interpreter's machines have no interrupt sources yet).
  func interpreterHaltedWhileRunning(_ vcpu: InterpreterVCPU) throws -> Stop {
    if vcpu.cpu.state.rflags & RFlags.interruptEnable == 0 {
      halted = true
      return try interpreterStop(.exit(.halted), vcpu)
    }
    return try interpreterStop(.exit(.haltedForever(machine.snapshot(vcpu))), vcpu)
  }
}
