import KVM
import Machine

/// A vCPU that cannot run: halted with interrupts off (nothing will run again), halted in
/// the kernel while it ran, or an application processor that never started.
extension Stepper {
  /// The stop a step makes instead of running, when the vCPU cannot run; nil when it can.
  func haltedStop() throws -> Stop? {
    if halted { return try stop(.halt(interruptsEnabled: false)) }
    guard machine.hasInterruptController && !waitingForInterrupt else { return nil }
    // A vCPU that halted (in the kernel) while running, or never started, cannot step:
    // KVM_RUN would wait for an interrupt or a SIPI. Report it instead of blocking.
    switch try kvm.multiprocessingState() {
    case .halted:
      let interruptsOn = try kvm.registers().rflags & RFlags.interruptEnable != 0
      if interruptsOn { waitingForInterrupt = true } else { halted = true }
      return try stop(.halt(interruptsEnabled: interruptsOn))
    case .uninitialized, .initReceived:
      return try stop(.halt(interruptsEnabled: false))
    default:
      return nil
    }
  }

  /// HLT at full speed (no in-kernel APIC, so it exits): with interrupts off the machine has
  /// ended cleanly; with them on nothing could ever wake it.
  func haltedWhileRunning() throws -> Stop {
    let registers = try kvm.registers()
    if registers.rflags & RFlags.interruptEnable == 0 {
      halted = true
      return try stop(.exit(.halted))
    }
    return try stop(.exit(.haltedForever(machine.snapshot(vcpu))))
  }
}
