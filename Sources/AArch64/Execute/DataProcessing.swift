/// Integer data processing, immediate and register forms (C6.2): results are computed at
/// 64 bits and cut to 32 for the W forms, whose writes zero the upper half.
extension A64Core {
  @inline(__always) static func mask(_ is64: Bool) -> UInt64 { is64 ? .max : 0xffff_ffff }

  /// AddWithCarry (J1.1.3) at 32 or 64 bits: the result and N, Z, C, V in bits 31-28.
  @inline(__always)
  static func addWithCarry(_ x: UInt64, _ y: UInt64, carry: Bool, is64: Bool) -> (UInt64, UInt32) {
    if is64 {
      let (partial, overflow1) = x.addingReportingOverflow(y)
      let (result, overflow2) = partial.addingReportingOverflow(carry ? 1 : 0)
      let c = overflow1 || overflow2
      let v = (~(x ^ y) & (x ^ result)) >> 63 != 0
      return (result, flags(n: result >> 63 != 0, z: result == 0, c: c, v: v))
    }
    let wide = (x & 0xffff_ffff) &+ (y & 0xffff_ffff) &+ (carry ? 1 : 0)
    let result = wide & 0xffff_ffff
    let v = (~(x ^ y) & (x ^ result)) >> 31 & 1 != 0
    return (result, flags(n: result >> 31 != 0, z: result == 0, c: wide >> 32 != 0, v: v))
  }

  @inline(__always) static func flags(n: Bool, z: Bool, c: Bool, v: Bool) -> UInt32 {
    (n ? PState.n : 0) | (z ? PState.z : 0) | (c ? PState.c : 0) | (v ? PState.v : 0)
  }

  /// N and Z of a logical result; C and V cleared (ANDS, BICS, TST).
  @inline(__always) static func logicFlags(_ result: UInt64, is64: Bool) -> UInt32 {
    flags(n: result >> (is64 ? 63 : 31) & 1 != 0, z: result == 0, c: false, v: false)
  }

  /// ShiftReg (C6.2): LSL, LSR, ASR or ROR of a 32- or 64-bit value by less than its width.
  @inline(__always)
  static func shift(_ value: UInt64, type: UInt8, amount: UInt8, is64: Bool) -> UInt64 {
    let amount = UInt64(amount)
    if is64 {
      switch type {
      case 0: return value << amount
      case 1: return value >> amount
      case 2: return UInt64(bitPattern: Int64(bitPattern: value) >> Int64(amount))
      default: return amount == 0 ? value : value >> amount | value << (64 - amount)
      }
    }
    let word = value & 0xffff_ffff
    switch type {
    case 0: return (word << amount) & 0xffff_ffff
    case 1: return word >> amount
    case 2: return UInt64(UInt32(bitPattern: Int32(bitPattern: UInt32(word)) >> Int32(amount)))
    default: return amount == 0 ? word : (word >> amount | word << (32 - amount)) & 0xffff_ffff
    }
  }

  /// ExtendReg (C6.2): UXTB ... SXTX of a register, shifted left by `shift` (0-4).
  @inline(__always)
  static func extend(_ value: UInt64, option: UInt8, shift: UInt8) -> UInt64 {
    let extended: UInt64
    switch option {
    case 0: extended = value & 0xff
    case 1: extended = value & 0xffff
    case 2: extended = value & 0xffff_ffff
    case 3: extended = value
    case 4: extended = UInt64(bitPattern: Int64(Int8(truncatingIfNeeded: value)))
    case 5: extended = UInt64(bitPattern: Int64(Int16(truncatingIfNeeded: value)))
    case 6: extended = UInt64(bitPattern: Int64(Int32(truncatingIfNeeded: value)))
    default: extended = value
    }
    return extended << UInt64(shift)
  }

  /// ADD/ADDS/SUB/SUBS/CMP/CMN with a shifted 12-bit immediate; Rn is SP-capable, and so is
  /// Rd unless flags are set (C6.2.4).
  @inline(__always)
  mutating func addSubImmediate(_ i: A64Instruction) {
    let operand1 = regOrSP(i.rn)
    let subtract = i.variant != 0
    let (result, nzcv) = A64Core.addWithCarry(operand1, subtract ? ~i.imm : i.imm, carry: subtract, is64: i.is64)
    let value = result & A64Core.mask(i.is64)
    if i.setFlags {
      state.pstate.nzcv = nzcv
      state.setRegister(i.rd, value)
    } else {
      state.setRegisterOrSP(i.rd, value)
    }
  }

  @inline(__always)
  mutating func addSubShifted(_ i: A64Instruction) {
    let operand2 = A64Core.shift(reg(i.rm), type: i.size, amount: i.amount, is64: i.is64)
    let subtract = i.variant != 0
    let (result, nzcv) = A64Core.addWithCarry(
      reg(i.rn), subtract ? ~operand2 : operand2, carry: subtract, is64: i.is64)
    if i.setFlags { state.pstate.nzcv = nzcv }
    state.setRegister(i.rd, result & A64Core.mask(i.is64))
  }

  /// The extended-register form: Rn is SP-capable, Rd too unless flags are set (C6.2.3).
  mutating func addSubExtended(_ i: A64Instruction) {
    let operand2 = A64Core.extend(reg(i.rm), option: i.size, shift: i.amount)
    let subtract = i.variant != 0
    let (result, nzcv) = A64Core.addWithCarry(
      regOrSP(i.rn), subtract ? ~operand2 : operand2, carry: subtract, is64: i.is64)
    let value = result & A64Core.mask(i.is64)
    if i.setFlags {
      state.pstate.nzcv = nzcv
      state.setRegister(i.rd, value)
    } else {
      state.setRegisterOrSP(i.rd, value)
    }
  }

  mutating func addSubCarry(_ i: A64Instruction) {
    let subtract = i.variant != 0
    let operand2 = reg(i.rm)
    let (result, nzcv) = A64Core.addWithCarry(
      reg(i.rn), subtract ? ~operand2 : operand2, carry: state.pstate.nzcv & PState.c != 0, is64: i.is64)
    if i.setFlags { state.pstate.nzcv = nzcv }
    state.setRegister(i.rd, result & A64Core.mask(i.is64))
  }

  /// AND, ORR, EOR, ANDS with a bitmask immediate; Rd is SP-capable except for ANDS (C6.2.11).
  @inline(__always)
  mutating func logicalImmediate(_ i: A64Instruction) {
    let operand1 = reg(i.rn)
    let result: UInt64
    switch i.variant {
    case 0, 3: result = operand1 & i.imm
    case 1: result = operand1 | i.imm
    default: result = operand1 ^ i.imm
    }
    let value = result & A64Core.mask(i.is64)
    if i.setFlags {
      state.pstate.nzcv = A64Core.logicFlags(value, is64: i.is64)
      state.setRegister(i.rd, value)
    } else {
      state.setRegisterOrSP(i.rd, value)
    }
  }

  /// AND, BIC, ORR, ORN, EOR, EON, ANDS, BICS with a shifted register.
  @inline(__always)
  mutating func logicalShifted(_ i: A64Instruction) {
    var operand2 = A64Core.shift(reg(i.rm), type: i.size, amount: i.amount, is64: i.is64)
    if i.variant & 1 != 0 { operand2 = ~operand2 }
    let operand1 = reg(i.rn)
    let result: UInt64
    switch i.variant >> 1 {
    case 0, 3: result = operand1 & operand2
    case 1: result = operand1 | operand2
    default: result = operand1 ^ operand2
    }
    let value = result & A64Core.mask(i.is64)
    if i.setFlags { state.pstate.nzcv = A64Core.logicFlags(value, is64: i.is64) }
    state.setRegister(i.rd, value)
  }

  /// MOVN, MOVZ, MOVK (C6.2.190-192).
  @inline(__always)
  mutating func moveWide(_ i: A64Instruction) {
    let shifted = i.imm << UInt64(i.amount)
    let value: UInt64
    switch i.variant {
    case 0: value = ~shifted
    case 2: value = shifted
    default: value = reg(i.rd) & ~(0xffff << UInt64(i.amount)) | shifted
    }
    state.setRegister(i.rd, value & A64Core.mask(i.is64))
  }

  /// SBFM, BFM, UBFM (C6.2.30 BFM's pseudocode): the decoder's masks select the field.
  mutating func bitfield(_ i: A64Instruction) {
    let width: UInt64 = i.is64 ? 64 : 32
    let mask = A64Core.mask(i.is64)
    let r = UInt64(i.amount)
    let source = reg(i.rn) & mask
    let destination = i.variant == 1 ? reg(i.rd) & mask : 0
    let rotated = r == 0 ? source : (source >> r | source << (width - r)) & mask
    let wmask = i.imm & mask
    let tmask = i.imm2 & mask
    let bottom = destination & ~wmask | rotated & wmask
    let top: UInt64
    if i.variant == 0 {
      // SBFM: the field's top bit, imms, replicated.
      top = source >> UInt64(i.size) & 1 != 0 ? mask : 0
    } else {
      top = destination
    }
    state.setRegister(i.rd, (top & ~tmask | bottom & tmask) & mask)
  }

  /// EXTR: the register pair Rn:Rm shifted right by lsb.
  mutating func extract(_ i: A64Instruction) {
    let lsb = UInt64(i.amount)
    let low = reg(i.rm)
    let high = reg(i.rn)
    let value: UInt64
    if i.is64 {
      value = lsb == 0 ? low : low >> lsb | high << (64 - lsb)
    } else {
      let pair = (high & 0xffff_ffff) << 32 | low & 0xffff_ffff
      value = (pair >> lsb) & 0xffff_ffff
    }
    state.setRegister(i.rd, value)
  }

  /// CCMN, CCMP: the comparison's flags when the condition holds, else the instruction's NZCV.
  mutating func conditionalCompare(_ i: A64Instruction) {
    guard conditionHolds(i.condition) else {
      state.pstate.nzcv = UInt32(i.imm2)
      return
    }
    let operand2 = i.variant & 2 != 0 ? i.imm : reg(i.rm)
    let subtract = i.variant & 1 != 0
    let (_, nzcv) = A64Core.addWithCarry(
      reg(i.rn), subtract ? ~operand2 : operand2, carry: subtract, is64: i.is64)
    state.pstate.nzcv = nzcv
  }

  /// CSEL, CSINC, CSINV, CSNEG.
  @inline(__always)
  mutating func conditionalSelect(_ i: A64Instruction) {
    let value: UInt64
    if conditionHolds(i.condition) {
      value = reg(i.rn)
    } else {
      let operand2 = reg(i.rm)
      switch i.variant {
      case 0: value = operand2
      case 1: value = operand2 &+ 1
      case 2: value = ~operand2
      default: value = 0 &- operand2
      }
    }
    state.setRegister(i.rd, value & A64Core.mask(i.is64))
  }

  mutating func dataProcessing1(_ i: A64Instruction) {
    let source = reg(i.rn) & A64Core.mask(i.is64)
    let value: UInt64
    switch DataProcessing1(rawValue: i.variant) ?? .rbit {
    case .rbit:
      value = i.is64 ? source.bitReversed : UInt64(UInt32(truncatingIfNeeded: source).bitReversed)
    case .rev16:
      // Bytes swapped within each halfword.
      value = (source & 0x00ff_00ff_00ff_00ff) << 8 | (source >> 8) & 0x00ff_00ff_00ff_00ff
    case .rev32:
      value =
        UInt64(UInt32(truncatingIfNeeded: source).byteSwapped)
        | UInt64(UInt32(truncatingIfNeeded: source >> 32).byteSwapped) << 32
    case .rev:
      value = i.is64 ? source.byteSwapped : UInt64(UInt32(truncatingIfNeeded: source).byteSwapped)
    case .clz:
      value = UInt64(i.is64 ? source.leadingZeroBitCount : UInt32(truncatingIfNeeded: source).leadingZeroBitCount)
    case .cls:
      // The number of bits after the sign bit equal to it (CountLeadingSignBits).
      if i.is64 {
        value = UInt64((source ^ source << 1 | 1).leadingZeroBitCount)
      } else {
        let word = UInt32(truncatingIfNeeded: source)
        value = UInt64((word ^ word << 1 | 1).leadingZeroBitCount)
      }
    }
    state.setRegister(i.rd, value & A64Core.mask(i.is64))
  }

  /// UDIV, SDIV (a zero divisor gives 0, no exception; the most negative over -1 wraps) and
  /// the variable shifts (the amount taken modulo the width).
  mutating func dataProcessing2(_ i: A64Instruction) {
    let mask = A64Core.mask(i.is64)
    let operand1 = reg(i.rn) & mask
    let operand2 = reg(i.rm) & mask
    let value: UInt64
    switch DataProcessing2(rawValue: i.variant) ?? .udiv {
    case .udiv: value = operand2 == 0 ? 0 : operand1 / operand2
    case .sdiv:
      if operand2 == 0 {
        value = 0
      } else if i.is64 {
        value = UInt64(
          bitPattern: Int64(bitPattern: operand1).dividedReportingOverflow(by: Int64(bitPattern: operand2)).partialValue
        )
      } else {
        let quotient = Int32(truncatingIfNeeded: operand1).dividedReportingOverflow(
          by: Int32(truncatingIfNeeded: operand2))
        value = UInt64(UInt32(bitPattern: quotient.partialValue))
      }
    case .lslv, .lsrv, .asrv, .rorv:
      let amount = UInt8(operand2 & (i.is64 ? 63 : 31))
      value = A64Core.shift(operand1, type: i.variant - DataProcessing2.lslv.rawValue, amount: amount, is64: i.is64)
    }
    state.setRegister(i.rd, value & mask)
  }

  mutating func dataProcessing3(_ i: A64Instruction) {
    let n = reg(i.rn)
    let m = reg(i.rm)
    let a = reg(i.ra)
    let value: UInt64
    switch DataProcessing3(rawValue: i.variant) ?? .madd {
    case .madd: value = a &+ n &* m
    case .msub: value = a &- n &* m
    case .smaddl:
      value = a &+ UInt64(bitPattern: Int64(Int32(truncatingIfNeeded: n)) &* Int64(Int32(truncatingIfNeeded: m)))
    case .smsubl:
      value = a &- UInt64(bitPattern: Int64(Int32(truncatingIfNeeded: n)) &* Int64(Int32(truncatingIfNeeded: m)))
    case .umaddl: value = a &+ (n & 0xffff_ffff) &* (m & 0xffff_ffff)
    case .umsubl: value = a &- (n & 0xffff_ffff) &* (m & 0xffff_ffff)
    case .smulh: value = UInt64(bitPattern: Int64(bitPattern: n).multipliedFullWidth(by: Int64(bitPattern: m)).high)
    case .umulh: value = n.multipliedFullWidth(by: m).high
    }
    state.setRegister(i.rd, value & A64Core.mask(i.is64))
  }
}

extension FixedWidthInteger {
  /// The bits in reverse order (RBIT).
  var bitReversed: Self {
    var value = self
    var result: Self = 0
    for _ in 0..<Self.bitWidth {
      result = result << 1 | value & 1
      value >>= 1
    }
    return result
  }
}
