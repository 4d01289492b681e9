/// DAA, DAS, AAA, AAS, AAM, AAD: the BCD adjustments, valid outside 64-bit mode only (the
/// decoder makes them #UD there). Each follows its SDM Vol. 2 "Operation" pseudocode. Flags
/// the SDM leaves undefined (listed in UndefinedFlags.swift) are: OF kept for DAA/DAS; OF SF
/// ZF PF kept for AAA/AAS; OF AF CF cleared for AAM/AAD.
extension X86Core {
  private var alValue: UInt64 { mutating get { state.gpr[0] & 0xff } }
  private var auxiliaryFlag: Bool {
    mutating get {
      state.materializeFlags()
      return state.flagBits & RFlagsBit.auxiliaryCarry != 0
    }
  }

  /// Sets CF and AF, and SF ZF PF from AL when `resultFlags`; the others keep their values.
  private mutating func setDecimalFlags(carry: Bool, auxiliary: Bool, resultFlags: Bool) {
    if resultFlags { state.setResultFlags(alValue, size: 1) }
    state.materializeFlags()
    var bits = state.flagBits & ~(RFlagsBit.carry | RFlagsBit.auxiliaryCarry)
    if carry { bits |= RFlagsBit.carry }
    if auxiliary { bits |= RFlagsBit.auxiliaryCarry }
    state.flagBits = bits
  }

  private mutating func setAL(_ value: UInt64) { state.gpr[0] = state.gpr[0] & ~0xff | value & 0xff }
  private mutating func setAX(_ value: UInt64) { state.gpr[0] = state.gpr[0] & ~0xffff | value & 0xffff }

  /// DAA (SDM Vol. 2, DAA): adjusts AL after adding two packed BCD bytes.
  mutating func daa() {
    let auxiliary = auxiliaryFlag
    let oldAL = alValue
    let oldCarry = carryFlag
    var al = oldAL
    var carry = false
    var adjustedLow = false
    if al & 0xf > 9 || auxiliary {
      al += 6
      carry = oldCarry || al > 0xff
      al &= 0xff
      adjustedLow = true
    }
    if oldAL > 0x99 || oldCarry {
      al = (al + 0x60) & 0xff
      carry = true
    } else {
      carry = false
    }
    setAL(al)
    setDecimalFlags(carry: carry, auxiliary: adjustedLow, resultFlags: true)
  }

  /// DAS (SDM Vol. 2, DAS): adjusts AL after subtracting two packed BCD bytes. Unlike DAA the
  /// second step has no ELSE: CF keeps the first step's borrow.
  mutating func das() {
    let auxiliary = auxiliaryFlag
    let oldAL = alValue
    let oldCarry = carryFlag
    var al = oldAL
    var carry = false
    var adjustedLow = false
    if al & 0xf > 9 || auxiliary {
      carry = oldCarry || al < 6
      al = (al &- 6) & 0xff
      adjustedLow = true
    }
    if oldAL > 0x99 || oldCarry {
      al = (al &- 0x60) & 0xff
      carry = true
    }
    setAL(al)
    setDecimalFlags(carry: carry, auxiliary: adjustedLow, resultFlags: true)
  }

  /// AAA (SDM Vol. 2, AAA): AX ← AX + 106h on a decimal carry (so a carry out of AL reaches
  /// AH as well), then AL ← AL AND 0Fh.
  mutating func aaa() {
    let adjust = alValue & 0xf > 9 || auxiliaryFlag
    var ax = state.gpr[0] & 0xffff
    if adjust { ax = (ax + 0x106) & 0xffff }
    setAX(ax & 0xff0f)
    setDecimalFlags(carry: adjust, auxiliary: adjust, resultFlags: false)
  }

  /// AAS (SDM Vol. 2, AAS): AX ← AX − 6 and AH ← AH − 1 on a decimal borrow, then AL ← AL AND 0Fh.
  mutating func aas() {
    let adjust = alValue & 0xf > 9 || auxiliaryFlag
    var ax = state.gpr[0] & 0xffff
    if adjust {
      ax = (ax &- 6) & 0xffff
      ax = (ax &- 0x100) & 0xffff
    }
    setAX(ax & 0xff0f)
    setDecimalFlags(carry: adjust, auxiliary: adjust, resultFlags: false)
  }

  /// AAM imm8 (SDM Vol. 2, AAM): AH ← AL / imm8, AL ← AL MOD imm8; imm8 = 0 is #DE.
  mutating func aam(_ d: DecodedInstruction) throws(X86Exception) {
    let base = d.immediate & 0xff
    if base == 0 { throw .divideError }
    let al = alValue
    setAX((al / base) << 8 | al % base)
    setDecimalFlags(carry: false, auxiliary: false, resultFlags: true)
    state.flagBits &= ~RFlagsBit.overflow
  }

  /// AAD imm8 (SDM Vol. 2, AAD): AL ← (AL + AH × imm8) AND FFh, AH ← 0.
  mutating func aad(_ d: DecodedInstruction) {
    let ah = (state.gpr[0] >> 8) & 0xff
    setAX((alValue &+ ah &* (d.immediate & 0xff)) & 0xff)
    setDecimalFlags(carry: false, auxiliary: false, resultFlags: true)
    state.flagBits &= ~RFlagsBit.overflow
  }
}
