import KVM
import Machine

/// Port I/O, MMIO and MSR accesses KVM hands to user space during a step (README, step
/// contract 1). KVM drops the step trap after them (the next stop came one instruction
/// late, and none came inside a KVM-emulated read-modify-write), so the stepper completes
/// the instruction with `immediate_exit` set: KVM finishes it and returns before running
/// anything else.
extension Stepper {
  /// What a step's accesses leave to report once the instruction is done.
  struct PendingAccesses {
    /// A value the guest wrote to the control port.
    var request: UInt32?
    /// A trapped MSR write, carried out.
    var msrWrite: (index: UInt32, value: UInt64)?
    /// An access was serviced and the instruction is being completed with `immediate_exit`.
    var completing = false
  }

  /// Carries out a port or MMIO access; returns a stop if it ended the machine.
  func serviceDeviceAccess(_ exit: VCPUExit, _ accesses: inout PendingAccesses) throws -> Stop? {
    let action = machine.serviceDeviceExit(exit, on: kvm)
    if case .guestRequest(let value) = action {
      accesses.request = value
    } else if let outcome = machine.outcome(of: action) {
      return try stop(.exit(outcome))
    }
    completeWithImmediateExit(&accesses)
    return nil
  }

  /// Carries out an MSR access (a write is reported after the instruction).
  func serviceMSRAccess(_ exit: VCPUExit, _ accesses: inout PendingAccesses) {
    accesses.msrWrite = machine.serviceMSRExit(exit, on: kvm)
    completeWithImmediateExit(&accesses)
  }

  private func completeWithImmediateExit(_ accesses: inout PendingAccesses) {
    kvm.requestImmediateExit()
    accesses.completing = true
  }

  /// KVM returned after completing the access: the instruction is done, unless it was the
  /// last I/O iteration of a REP string instruction. KVM finishes that without moving RIP
  /// on, and retires it on the next entry, executing nothing: let it, so the stop after the
  /// last iteration is at the next instruction, as on the CPU.
  func accessCompleted(at pc: UInt64, _ decoded: DecodedInstruction, _ accesses: inout PendingAccesses) throws
    -> StepExit
  {
    if let countBytes = decoded.repeatCountBytes {
      let now = try kvm.registers()
      let mask: UInt64 = countBytes == 8 ? .max : (1 << (8 * UInt64(countBytes))) - 1
      if special.cs.base &+ now.rip == pc && now.rcx & mask == 0 {
        accesses.completing = false
        return .runAgain
      }
    }
    return .done
  }
}
