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

  /// INT n, INT3, INTO (with OF set) and INT1: delivered here, so the frame shows the guest's
  /// own TF and the stop is at the handler.
  func deliverSoftwareInterrupt(
    vector: UInt8, opcode: DecodedInstruction.SoftwareInterruptOpcode, _ decoded: DecodedInstruction,
    registers: Registers
  ) throws -> Stop {
    var registers = registers
    var newSpecial = special
    let frame = try InterruptDelivery.deliver(
      vector: vector, returnAddress: registers.rip &+ UInt64(decoded.length), flags: guestFlags(registers),
      software: opcode != .int1, registers: &registers, special: &newSpecial, memory: machine.memory)
    try setState(registers, special: newSpecial)
    guestTrapFlag = false
    try applyDebugState(.stepping)
    return try stop(.exception(vector: vector), pc: frame.handler)
  }

  /// IRET: retired here, as a host that emulates IRET may lose the step trap after it. The
  /// flags it loads carry the guest's TF; a TF set before it still traps after it.
  func retireInterruptReturn(operandBytes width: Int, registers: Registers) throws -> Stop {
    let trapDue = guestTrapFlag
    var registers = registers
    var newSpecial = special
    let flags = try InterruptDelivery.interruptReturn(
      operandBytes: width, registers: &registers, special: &newSpecial, memory: machine.memory)
    guestTrapFlag = flags & RFlags.trap != 0
    registers.rflags &= ~RFlags.trap
    try setState(registers, special: newSpecial)
    handlers.refresh(for: special)
    try applyDebugState(.stepping)
    if trapDue { return try deliverGuestSingleStep() }
    return try stop(.step)
  }
}
