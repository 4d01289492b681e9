import KVM
import Machine

/// Instructions the stepper carries out itself instead of letting KVM single-step them:
/// KVM's step runs straight past HLT, and on some hosts (PVM) INT n, INT3, INTO and IRET end
/// in an emulation failure or lose the step trap (README, step contract 1 and 2).
extension Stepper {
  /// HLT: retired here and reported as a halt. With interrupts off the vCPU stays halted;
  /// with them on (and an in-kernel APIC) the next step waits for an interrupt.
  func retireHalt(_ decoded: DecodedInstruction, registers: Registers) throws -> Stop {
    var registers = registers
    registers.rip &+= UInt64(decoded.length)
    try kvm.setRegisters(registers)
    try applyDebugState(.stepping)
    let interruptsOn = registers.rflags & RFlags.interruptEnable != 0
    if machine.hasInterruptController {
      // Halted in the kernel, as the CPU would be after HLT: an interrupt (or INIT, NMI)
      // wakes it when it runs again.
      try kvm.setMultiprocessingState(.halted)
    }
    if interruptsOn && machine.hasInterruptController {
      waitingForInterrupt = true
    } else {
      halted = true
    }
    return try stop(.halt(interruptsEnabled: interruptsOn))
  }

  /// INT n, INT3, INTO (with OF set) and INT1, and IRET: run by the interpreter from the
  /// guest's state (its own TF included), as some hosts (PVM) cannot emulate them or lose
  /// the step trap after them. The frame shows the guest's TF; a TF set before an IRET traps
  /// after it (the interpreter delivers that #DB in the same step, as the CPU would); the TF
  /// an IRET loads is the guest's from then on. The stop is at the handler of whatever was
  /// delivered, or after the instruction.
  func stepThroughInterpreter() throws -> Stop {
    try releaseForOtherEngine()
    let step = try machine.stepOnInterpreter(kvm)
    try reclaimFromOtherEngine()
    try applyDebugState(.stepping)
    switch step {
    case .retired: return try stop(.step)
    case .delivered(let vector): return try stop(.exception(vector: vector), pc: try pc())
    case .ended(let outcome): return try stop(.exit(outcome))
    }
  }
}
