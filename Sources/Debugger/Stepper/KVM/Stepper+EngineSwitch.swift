import KVM
import Machine

/// Handing a stepped KVM vCPU to the interpreter and taking it back (`Machine.runOnInterpreter`).
/// While it steps, the stepper keeps part of the guest's state outside KVM's registers: the
/// guest's own TF (KVM hides it) and the INT3 bytes at handler entries. Both must be the
/// guest's again before another engine reads the state, and the stepper's cached view of it
/// must be read afresh after.
extension Stepper {
  /// Puts the guest's TF back in RFLAGS and the handler bytes back in memory (the `.idle`
  /// debug state), so that the vCPU's state in KVM is exactly the guest's. Host software
  /// breakpoints stay planted: call only where none is set, or where reaching one in the
  /// other engine is acceptable (it would run the guest's INT3 there).
  public func releaseForOtherEngine() throws {
    guard interpreter == nil else { return }
    try applyDebugState(.idle)
    guestTrapFlag = false
  }

  /// After another engine ran the vCPU: the guest's TF is whatever RFLAGS holds now, and the
  /// segment and control registers, the PC and the handler table are read again.
  public func reclaimFromOtherEngine() throws {
    guard interpreter == nil else { return }
    // As when the stepper is made: the next step's debug state takes it from here.
    guestTrapFlag = try kvm.registers().rflags & RFlags.trap != 0
    // The other engine may have run it out of a halt, or into one: the next step asks KVM.
    halted = false
    waitingForInterrupt = false
    try assistedInstructionDone(replantingHandlers: mode == .stepping)
  }
}
