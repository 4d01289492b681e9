import KVM
import Machine

/// The interrupt policy while stepping (README, step contract 4): `block` holds interrupts,
/// NMIs and SMIs (KVM_GUESTDBG_BLOCKIRQ, set in `applyDebugState`), except after a HLT with
/// interrupts on, which waits for one; `deliver` lets them in.
extension Stepper {
  public func setPolicy(_ policy: InterruptPolicy) throws {
    self.policy = policy
    if mode == .stepping { try applyDebugState(.stepping) }
  }

  /// After HLT with interrupts on: the vCPU sleeps until an interrupt arrives, even under the
  /// `block` policy (nothing else could wake it), and the stop is at the handler's first
  /// instruction.
  func waitForInterrupt() throws -> Stop {
    waitingForInterrupt = false
    try applyDebugState(.stepping, admitInterrupts: true)
    // A defer cannot throw; if KVM refuses this setting it refuses the next step's too, which reports it.
    defer { try? applyDebugState(.stepping) }
    knownPC = nil
    let none = DecodedInstruction(kind: .other, length: 0)
    while true {
      let exit = try kvm.run()
      switch exit {
      case .debug(let info):
        if info.exception == 3, let vectors = handlers.vectors(at: info.pc) {
          return try handlerEntry(at: info.pc, vectors: vectors, trapDue: false, decoded: none)
        }
        return try stop(.step, pc: info.pc)
      case .internalError(let suberror, _) where suberror == VCPUExit.emulationFailureSuberror:
        let now = special.cs.base &+ (try kvm.registers().rip)
        if let vectors = handlers.vectors(at: now) {
          return try handlerEntry(at: now, vectors: vectors, trapDue: false, decoded: none)
        }
        return try terminalStop(exit)
      case .interrupted:
        continue
      case .portIn, .portOut, .mmioRead, .mmioWrite:
        let action = machine.serviceDeviceExit(exit, on: kvm)
        if let outcome = machine.outcome(of: action) { return try stop(.exit(outcome)) }
      case .msrRead, .msrWrite:
        _ = machine.serviceMSRExit(exit, on: kvm)
      case .halt:
        return try stop(.step)
      case .shutdown, .internalError, .failedEntry, .systemEvent, .other:
        return try terminalStop(exit)
      }
    }
  }
}
