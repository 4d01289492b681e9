import KVM
import Machine

/// Running at full speed (`run(until:watchingHandlers:)`): what each exit means, and how a
/// run starts from the stop before it.
extension Stepper {
  /// Stopped by a host breakpoint where we stand: step off it first (a step runs the byte an
  /// INT3 replaced), or it would fire again at once. (Arriving at one by other means is a
  /// hit, which the run reports.) The same for a handler entry: its planted INT3 stands in
  /// for the real instruction. Returns the step's stop if it stepped.
  func stepOffStop(runningTo breakpoints: [UInt64]) throws -> Stop? {
    let standingOn =
      stoppedAtHandler
      ?? stoppedAtBreakpoint.flatMap { hit in breakpoints.contains(hit) || self.breakpoints[hit] != nil ? hit : nil }
    guard let standingOn, try pc() == standingOn else { return nil }
    return try step()
  }

  /// The mode for a run to these breakpoints. An application processor still waiting for
  /// INIT/SIPI never starts while KVM loads debug registers for it (seen on PVM): it runs
  /// without hardware breakpoints until then.
  func runningMode(breakpoints: [UInt64], watchingHandlers: Bool) throws -> Mode {
    let state = machine.hasInterruptController ? try kvm.multiprocessingState() : .runnable
    let waitingForStartup = state == .uninitialized || state == .initReceived
    return .running(
      breakpoints: waitingForStartup ? [] : breakpoints, handlers: watchingHandlers && !waitingForStartup)
  }

  /// A stop at full speed: the guest may have changed its segment and control registers
  /// since the last stop, and the vCPU stands still until the next step or run.
  func stopRunning(_ reason: StopReason, pc: UInt64? = nil) throws -> Stop {
    special = try kvm.specialRegisters()
    try applyDebugState(.idle)
    return try stop(reason, pc: pc)
  }

  /// Enters KVM once more to complete the instruction whose access exited, with an immediate
  /// exit so that nothing after it runs.
  private func finishExitedInstruction() throws {
    kvm.requestImmediateExit()
    _ = try kvm.run()
    kvm.cancelImmediateExit()
  }

  /// The stop an exit of a run in `mode` makes, or nil to run on.
  func stopAfterRunning(_ exit: VCPUExit, mode running: Mode, watchingHandlers: Bool) throws -> Stop? {
    switch exit {
    case .debug(let info):
      return try stopAfterDebugExit(info, mode: running, watchingHandlers: watchingHandlers)
    case .mmioRead(let address, let size) where machine.isAbsentToKVM(address, size: size),
      .mmioWrite(let address, let size, _) where machine.isWriteProtected(address, size: size):
      // A guest access to a page protected for watches, the debugger's or the guest's own
      // data breakpoints (Stepper+ProtectedPages).
      return try stopAfterProtectedAccess(exit, mode: running, watchingHandlers: watchingHandlers)
    case .portOut, .portIn, .mmioRead, .mmioWrite:
      let action = machine.serviceDeviceExit(exit, on: kvm)
      if case .guestRequest(let value) = action {
        kvm.requestImmediateExit()
        _ = try kvm.run()  // finish the OUT; nothing after it runs
        return try stopRunning(.guestRequest(value: value))
      }
      if let outcome = machine.outcome(of: action) { return try stop(.exit(outcome)) }
      return nil
    case .msrRead, .msrWrite:
      guard let write = machine.serviceMSRExit(exit, on: kvm), stopsAtMSRWrites else { return nil }
      try finishExitedInstruction()  // the WRMSR
      return try stopRunning(.msrWrite(index: write.index, value: write.value))
    case .halt:
      return try haltedWhileRunning()
    case .interrupted:
      return try stopSwitch.take() ? stopRunning(.interrupted) : nil
    case .internalError(let suberror, _) where suberror == VCPUExit.emulationFailureSuberror:
      // On PVM an executed INT3 is an emulation failure at its address: ours, or the guest's.
      let now = special.cs.base &+ (try kvm.registers().rip)
      if self.breakpoints[now] != nil { return try stopRunning(.breakpoint(address: now), pc: now) }
      if watchingHandlers && handlers.vectors(at: now) != nil { return try handlerReached(at: now) }
      if !kvmMemoryWatches.isEmpty {
        // Code on a page absent to KVM, or any instruction KVM cannot run: the interpreter,
        // comparing accesses with the watches.
        return try stopAfterAbsentCode(at: now, mode: running, watchingHandlers: watchingHandlers)
      }
      // Any other instruction KVM could not run: the interpreter runs it, and KVM goes on.
      if let outcome = machine.completeWithInterpreter(kvm, failure: exit) { return try stop(.exit(outcome)) }
      try assistedInstructionDone(replantingHandlers: watchingHandlers)
      // The interpreter writes RAM directly, past KVM's protection: let the caller compare.
      if !machine.writeProtectedPages.isEmpty { return try stopRunning(.protectedPageWritten) }
      return nil
    case .shutdown where !machine.memoryProtection.isEmpty:
      // KVM could not write an exception frame to a protected page: the interpreter delivers
      // the fault again (Machine.deliverOnInterpreterAfterShutdown).
      switch machine.deliverOnInterpreterAfterShutdown(kvm) {
      case .failure(let end): return try stop(.exit(end.outcome))
      case .success(let vector):
        try assistedInstructionDone(replantingHandlers: watchingHandlers)
        return watchingHandlers ? try stopRunning(.exception(vector: vector)) : nil
      }
    case .shutdown, .internalError, .failedEntry, .systemEvent, .other:
      return try terminalStop(exit)
    }
  }

  /// A #BP or #DB at full speed: a host breakpoint (INT3 or debug register), a handler
  /// entry, or the guest's own debug-register breakpoint, which goes to the guest.
  private func stopAfterDebugExit(_ info: DebugExit, mode running: Mode, watchingHandlers: Bool) throws -> Stop? {
    if info.exception == 3 && self.breakpoints[info.pc] != nil {
      return try stopRunning(.breakpoint(address: info.pc), pc: info.pc)
    }
    if info.exception == 3 && watchingHandlers && handlers.vectors(at: info.pc) != nil {
      return try handlerReached(at: info.pc)
    }
    switch debugRegisterSharing.hit(dr6: info.dr6) {
    case .host(let address):
      return try stopRunning(.breakpoint(address: address), pc: info.pc)
    case .guest(let slot):
      // The guest's own breakpoint, in a slot it shares with ours: its #DB, its DR6 bit.
      if try kvm.registers().rflags & RFlags.resume != 0 {
        // The guest returned to the instruction with RF set, which should have held this
        // breakpoint back for one instruction; with the host's registers loaded in its
        // place it fires anyway (seen on PVM). Run that instruction by a step, on.
        let first = try step()
        if first.reason != .step { return first }
        try applyDebugState(running)
        return nil
      }
      _ = try deliverGuestDebugException(status: 1 << UInt64(slot))
      return nil
    case nil:
      return nil
    }
  }
}
