import Devices
import KVM
import Machine
import X86

/// Stepping and running on the interpreter engine. The interpreter executes exactly one
/// instruction per `step()` and touches nothing else, so none of the KVM fixes apply: no
/// trap flag is borrowed, no INT3 is planted (host breakpoints are compared with the PC
/// before each instruction, so the guest never sees them in its memory), and interrupts
/// come from the machine's own platform at exact instructions (`Machine.serviceInterrupts`).
extension Stepper {
  /// Instructions run between looks at the stop switch while running.
  static let interpreterRunSlice: UInt64 = 10_000

  func interpreterStep(_ vcpu: InterpreterVCPU) throws -> Stop {
    // Interrupts reach a stepped vCPU only under the `deliver` policy, or when it waits in HLT.
    if !platformIsQuiet(vcpu) {
      if let delivered = machine.serviceInterrupts(vcpu, deliver: policy == .deliver) {
        return try interpreterStop(after: delivered, vcpu)
      }
      // (Only the platform's start-up IPI ends the wait, so a quiet platform means none.)
      if vcpu.waitingForStartup { return try stop(.halt(interruptsEnabled: false)) }
      expectQuietPlatform(vcpu)
    }
    if vcpu.cpu.isHalted {
      guard vcpu.cpu.interruptFlag else {
        halted = true
        return try interpreterStop(.halt(interruptsEnabled: false), vcpu)
      }
      // Halted with interrupts on: the step is the wait for the next interrupt, and the stop
      // is at its handler's first instruction (as on KVM). Virtual time skips to the timer.
      while true {
        if let delivered = machine.serviceInterrupts(vcpu, deliver: true) {
          return try interpreterStop(after: delivered, vcpu)
        }
        if stopSwitch.take() { return try interpreterStop(.interrupted, vcpu) }
        quietPlatform = nil  // the clock jumps
        if !machine.skipIdleTime(for: vcpu) {
          if machine.cpus.count == 1 { return try interpreterStop(.exit(.haltedForever(machine.snapshot(vcpu))), vcpu) }
          HostIO.sleep(milliseconds: 1)  // another vCPU may yet send an interrupt
        }
      }
    }
    // One REP iteration per step, as KVM's single-step (the hardware's TF) gives.
    return try interpreterStop(afterStepping: vcpu.cpu.stepForStepper(repeatIterations: true), vcpu)
  }

  /// The stop after one stepped instruction (`interpreterStep`'s end, and the end of a run of
  /// quiet steps at an instruction that did more than retire).
  func interpreterStop(afterStepping stepped: X86CPU.Stepped, _ vcpu: InterpreterVCPU) throws -> Stop {
    var stepped = stepped
    // MOV SS / POP SS: the next instruction runs in their shadow with no stop of its own, as
    // on the CPU (step contract 1).
    if case .retired = stepped.result, stepped.inStackSegmentShadow {
      countRetired()
      stepped = vcpu.cpu.stepForStepper(repeatIterations: true)
    }
    let result = stepped.result
    if case .retired = result {
      countRetired()
      if stepped.watchHit, let access = try memoryAccessStop(vcpu) { return access }
      return interpreterStepStop(vcpu, pc: stepped.linearPC)
    }
    quietPlatform = nil
    return try interpreterStop(after: result, vcpu)
  }

  /// Whether the platform can have nothing new for a stepped vCPU: asking it (under the bus
  /// lock, every device brought to the vCPU's time) would otherwise be most of a traced step.
  /// True only under the `block` policy on a one-vCPU machine, before the next device
  /// deadline, and while the vCPU has touched no device since it last asked. Then the answer
  /// would be what it was: devices change only at their deadlines or when accessed, and under
  /// `block` the answer only refreshes the CPU's interrupt line, which a step does not read
  /// (a run, and a halt, ask afresh). Under `deliver` every step asks, since whether a pending
  /// interrupt is taken changes with the guest's IF and interrupt shadow.
  func platformIsQuiet(_ vcpu: InterpreterVCPU) -> Bool {
    guard let quiet = quietPlatform, policy == .block else { return false }
    return vcpu.deviceAccesses == quiet.accesses
  }

  /// One instruction retired: one step closer to the next device deadline (none left: ask).
  private func countRetired() {
    guard let quiet = quietPlatform else { return }
    quietPlatform = quiet.steps > 1 ? (quiet.steps - 1, quiet.accesses) : nil
  }

  /// After asking the platform: how long its answer holds (see `platformIsQuiet`).
  private func expectQuietPlatform(_ vcpu: InterpreterVCPU) {
    guard policy == .block && machine.cpus.count == 1 else {
      quietPlatform = nil
      return
    }
    let budget = machine.instructionBudget(vcpu, limit: Self.quietPlatformLimit)
    quietPlatform = (budget, vcpu.deviceAccesses)
  }

  /// The most steps taken without asking the platform, deadline or not.
  static let quietPlatformLimit: UInt64 = 1 << 20

  /// Runs until a breakpoint (any number: they are addresses compared with the PC, not
  /// debug-register slots), a device's request, a halt, or `requestStop()`.
  func interpreterRun(_ vcpu: InterpreterVCPU, until addresses: [UInt64], watchingHandlers: Bool) throws -> Stop {
    knownPC = nil
    quietPlatform = nil
    halted = false
    let targets = Set(addresses).union(breakpoints.addresses)
    let cpu = vcpu.cpu
    // Stopped at a breakpoint where we stand: its instruction runs first (the stop was before
    // it), or it would fire again at once. Arriving at one by another stop is a hit, as on KVM.
    let here = try pc()
    // The breakpoints are the CPU's execute ranges for the run: decoded blocks keep running
    // everywhere but next to one (InterpreterVCPU.setRunBreakpoints).
    vcpu.setRunBreakpoints(targets.sorted())
    defer { vcpu.setRunBreakpoints([]) }
    if stoppedAtBreakpoint == here { vcpu.passRunBreakpoint() }
    while true {
      if stopSwitch.take() { return try interpreterStop(.interrupted, vcpu) }
      if let delivered = machine.serviceInterrupts(vcpu, deliver: true),
        let stop = try interpreterStopWhileRunning(after: delivered, vcpu, watchingDeliveries: watchingHandlers)
      {
        return stop
      }
      if vcpu.waitingForStartup {
        HostIO.sleep(milliseconds: 1)  // until another vCPU's start-up IPI
        continue
      }
      if cpu.isHalted {
        if let stop = try interpreterHaltedWhileRunning(vcpu) { return stop }
        continue
      }
      let budget = machine.instructionBudget(vcpu, limit: Self.interpreterRunSlice)
      let (_, result) = cpu.run(maxInstructions: budget)
      if let address = vcpu.takeBreakpointHit() { return try interpreterStop(.breakpoint(address: address), vcpu) }
      if let stop = try interpreterStopWhileRunning(after: result, vcpu, watchingDeliveries: watchingHandlers) {
        return stop
      }
    }
  }

  /// Watches memory for accesses: any number of ranges, of any length, linear or physical,
  /// compared with every data access (and fetch) the guest makes; a run or step that touches
  /// one stops with `.memoryAccess`. Replaces the previous watches; empty: none.
  /// On KVM (a one-vCPU machine whose KVM has read-only slots: `Machine.canWriteProtect`)
  /// the caller protects the pages `kvmWatchProtection` names, and the watches are served
  /// at full speed through them (KVM/Stepper+ProtectedPages.swift).
  public func setMemoryWatches(_ watches: [MemoryWatch]) throws {
    guard let interpreter else {
      guard watches.isEmpty || machine.canWriteProtect else {
        throw DebuggerError(
          "memory-access watches on KVM need a one-vCPU machine whose KVM has read-only memory slots; use --accel emu")
      }
      kvmMemoryWatches = watches
      kvmWatchPieces = []
      giveWatchesToAssist()
      return
    }
    interpreter.setMemoryWatches(watches)
  }

  /// The stop for watched accesses the last instructions made, if any.
  private func memoryAccessStop(_ vcpu: InterpreterVCPU) throws -> Stop? {
    let hits = vcpu.takeMemoryAccessHits()
    return hits.isEmpty ? nil : try interpreterStop(.memoryAccess(hits), vcpu)
  }

  /// A stop made on the interpreter: the stepper's view of the segment and control
  /// registers is marked stale (any instruction may have changed them), to be read again
  /// when something asks for it. Nothing of the state is copied: a traced step is this.
  func interpreterStop(_ reason: StopReason, _ vcpu: InterpreterVCPU, pc: UInt64? = nil) throws -> Stop {
    specialIsStale = true
    return try stop(reason, pc: pc ?? vcpu.cpu.linearPC)
  }

  /// `interpreterStop(.step, ...)` after a plain instruction: the same stop, made directly.
  func interpreterStepStop(_ vcpu: InterpreterVCPU, pc: UInt64) -> Stop {
    specialIsStale = true
    knownPC = pc
    stoppedAtBreakpoint = nil
    stoppedAtHandler = nil
    return Stop(reason: .step, pc: pc, vcpu: vcpu.id)
  }

  /// The stop after one instruction stepped on its own (or one event delivered).
  func interpreterStop(after result: StepResult, _ vcpu: InterpreterVCPU) throws -> Stop {
    if let access = try memoryAccessStop(vcpu) { return access }
    switch result {
    case .retired:
      return try interpreterStop(.step, vcpu)
    case .ioStop:
      // A step over a trapped WRMSR says so, as on KVM (whether or not runs stop at them).
      if let write = vcpu.takeMSRWrite() {
        return try interpreterStop(.msrWrite(index: write.index, value: write.value), vcpu)
      }
      return try interpreterStopWhileRunning(after: result, vcpu, watchingDeliveries: true)
        ?? interpreterStop(.step, vcpu)
    case .halted:
      let interruptsOn = vcpu.cpu.interruptFlag
      if !interruptsOn { halted = true }
      return try interpreterStop(.halt(interruptsEnabled: interruptsOn), vcpu)
    default:
      return try interpreterStopWhileRunning(after: result, vcpu, watchingDeliveries: true)
        ?? interpreterStop(.step, vcpu)
    }
  }

  /// The stop a run makes after an instruction that did more than retire; nil to run on.
  /// With `watchingDeliveries`, an exception or interrupt delivered stops at its handler's
  /// first instruction (always for a step; for a run when it watches handlers).
  func interpreterStopWhileRunning(after result: StepResult, _ vcpu: InterpreterVCPU, watchingDeliveries: Bool)
    throws -> Stop?
  {
    if let access = try memoryAccessStop(vcpu) { return access }
    switch result {
    case .retired, .halted:
      return nil  // a halt is looked at by the run loop, which may skip time to a timer
    case .ioStop:
      if let write = vcpu.takeMSRWrite(), stopsAtMSRWrites {
        return try interpreterStop(.msrWrite(index: write.index, value: write.value), vcpu)
      }
      let action = vcpu.takeDeviceAction()
      if case .guestRequest(let value) = action { return try interpreterStop(.guestRequest(value: value), vcpu) }
      if let outcome = machine.outcome(of: action) { return try interpreterStop(.exit(outcome), vcpu) }
      return nil
    case .delivered(let event):
      machine.noteDelivery(result, on: vcpu)
      // The stop is at the handler's first instruction, as KVM's stepper makes it.
      guard watchingDeliveries else { return nil }
      let reason: StopReason =
        event.kind == .externalInterrupt ? .interrupt(vector: event.vector) : .exception(vector: event.vector)
      return try interpreterStop(reason, vcpu)
    case .exception, .unsupported, .tripleFault:
      return try interpreterStop(.exit(machine.interpreterOutcome(of: result, on: vcpu)!), vcpu)
    }
  }

  /// HLT while running: with interrupts off the machine has ended cleanly; with them on, the
  /// run waits for the next interrupt (virtual time skips to the next timer), or ends when
  /// nothing could ever raise one. Nil: go on running.
  func interpreterHaltedWhileRunning(_ vcpu: InterpreterVCPU) throws -> Stop? {
    if !vcpu.cpu.interruptFlag {
      halted = true
      return try interpreterStop(.exit(.halted), vcpu)
    }
    if machine.skipIdleTime(for: vcpu) { return nil }
    if machine.cpus.count > 1 {
      HostIO.sleep(milliseconds: 1)  // another vCPU may yet send an interrupt
      return nil
    }
    return try interpreterStop(.exit(.haltedForever(machine.snapshot(vcpu))), vcpu)
  }
}
