/// The scalar floating-point instructions (C7.2, FABS ... UCVTF): each checks that
/// CPACR_EL1.FPEN lets the current EL use FP, runs the pseudocode's operation from
/// FPArithmetic on the low bits of the V registers, writes the result zero-extended to 128
/// bits, and ORs the exceptions it raised into FPSR's cumulative bits.
extension A64Core {
  /// The low `format` bits of V`n` (H, S or D `n`).
  @inline(__always) func scalar(_ n: UInt8, _ format: FPFormat) -> UInt64 { state.vLow(n) & format.mask }

  /// Writes a scalar to V`n`, zeroing the rest of the register (as every scalar write does).
  @inline(__always) mutating func setScalar(_ n: UInt8, _ value: UInt64) { state.setV(n, low: value, high: 0) }

  @inline(__always) var fpEnvironment: FPEnvironment { FPEnvironment(fpcr: state.fpcr) }

  @inline(__always) mutating func accumulate(_ environment: FPEnvironment) { state.fpsr |= environment.flags }

  mutating func fpDataProcessing1(_ i: A64Instruction) throws(A64Exception) {
    try checkFloatingPointAccess()
    let format = FPFormat(rawValue: i.size) ?? .double
    let operand = scalar(i.rn, format)
    var environment = fpEnvironment
    let result: UInt64
    switch FPOperation1(rawValue: i.variant) ?? .fmov {
    case .fmov: result = operand
    case .fabs: result = operand & ~format.signBit
    case .fneg: result = operand ^ format.signBit
    case .fsqrt: result = environment.squareRoot(operand, format)
    case .fcvt: result = environment.convert(operand, from: format, to: FPFormat(rawValue: i.amount) ?? .double)
    case .frint:
      let rounding = FPEnvironment.Rounding(rawValue: i.condition) ?? environment.rounding
      result = environment.roundToIntegral(operand, format, rounding: rounding, exact: i.setFlags)
    }
    setScalar(i.rd, result)
    accumulate(environment)
  }

  mutating func fpDataProcessing2(_ i: A64Instruction) throws(A64Exception) {
    try checkFloatingPointAccess()
    let format = FPFormat(rawValue: i.size) ?? .double
    let a = scalar(i.rn, format)
    let b = scalar(i.rm, format)
    var environment = fpEnvironment
    let result: UInt64
    switch i.variant {
    case 0: result = environment.multiply(a, b, format)
    case 1: result = environment.divide(a, b, format)
    case 2: result = environment.add(a, b, format)
    case 3: result = environment.subtract(a, b, format)
    case 4: result = environment.maxMin(a, b, format, maximum: true, numeric: false)
    case 5: result = environment.maxMin(a, b, format, maximum: false, numeric: false)
    case 6: result = environment.maxMin(a, b, format, maximum: true, numeric: true)
    case 7: result = environment.maxMin(a, b, format, maximum: false, numeric: true)
    default: result = environment.multiply(a, b, format) ^ format.signBit  // FNMUL
    }
    setScalar(i.rd, result)
    accumulate(environment)
  }

  /// FMADD, FMSUB, FNMADD, FNMSUB: FPMulAdd with Ra negated first when o1 is set and Rn when
  /// o1 and o0 differ; a negated NaN comes out with its sign flipped, as FPNeg before
  /// FPMulAdd gives.
  mutating func fpDataProcessing3(_ i: A64Instruction) throws(A64Exception) {
    try checkFloatingPointAccess()
    let format = FPFormat(rawValue: i.size) ?? .double
    var addend = scalar(i.ra, format)
    var a = scalar(i.rn, format)
    let b = scalar(i.rm, format)
    let o1 = i.variant >> 1
    if o1 != i.variant & 1 { a ^= format.signBit }
    if o1 != 0 { addend ^= format.signBit }
    var environment = fpEnvironment
    setScalar(i.rd, environment.multiplyAdd(addend, a, b, format))
    accumulate(environment)
  }

  mutating func fpCompare(_ i: A64Instruction) throws(A64Exception) {
    try checkFloatingPointAccess()
    let format = FPFormat(rawValue: i.size) ?? .double
    let b = i.variant & 1 != 0 ? 0 : scalar(i.rm, format)
    var environment = fpEnvironment
    state.pstate.nzcv = environment.compare(scalar(i.rn, format), b, format, signalling: i.variant & 2 != 0)
    accumulate(environment)
  }

  mutating func fpConditionalCompare(_ i: A64Instruction) throws(A64Exception) {
    try checkFloatingPointAccess()
    guard conditionHolds(i.condition) else {
      state.pstate.nzcv = UInt32(i.imm2)
      return
    }
    let format = FPFormat(rawValue: i.size) ?? .double
    var environment = fpEnvironment
    state.pstate.nzcv = environment.compare(
      scalar(i.rn, format), scalar(i.rm, format), format, signalling: i.variant != 0)
    accumulate(environment)
  }

  mutating func fpConditionalSelect(_ i: A64Instruction) throws(A64Exception) {
    try checkFloatingPointAccess()
    let format = FPFormat(rawValue: i.size) ?? .double
    setScalar(i.rd, scalar(conditionHolds(i.condition) ? i.rn : i.rm, format))
  }

  mutating func fpMoveImmediate(_ i: A64Instruction) throws(A64Exception) {
    try checkFloatingPointAccess()
    setScalar(i.rd, i.imm)
  }

  mutating func fpConvertInteger(_ i: A64Instruction) throws(A64Exception) {
    try checkFloatingPointAccess()
    let format = FPFormat(rawValue: i.size) ?? .double
    let bits = i.is64 ? 64 : 32
    var environment = fpEnvironment
    switch FPIntegerConversion(rawValue: i.variant) ?? .scvtf {
    case .scvtf, .ucvtf:
      let result = environment.fromFixed(
        reg(i.rn), bits: bits, fractionBits: Int(i.amount), unsigned: i.variant == FPIntegerConversion.ucvtf.rawValue,
        format, rounding: environment.rounding)
      setScalar(i.rd, result)
    case .fcvts, .fcvtu:
      let result = environment.toFixed(
        scalar(i.rn, format), format, fractionBits: Int(i.amount),
        unsigned: i.variant == FPIntegerConversion.fcvtu.rawValue, bits: bits,
        rounding: FPEnvironment.Rounding(rawValue: i.condition) ?? .zero)
      state.setRegister(i.rd, result)
    }
    accumulate(environment)
  }

  mutating func fmovGeneral(_ i: A64Instruction) throws(A64Exception) {
    try checkFloatingPointAccess()
    let mask: UInt64 = i.size == 2 ? 0xffff_ffff : .max
    if i.variant == 0 {
      state.setRegister(i.rd, i.amount == 1 ? state.vHigh(i.rn) : state.vLow(i.rn) & mask)
    } else if i.amount == 1 {
      // FMOV Vd.D[1], Xn writes only the upper half.
      state.setV(i.rd, low: state.vLow(i.rd), high: reg(i.rn))
    } else {
      setScalar(i.rd, reg(i.rn) & mask)
    }
  }
}
