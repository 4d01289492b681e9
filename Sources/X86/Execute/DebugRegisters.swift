/// MOV r, DRn and MOV DRn, r (SDM Vol. 2, "MOV—Move to/from Debug Registers"; SDM Vol. 3,
/// 18.2; AMD APM Vol. 2, 13.1.1).
///
/// The checks come in this order: DR8-DR15 (REX.R) is #UD like an undefined opcode; DR4/DR5
/// with CR4.DE is #UD (the SDM's pseudocode tests it first); DR7.GD is a #DB fault with DR6.BD
/// (general detect exists to catch any access attempt, so it precedes the privilege check, as
/// Bochs orders it too); then CPL > 0 is #GP(0); a write of 1s to bits 63:32 of DR6/DR7 in
/// 64-bit mode is #GP(0).
extension X86Core {
  mutating func movFromDebugRegister(_ d: DecodedInstruction) throws(X86Exception) {
    let index = try checkDebugRegisterAccess(d)
    let value: UInt64 =
      switch index {
      case 0...3: state.dr[index]
      case 6: state.dr6 & DebugRegisterBit.dr6Writable | DebugRegisterBit.dr6FixedOnes
      default: state.dr7 & DebugRegisterBit.dr7Writable | DebugRegisterBit.dr7FixedOnes
      }
    // Outside 64-bit mode the operand is 32 bits: the upper half of a DR0-3 address is dropped.
    setRegister(d.rm, size: d.operandSize, d, value & sizeMask(d.operandSize))
  }

  mutating func movToDebugRegister(_ d: DecodedInstruction) throws(X86Exception) {
    let index = try checkDebugRegisterAccess(d)
    let value = register(d.rm, size: d.operandSize, d)
    switch index {
    case 0...3:
      state.dr[index] = value
    case 6:
      if value >> 32 != 0 { throw .generalProtection(0) }
      state.dr6 = value & DebugRegisterBit.dr6Writable | DebugRegisterBit.dr6FixedOnes
    default:
      if value >> 32 != 0 { throw .generalProtection(0) }
      state.dr7 = value & DebugRegisterBit.dr7Writable | DebugRegisterBit.dr7FixedOnes
    }
    // Any of DR0-3 and DR7 decides which breakpoints are live.
    refreshDebugControls()
  }

  /// The checks every MOV DR makes; returns the register number with DR4/DR5 folded onto DR6/DR7.
  private mutating func checkDebugRegisterAccess(_ d: DecodedInstruction) throws(X86Exception) -> Int {
    if d.reg > 7 { throw .invalidOpcode }
    var index = Int(d.reg)
    if index == 4 || index == 5 {
      if state.cr4 & DebugRegisterBit.cr4DE != 0 { throw .invalidOpcode }
      index += 2
    }
    if state.dr7 & DebugRegisterBit.dr7GD != 0 {
      // A fault: RIP stays at the MOV. The processor clears GD as it enters the handler, so
      // the handler itself can use the debug registers (SDM Vol. 3, 18.2.4).
      throw raiseDebugFault(DebugRegisterBit.dr6BD)
    }
    if privilegeLevel != 0 { throw .generalProtection(0) }
    return index
  }
}
