import KVM
import Machine

/// The guest's own TF and #DB (README, step contract 3). KVM hides TF while it single-steps,
/// drops it when stepping stops and swallows the guest's own single-step traps, so the
/// stepper keeps the guest's TF (from POPF and IRET) and delivers each trap itself.
extension Stepper {
  /// DR6.BS: the #DB came from single-stepping.
  static let singleStepStatus: UInt64 = 1 << 14

  /// RFLAGS as the guest sees it: KVM hides the guest's own TF while stepping.
  public func guestFlags(_ registers: Registers) -> UInt64 {
    if interpreter != nil { return registers.rflags }  // the interpreter hides nothing
    return (registers.rflags & ~RFlags.trap) | (guestTrapFlag ? RFlags.trap : 0)
  }

  /// The flags word a POPF (slot 0) or IRET (slot 2) is about to load: its TF bit.
  func stackFlagsTrapBit(_ registers: Registers, slot: UInt64, width: Int) throws -> Bool {
    let cpu = GuestCPU(registers: registers, special: special)
    let stackWidth = UInt64(width == 0 ? cpu.codeSize.rawValue : width)
    let address = special.ss.base &+ registers.rsp &+ slot * stackWidth
    let flags = try cpu.walker(machine.memory).read(linear: address + 1, count: 1)[0]
    return flags & 1 != 0  // bit 8 of the flags word
  }

  /// The guest's own single-step trap, after an instruction run with its TF set: #DB with
  /// DR6.BS, and the stop at its handler.
  func deliverGuestSingleStep() throws -> Stop {
    let handler = try deliverGuestDebugException(status: Self.singleStepStatus)
    guestTrapFlag = false
    try applyDebugState(.stepping)
    return try stop(.exception(vector: 1), pc: handler)
  }

  /// Delivers #DB to the guest's own handler with these DR6 status bits added, as the CPU
  /// would have (through the interpreter's delivery); returns the handler's address. The
  /// return address is RIP as it stands (a breakpoint's fault: the instruction; a trap: the
  /// one after). The frame's TF is the guest's: KVM's own while stepping is taken out, and
  /// at full speed RFLAGS is the guest's.
  func deliverGuestDebugException(status: UInt64) throws -> UInt64 {
    var debugRegisters = try kvm.debugRegisters()
    debugRegisters.dr6 |= status
    try kvm.setDebugRegisters(debugRegisters)
    let stepping = mode == .stepping
    if stepping { try releaseForOtherEngine() }
    let delivered = try machine.deliverTrapOnInterpreter(kvm, vector: 1)
    if stepping {
      try reclaimFromOtherEngine()
    } else {
      try assistedInstructionDone(replantingHandlers: false)  // CS and the stack may have changed
    }
    guard case .delivered = delivered else {
      throw DebuggerError("cannot deliver the guest's #DB: \(delivered)")
    }
    return try kvm.registers().rip
  }
}
