import Glibc

/// The x87 transcendental instructions (SDM Vol. 2: FSIN, FCOS, FSINCOS, FPTAN, FPATAN,
/// F2XM1, FYL2X, FYL2XP1), computed with the C library's `long double` functions on the
/// 80-bit format, in round-to-nearest. The SDM allows these an error of up to one unit in the
/// last place of the 64-bit significand (Vol. 1, 8.3.10) and each CPU has its own; results
/// here are the C library's, not bit-for-bit any CPU's. PE is set whenever the result is not
/// exactly representable (always for a nonzero sine of a nonzero argument, say); C1 is
/// not set (round-up is not tracked), as elsewhere in this model.
extension X86Core {
  /// Codes from `x87Miscellaneous`: D9 F0 F2XM1 (16), F1 FYL2X (17), F2 FPTAN (18), F3 FPATAN
  /// (19), F9 FYL2XP1 (25), FB FSINCOS (27), FE FSIN (30), FF FCOS (31).
  mutating func x87Transcendental(_ code: UInt8) {
    switch code {
    case 18, 27, 30, 31: x87Trigonometric(code)
    case 16: x87TwoToXMinusOne()
    default: x87LogarithmOrArctangent(code)
    }
  }

  /// FSIN, FCOS, FSINCOS, FPTAN: an argument outside ±2^63 sets C2 and leaves ST0 as it is
  /// (no exception); FSINCOS and FPTAN then push a second value (cos, or 1.0).
  private mutating func x87Trigonometric(_ code: UInt8) {
    let pushes = code == 18 || code == 27
    if x87IsEmpty(0) {
      guard x87Underflow() else { return }
      setST(0, -Float80.nan)
      if pushes { x87Push(-Float80.nan) }
      return
    }
    if pushes && !x87IsEmpty(7) {
      // The push would overflow the stack: IE, SF, C1; masked, both values are indefinite.
      state.fpu.fsw |= FSWBit.invalid | FSWBit.stackFault | FSWBit.c1
      guard x87Masked(FSWBit.invalid) else { return updateErrorSummary() }
      setST(0, -Float80.nan)
      x87Push(-Float80.nan)
      return
    }
    let x = st(0)
    state.fpu.fsw &= ~(FSWBit.c2 | FSWBit.c1)
    if x.isFinite && x.magnitude >= 0x1p63 {
      state.fpu.fsw |= FSWBit.c2  // out of range: the caller reduces the argument itself
      return
    }
    var flags = FloatFlags()
    var first: Float80
    var second: Float80 = 1
    if x.isNaN {
      first = x87NaN(x, x, &flags)
      second = first
    } else if x.isInfinite {
      flags.pre |= MXCSRBit.invalid
      first = -Float80.nan
      second = first
    } else {
      if x.isSubnormal { flags.pre |= MXCSRBit.denormal }
      switch code {
      case 30: first = sinl(x)
      case 31: first = cosl(x)
      case 27:
        first = sinl(x)
        second = cosl(x)
      default: first = tanl(x)
      }
      // Exact only at 0 (sin 0 = tan 0 = 0, cos 0 = 1): every other value is irrational.
      if x != 0 { flags.post |= MXCSRBit.precision }
    }
    guard commitX87Flags(flags) else { return }
    setST(0, first)
    if pushes { x87Push(second) }
  }

  /// F2XM1: ST0 ← 2^ST0 - 1 for -1 ≤ ST0 ≤ 1 (the SDM leaves other arguments undefined:
  /// computed the same way here).
  private mutating func x87TwoToXMinusOne() {
    if x87IsEmpty(0) {
      guard x87Underflow() else { return }
      setST(0, -Float80.nan)
      return
    }
    let x = st(0)
    var flags = FloatFlags()
    let result: Float80
    if x.isNaN {
      result = x87NaN(x, x, &flags)
    } else if x.isInfinite {
      result = x < 0 ? -1 : x
    } else if x == 0 || x == 1 || x == -1 {
      if x.isSubnormal { flags.pre |= MXCSRBit.denormal }
      result = x == 0 ? x : (x == 1 ? 1 : -0.5)  // exact: 2^0 - 1, 2^1 - 1, 2^-1 - 1
    } else {
      if x.isSubnormal { flags.pre |= MXCSRBit.denormal }
      result = expm1l(x * 0xb.17217f7d1cf79acp-4)  // e^(x·ln 2) - 1
      flags.post |= MXCSRBit.precision
    }
    state.fpu.fsw &= ~FSWBit.c1
    if commitX87Flags(flags) { setST(0, result) }
  }

  /// FYL2X (ST1 ← ST1·log2 ST0), FYL2XP1 (ST1 ← ST1·log2(ST0 + 1)) and FPATAN
  /// (ST1 ← arctan(ST1 / ST0), the quadrant from both signs); each then pops.
  private mutating func x87LogarithmOrArctangent(_ code: UInt8) {
    if x87IsEmpty(0) || x87IsEmpty(1) {
      guard x87Underflow() else { return }
      setST(1, -Float80.nan)
      x87Pop()
      return
    }
    let x = st(0)
    let y = st(1)
    var flags = FloatFlags()
    let result: Float80
    if x.isNaN || y.isNaN {
      result = x87NaN(y, x, &flags)
    } else {
      if x.isSubnormal || y.isSubnormal { flags.pre |= MXCSRBit.denormal }
      switch code {
      case 19:
        result = atan2l(y, x)
        if y != 0 && !(x.isInfinite && !y.isInfinite) { flags.post |= MXCSRBit.precision }
      case 17:
        result = x87YTimesLog2(y, x, &flags)
      default:
        result = x87YTimesLog2OnePlus(y, x, &flags)
      }
    }
    guard commitX87Flags(flags) else { return }
    state.fpu.fsw &= ~FSWBit.c1
    setST(1, result)
    x87Pop()
  }

  /// y · log2 x with the special cases of SDM Vol. 2, FYL2X (table 3-47).
  private func x87YTimesLog2(_ y: Float80, _ x: Float80, _ flags: inout FloatFlags) -> Float80 {
    if x < 0 || (x == 0 && y == 0) || (x == 1 && y.isInfinite) || (x.isInfinite && y == 0) {
      flags.pre |= MXCSRBit.invalid
      return -Float80.nan
    }
    if x == 0 {
      flags.pre |= MXCSRBit.divideByZero  // log2 0 = -∞: the sign is the opposite of y's
      return y < 0 ? .infinity : -.infinity
    }
    if x.isInfinite { return y < 0 ? -.infinity : .infinity }
    let logarithm = log2l(x)
    if y.isInfinite { return logarithm == 0 ? -Float80.nan : (logarithm < 0) == (y < 0) ? .infinity : -.infinity }
    let result = y * logarithm
    // Exact only when x is a power of two (log2 x an integer) and the product of the two
    // significands fits in 64 bits; otherwise log2 x is irrational or the product rounds.
    let exactLogarithm = x.significand == 1
    let productFits = y.significandWidth + logarithm.significandWidth + 2 <= 64
    if result != 0 && !(exactLogarithm && productFits) { flags.post |= MXCSRBit.precision }
    return result
  }

  /// y · log2(x + 1), for |x| < 1 - √2/2 (SDM Vol. 2, FYL2XP1; other arguments undefined).
  private func x87YTimesLog2OnePlus(_ y: Float80, _ x: Float80, _ flags: inout FloatFlags) -> Float80 {
    if x.isInfinite || (y.isInfinite && x == 0) {
      flags.pre |= MXCSRBit.invalid
      return -Float80.nan
    }
    if x == 0 { return y.sign == x.sign ? 0 : -0.0 }
    let result = y * (log1pl(x) * 0xb.8aa3b295c17f0bcp-3)  // ln(1 + x) · log2(e)
    if result != 0 { flags.post |= MXCSRBit.precision }
    return result
  }
}
