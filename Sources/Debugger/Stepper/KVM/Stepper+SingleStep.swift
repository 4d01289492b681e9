import KVM
import Machine

/// One instruction by KVM's single-step (KVM_GUESTDBG_SINGLESTEP), with what it loses made
/// good: the stop after device accesses (`Stepper+AccessCompletion`), the stop at a handler's
/// entry (`Stepper+HandlerEntry`), the guest's own TF (`Stepper+GuestTrapFlag`), and the stop
/// some hosts make inside a MOV SS shadow.
extension Stepper {
  /// What one exit of KVM_RUN means for the instruction being stepped.
  enum StepExit {
    /// Not done yet: enter KVM again.
    case runAgain
    /// The instruction is done; the stop is after it.
    case done
    /// The step ends here with this stop (a handler entry, the machine's end).
    case stop(Stop)
  }

  /// Steps the instruction at `pc` (decoded as `decoded`; `registers` are read when it is not
  /// a plain one) and makes the stop after it.
  func singleStep(at pc: UInt64, _ decoded: DecodedInstruction, registers: Registers) throws -> Stop {
    let trapDue = guestTrapFlag
    // A POPF loads TF from the stack: read it before the POPF runs.
    var trapFlagAfter: Bool?
    if case .popFlags = decoded.kind { trapFlagAfter = try stackFlagsTrapBit(registers, slot: 0, width: 0) }
    let faultHandler = try faultHandlerBreakpoint(for: decoded, registers: registers)
    // A defer cannot throw; if KVM refuses this setting it refuses the next step's too, which reports it.
    defer { if faultHandler != nil { try? applyDebugState(.stepping) } }

    var accesses = PendingAccesses()
    runLoop: while true {
      let exit = try kvm.run()
      switch try stepExit(exit, at: pc, decoded, trapDue: trapDue, faultHandler: faultHandler, &accesses) {
      case .runAgain: continue
      case .done: break runLoop
      case .stop(let stop): return stop
      }
    }
    return try stopAfterStep(decoded, trapDue: trapDue, trapFlagAfter: trapFlagAfter, accesses)
  }

  private func stepExit(
    _ exit: VCPUExit, at pc: UInt64, _ decoded: DecodedInstruction, trapDue: Bool, faultHandler: FaultHandler?,
    _ accesses: inout PendingAccesses
  ) throws -> StepExit {
    switch exit {
    case .debug(let info):
      if let entry = try handlerEntry(after: info, trapDue: trapDue, decoded: decoded, faultHandler: faultHandler) {
        return .stop(entry)
      }
      if accesses.completing { kvm.cancelImmediateExit() }
      knownPC = info.pc
      return .done
    case .portOut, .portIn, .mmioRead, .mmioWrite:
      if let stop = try serviceDeviceAccess(exit, &accesses) { return .stop(stop) }
      return .runAgain
    case .msrRead, .msrWrite:
      serviceMSRAccess(exit, &accesses)
      return .runAgain
    case .interrupted:
      guard accesses.completing else { return .runAgain }
      return try accessCompleted(at: pc, decoded, &accesses)
    case .halt:
      return .done
    case .internalError(let suberror, _) where suberror == VCPUExit.emulationFailureSuberror:
      let now = special.cs.base &+ (try kvm.registers().rip)
      if let vectors = handlers.vectors(at: now) {
        // Some hosts (PVM) report an executed INT3 as an emulation failure at its address.
        return .stop(try handlerEntry(at: now, vectors: vectors, trapDue: trapDue, decoded: decoded))
      }
      // An instruction KVM could not run: the interpreter runs it (KVMAssist), and that
      // is the step. An exception it raised was delivered: the stop is at the handler, as
      // for any faulting instruction, and no single-step trap follows a fault.
      switch try machine.stepOnInterpreter(kvm) {
      case .retired:
        try assistedInstructionDone(replantingHandlers: true)
        return .done
      case .delivered(let vector):
        try assistedInstructionDone(replantingHandlers: true)
        guestTrapFlag = false
        return .stop(try stop(.exception(vector: vector), pc: try self.pc()))
      case .ended(let outcome):
        return .stop(try stop(.exit(outcome)))
      }
    case .shutdown where !machine.memoryProtection.isEmpty:
      // KVM could not write an exception frame to a protected page: the interpreter delivers
      // the fault again (Machine.deliverOnInterpreterAfterShutdown), and the step ends at
      // the handler, as for any faulting instruction.
      switch machine.deliverOnInterpreterAfterShutdown(kvm) {
      case .failure(let end): return .stop(try stop(.exit(end.outcome)))
      case .success(let vector):
        try assistedInstructionDone(replantingHandlers: true)
        guestTrapFlag = false
        return .stop(try stop(.exception(vector: vector), pc: try self.pc()))
      }
    case .shutdown, .internalError, .failedEntry, .systemEvent, .other:
      return .stop(try terminalStop(exit))
    }
  }

  /// The stop after a stepped instruction, once its state is brought up to date.
  private func stopAfterStep(
    _ decoded: DecodedInstruction, trapDue: Bool, trapFlagAfter: Bool?, _ accesses: PendingAccesses
  ) throws -> Stop {
    if let trapFlagAfter {
      guestTrapFlag = trapFlagAfter
      try applyDebugState(.stepping)  // KVM forgets its own TF when the guest pops one
    }
    if decoded.changesSystemState {
      special = try kvm.specialRegisters()
      knownPC = nil
      handlers.refresh(for: special)
    }
    if decoded.kind == .loadStackSegment {
      // MOV SS / POP SS: the next instruction runs in their shadow, with no trap (and so no
      // stop) between them. Some hosts stop there anyway; the stepper runs on to match the CPU.
      if let request = accesses.request { return try stop(.guestRequest(value: request)) }
      return try step()
    }
    if trapDue {
      // The guest's own single-step trap, which KVM swallowed: deliver #DB with DR6.BS.
      return try deliverGuestSingleStep()
    }
    if let request = accesses.request { return try stop(.guestRequest(value: request)) }
    if let msrWrite = accesses.msrWrite { return try stop(.msrWrite(index: msrWrite.index, value: msrWrite.value)) }
    return try stop(.step)
  }
}

extension Stepper {
  /// After the interpreter completed an instruction for KVM: it may have changed modes,
  /// segments or paging (an IRET, a far transfer, an exception delivered), so what the
  /// stepper keeps of them is read again, and the handler breakpoints follow a new IDT when
  /// the mode plants them (stepping, or running while exceptions are watched).
  func assistedInstructionDone(replantingHandlers: Bool) throws {
    special = try kvm.specialRegisters()
    knownPC = nil
    if replantingHandlers { handlers.refresh(for: special) }
  }
}
