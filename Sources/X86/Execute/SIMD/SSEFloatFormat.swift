/// IEEE 754 arithmetic with MXCSR semantics, on top of the host's Float and Double.
///
/// The host computes each operation rounded to nearest (`hi`); an error-free companion (TwoSum
/// for addition, an FMA residual for multiplication, division and square root) gives the sign
/// of the rounding error, which is all that is needed to derive the directed roundings and the
/// precision flag from `hi`. Results that may be tiny (below twice the smallest normal) are
/// recomputed with one operand scaled by a power of two, where the residual is exact, and then
/// rounded onto the subnormal grid by hand, so underflow, tininess after rounding ("result of
/// rounding with unbounded exponent", SDM Vol. 1, 4.9.1.5), DAZ and FTZ (10.2.3.3-4) follow the
/// SDM rather than the host's MXCSR.
protocol IEEEArithmetic: BinaryFloatingPoint {
  /// The scale (a power of two) that brings any possibly tiny product or quotient into the
  /// normal range with room for an exact residual: 3p + 2 bits.
  static var tinyScale: Int { get }
  func fusedMultiplyAdd(_ y: Self, _ z: Self) -> Self
}

extension Float80: IEEEArithmetic {
  static var tinyScale: Int { 194 }
  func fusedMultiplyAdd(_ y: Float80, _ z: Float80) -> Float80 { z.addingProduct(self, y) }
}

/// A format an XMM lane holds.
protocol SSEScalar: IEEEArithmetic {
  static var laneWidth: Int { get }
  /// The QNaN floating-point indefinite (SDM Vol. 1, table 4-3): sign set, top fraction bit set.
  static var indefinite: UInt64 { get }
  init(lane: UInt64)
  var lane: UInt64 { get }
}

extension Float: SSEScalar {
  static var laneWidth: Int { 32 }
  static var indefinite: UInt64 { 0xffc0_0000 }
  static var tinyScale: Int { 74 }
  init(lane: UInt64) { self.init(bitPattern: UInt32(truncatingIfNeeded: lane)) }
  var lane: UInt64 { UInt64(bitPattern) }
  func fusedMultiplyAdd(_ y: Float, _ z: Float) -> Float { z.addingProduct(self, y) }
}

extension Double: SSEScalar {
  static var laneWidth: Int { 64 }
  static var indefinite: UInt64 { 0xfff8_0000_0000_0000 }
  static var tinyScale: Int { 161 }
  init(lane: UInt64) { self.init(bitPattern: lane) }
  var lane: UInt64 { bitPattern }
  func fusedMultiplyAdd(_ y: Double, _ z: Double) -> Double { z.addingProduct(self, y) }
}

enum FloatOperation { case add, sub, mul, div, sqrt, min, max }

/// MXCSR.RC (and the x87 RC field): 0 nearest, 1 down, 2 up, 3 toward zero.
enum RoundingMode: UInt32 {
  case nearest = 0
  case down, up, towardZero
}

/// What one lane's operation raised: the pre-computation exceptions (IE, DE, ZE) apart from
/// the post-computation ones (OE, UE, PE), because an unmasked pre-computation exception stops
/// the instruction before results or post-computation flags exist (SDM Vol. 1, 11.5.3).
struct FloatFlags {
  var pre: UInt32 = 0
  var post: UInt32 = 0
}

/// The MXCSR controls an operation reads.
struct FloatEnvironment {
  var rounding: RoundingMode
  var denormalsAreZero: Bool
  var flushToZero: Bool
  var underflowMasked: Bool
  /// The six exception masks (IM..PM), in flag-bit positions.
  var masks: UInt32
  /// x87 rather than SSE: an unmasked underflow then reports no PE.
  var x87 = false

  init(mxcsr: UInt32) {
    masks = (mxcsr >> MXCSRBit.maskShift) & MXCSRBit.flags
    rounding = RoundingMode(rawValue: (mxcsr >> MXCSRBit.roundingShift) & 3) ?? .nearest
    denormalsAreZero = mxcsr & MXCSRBit.denormalsAreZero != 0
    flushToZero = mxcsr & MXCSRBit.flushToZero != 0
    underflowMasked = mxcsr & (MXCSRBit.underflow << MXCSRBit.maskShift) != 0
  }
}

/// The sign of a (nonzero) real number's rounding error: -1, 0 or 1.
@inline(__always) func signum<T: BinaryFloatingPoint>(_ value: T) -> Int { value > 0 ? 1 : (value < 0 ? -1 : 0) }

/// `hi` (the round-to-nearest result) moved by one unit where `mode` rounds the other way,
/// given the sign of the exact result minus `hi`.
@inline(__always)
func directed<T: BinaryFloatingPoint>(_ hi: T, errorSign: Int, _ mode: RoundingMode) -> T {
  guard errorSign != 0 else { return hi }
  switch mode {
  case .nearest: return hi
  case .up: return errorSign > 0 ? hi.nextUp : hi
  case .down: return errorSign < 0 ? hi.nextDown : hi
  case .towardZero:
    if hi > 0 && errorSign < 0 { return hi.nextDown }
    if hi < 0 && errorSign > 0 { return hi.nextUp }
    return hi
  }
}

/// The masked overflow response (SDM Vol. 1, table 4-10): infinity or the largest finite
/// number of the result's sign, by rounding mode.
@inline(__always)
func overflowResult<T: BinaryFloatingPoint>(negative: Bool, _ mode: RoundingMode) -> T {
  let toInfinity =
    switch mode {
    case .nearest: true
    case .up: !negative
    case .down: negative
    case .towardZero: false
    }
  let magnitude = toInfinity ? T.infinity : T.greatestFiniteMagnitude
  return negative ? -magnitude : magnitude
}

/// Rounds the exact value `(hi + error) · 2^-scale` into the destination format, where `hi`
/// is that value rounded to nearest in the scaled domain and only the error's sign is known.
/// Sets OE/UE/PE and applies FTZ.
///
/// For an overflowed `hi` (infinite), `errorSign` says whether the result rounded with an
/// unbounded exponent is inexact, which decides PE when OE is unmasked. With OE or UE unmasked
/// no result is delivered, and PE reports only whether the rounding with unbounded exponent
/// was inexact (as the host CPU shows: an exact overflowing or tiny product raises no PE).
func finish<T: IEEEArithmetic>(_ hi: T, errorSign: Int, scale: Int, _ env: FloatEnvironment, _ flags: inout FloatFlags)
  -> T
{
  let limit = T.leastNormalMagnitude * T(sign: .plus, exponent: T.Exponent(scale), significand: 1)
  if hi.isInfinite {
    flags.post |= MXCSRBit.overflow
    if env.masks & MXCSRBit.overflow != 0 || errorSign != 0 { flags.post |= MXCSRBit.precision }
    return overflowResult(negative: hi < 0, env.rounding)
  }
  // The result with unbounded exponent (in the scaled domain), which decides tininess.
  let unbounded = directed(hi, errorSign: errorSign, env.rounding)
  if scale == 0 && unbounded.isInfinite {
    flags.post |= MXCSRBit.overflow | MXCSRBit.precision
    return unbounded
  }
  let tiny = unbounded != 0 && unbounded.magnitude < limit
  if !tiny {
    if errorSign != 0 { flags.post |= MXCSRBit.precision }
    return scale == 0 ? unbounded : unbounded * T(sign: .plus, exponent: T.Exponent(-scale), significand: 1)
  }
  if !env.underflowMasked {
    // Unmasked: UE for any tiny result, exact or not (SDM Vol. 1, 4.9.1.5); no result is stored.
    flags.post |= MXCSRBit.underflow
    if errorSign != 0 && !env.x87 { flags.post |= MXCSRBit.precision }
    return hi
  }
  if env.flushToZero {
    // FTZ: a tiny result becomes a zero of its sign, with UE and PE (SDM Vol. 1, 10.2.3.3).
    flags.post |= MXCSRBit.underflow | MXCSRBit.precision
    return hi < 0 ? -0.0 : 0.0
  }
  // Round onto the subnormal grid: `unit` is the smallest subnormal, scaled.
  let unit = T.leastNonzeroMagnitude * T(sign: .plus, exponent: T.Exponent(scale), significand: 1)
  let negative = hi < 0
  let quotient = hi.magnitude / unit
  var whole = quotient.rounded(.towardZero)
  var fraction = quotient - whole
  // The error's sign as seen by the magnitude.
  let magnitudeError = negative ? -errorSign : errorSign
  if fraction == 0 && magnitudeError < 0 {
    // Just below an integer: the truncated part is one less, the fraction nearly one.
    whole -= 1
    fraction = 0.75
  }
  let inexact = fraction != 0 || magnitudeError != 0
  var roundUp: Bool
  switch env.rounding {
  case .nearest:
    if fraction > 0.5 {
      roundUp = true
    } else if fraction < 0.5 {
      roundUp = false
    } else if magnitudeError != 0 {
      roundUp = magnitudeError > 0
    } else {
      roundUp = whole.truncatingRemainder(dividingBy: 2) != 0
    }
  case .towardZero: roundUp = false
  case .up: roundUp = inexact && !negative
  case .down: roundUp = inexact && negative
  }
  if roundUp { whole += 1 }
  let magnitude = whole * T.leastNonzeroMagnitude
  if inexact { flags.post |= MXCSRBit.precision | MXCSRBit.underflow }
  return negative ? -magnitude : magnitude
}

/// A result whose round-to-nearest value overflowed, recomputed as `scaledHi` (rounded to
/// nearest, error sign `errorSign`) in a domain scaled down by 2^`scaleDown`. Overflow is
/// decided on the result rounded by the actual mode with unbounded exponent (SDM Vol. 1,
/// 4.9.1.4): rounding toward zero can bring a sum that overflows to nearest back to the
/// largest finite number, with no OE.
func finishOverflow<T: IEEEArithmetic>(
  _ scaledHi: T, errorSign: Int, scaleDown: Int, _ env: FloatEnvironment, _ flags: inout FloatFlags
) -> T {
  let unbounded = directed(scaledHi, errorSign: errorSign, env.rounding)
  let back = unbounded * T(sign: .plus, exponent: T.Exponent(scaleDown), significand: 1)
  if back.isInfinite { return finish(back, errorSign: errorSign, scale: 0, env, &flags) }
  if errorSign != 0 { flags.post |= MXCSRBit.precision }
  return back
}

/// DAZ: a denormal source becomes a zero of its sign; otherwise a denormal sets DE.
@inline(__always)
func loadOperand<T: SSEScalar>(_ bits: UInt64, _ env: FloatEnvironment, _ flags: inout FloatFlags) -> T {
  let value = T(lane: bits)
  if value.isSubnormal {
    if env.denormalsAreZero { return value < 0 ? -0.0 : 0.0 }
    flags.pre |= MXCSRBit.denormal
  }
  return value
}

/// A NaN made quiet (its top fraction bit set), as x86 propagates NaN operands.
@inline(__always) func quieted<T: SSEScalar>(_ bits: UInt64, _: T.Type) -> UInt64 {
  bits | 1 << UInt64(T.significandBitCount - 1)
}

/// One lane of ADD/SUB/MUL/DIV/SQRT/MIN/MAX (SDM Vol. 1, 4.8.3.5 and table 4-7 for NaNs;
/// MIN/MAX return the second operand when either is a NaN or both are zeros, Vol. 2 MINPS).
func scalarArithmetic<T: SSEScalar>(
  _ op: FloatOperation, _ aBits: UInt64, _ bBits: UInt64, _: T.Type, _ env: FloatEnvironment, _ flags: inout FloatFlags
) -> UInt64 {
  let rawA = T(lane: aBits)
  let rawB = T(lane: bBits)
  switch op {
  case .min, .max:
    if rawA.isNaN || rawB.isNaN {
      flags.pre |= MXCSRBit.invalid
      // The source is returned as it is read: a denormal under DAZ is a zero.
      return rawB.isSubnormal && env.denormalsAreZero ? (rawB < 0 ? -T.zero : T.zero).lane : bBits
    }
    let a: T = loadOperand(aBits, env, &flags)
    let b: T = loadOperand(bBits, env, &flags)
    let pickA = op == .min ? a < b : a > b
    return (pickA ? a : b).lane
  case .sqrt:
    if rawB.isNaN {
      if rawB.isSignalingNaN { flags.pre |= MXCSRBit.invalid }
      return quieted(bBits, T.self)
    }
    let b: T = loadOperand(bBits, env, &flags)
    if b < 0 {
      flags.pre |= MXCSRBit.invalid
      return T.indefinite
    }
    if b.isInfinite || b == 0 { return b.lane }
    return roundedSquareRoot(b, env, &flags).lane
  default: break
  }
  if rawA.isNaN || rawB.isNaN {
    if rawA.isSignalingNaN || rawB.isSignalingNaN { flags.pre |= MXCSRBit.invalid }
    return rawA.isNaN ? quieted(aBits, T.self) : quieted(bBits, T.self)
  }
  let a: T = loadOperand(aBits, env, &flags)
  let b: T = loadOperand(bBits, env, &flags)
  return roundedArithmetic(op, a, b, env, &flags).lane
}

/// The square root of a positive finite `x`, rounded by `env`. Small inputs are scaled by an
/// even power of two first, so that the residual x - root² stays exact (it would underflow).
func roundedSquareRoot<T: IEEEArithmetic>(_ x: T, _ env: FloatEnvironment, _ flags: inout FloatFlags) -> T {
  var value = x
  var scale = 0
  if x.exponent < T.leastNormalMagnitude.exponent + 2 * T.Exponent(T.significandBitCount + 2) {
    scale = 2 * (T.significandBitCount + 2)
    value = x * T(sign: .plus, exponent: T.Exponent(2 * scale), significand: 1)
  }
  let root = value.squareRoot()
  let residual = (-root).fusedMultiplyAdd(root, value)
  return finish(root, errorSign: signum(residual), scale: scale, env, &flags)
}

/// A nonzero result so far below the smallest subnormal that even the scaled computation
/// underflowed: zero, or the smallest subnormal when rounding away from zero; tiny and inexact.
/// `exactUnbounded`: the result rounded with unbounded exponent is exact (which decides PE
/// when UE is unmasked and no result is delivered).
func deepUnderflow<T: IEEEArithmetic>(
  negative: Bool, exactUnbounded: Bool = false, _ env: FloatEnvironment, _ flags: inout FloatFlags
) -> T {
  flags.post |= MXCSRBit.underflow
  if env.underflowMasked || (!exactUnbounded && !env.x87) { flags.post |= MXCSRBit.precision }
  let away = (env.rounding == .up && !negative) || (env.rounding == .down && negative)
  let magnitude = away && !(env.flushToZero && env.underflowMasked) ? T.leastNonzeroMagnitude : 0
  return negative ? -magnitude : magnitude
}

/// Whether a · b fits the format's precision (with unbounded exponent): the product of the
/// two integer significands has at most p significant bits.
func exactProduct<T: IEEEArithmetic>(_ a: T, _ b: T) -> Bool {
  func integerSignificand(_ x: T) -> UInt64 {
    UInt64(x.significandBitPattern) | (x.isNormal ? 1 << UInt64(T.significandBitCount) : 0)
  }
  let (high, low) = integerSignificand(a).multipliedFullWidth(by: integerSignificand(b))
  let leading = high != 0 ? high.leadingZeroBitCount : 64 + low.leadingZeroBitCount
  let trailing = low != 0 ? low.trailingZeroBitCount : 64 + high.trailingZeroBitCount
  return 128 - leading - trailing <= T.significandBitCount + 1
}

/// ADD/SUB/MUL/DIV of two non-NaN operands, rounded by `env` with the flags it raises
/// (invalid operations give the default NaN, -nan, which is each format's indefinite).
func roundedArithmetic<T: IEEEArithmetic>(
  _ op: FloatOperation, _ a: T, _ bIn: T, _ env: FloatEnvironment, _ flags: inout FloatFlags
) -> T {
  var b = bIn
  switch op {
  case .add, .sub:
    if op == .sub { b = -b }
    if a.isInfinite && b.isInfinite && a.sign != b.sign {
      flags.pre |= MXCSRBit.invalid
      return -T.nan
    }
    if a.isInfinite || b.isInfinite { return a.isInfinite ? a : b }
    let sum = a + b
    if sum.isInfinite {
      // Halves add without overflow (both are huge, so halving is exact): TwoSum there.
      let (x, y) = (a / 2, b / 2)
      let half = x + y
      let virtualY = half - x
      return finishOverflow(
        half, errorSign: signum((x - (half - virtualY)) + (y - virtualY)), scaleDown: 1, env, &flags)
    }
    // TwoSum (Knuth): the exact error of the rounded sum.
    let bVirtual = sum - a
    let error = (a - (sum - bVirtual)) + (b - bVirtual)
    if sum == 0 && error == 0 {
      // An exact zero sum is +0, or -0 rounding down, unless both operands are zeros of one
      // sign, which it keeps (IEEE 754, 6.3).
      if a == 0 && b == 0 && a.sign == b.sign { return a }
      return env.rounding == .down ? -T.zero : T.zero
    }
    return finish(sum, errorSign: signum(error), scale: 0, env, &flags)
  case .mul:
    if (a.isInfinite && b == 0) || (a == 0 && b.isInfinite) {
      flags.pre |= MXCSRBit.invalid
      return -T.nan
    }
    if a.isInfinite || b.isInfinite || a == 0 || b == 0 { return a * b }
    let product = a * b
    // Near or below the normal range the residual itself may underflow: go to the scaled domain.
    let nearTiny =
      T.leastNormalMagnitude * T(sign: .plus, exponent: T.Exponent(T.significandBitCount + 3), significand: 1)
    if product.magnitude < nearTiny {
      // Possibly tiny: scale the smaller operand up so the product and its residual are exact.
      let factor = T(sign: .plus, exponent: T.Exponent(T.tinyScale), significand: 1)
      let (small, large) = a.magnitude < b.magnitude ? (a * factor, b) : (b * factor, a)
      let scaled = small * large
      if scaled.magnitude < T.leastNormalMagnitude {
        return deepUnderflow(negative: (a < 0) != (b < 0), exactUnbounded: exactProduct(a, b), env, &flags)
      }
      let residual = small.fusedMultiplyAdd(large, -scaled)
      return finish(scaled, errorSign: signum(residual), scale: T.tinyScale, env, &flags)
    }
    if product.isInfinite {
      // Both operands brought to [1, 2): the product there is exact to round, 2^shift away.
      let shift = Int(a.exponent) + Int(b.exponent)
      let x = T(sign: a.sign, exponent: 0, significand: a.significand)
      let y = T(sign: b.sign, exponent: 0, significand: b.significand)
      let scaled = x * y
      let errorSign = signum(x.fusedMultiplyAdd(y, -scaled))
      return finishOverflow(scaled, errorSign: errorSign, scaleDown: shift, env, &flags)
    }
    let residual = a.fusedMultiplyAdd(b, -product)
    return finish(product, errorSign: signum(residual), scale: 0, env, &flags)
  default:  // .div (sqrt, min, max never come here)
    if (a == 0 && b == 0) || (a.isInfinite && b.isInfinite) {
      flags.pre |= MXCSRBit.invalid
      return -T.nan
    }
    if b == 0 && !a.isInfinite {
      flags.pre |= MXCSRBit.divideByZero
      return a.sign == b.sign ? T.infinity : -T.infinity
    }
    if a.isInfinite || b.isInfinite || a == 0 { return a / b }
    var numerator = a
    var denominator = b
    // Subnormal or near-subnormal operands: scaling both leaves the quotient and makes the residual exact.
    let nearTiny =
      T.leastNormalMagnitude * T(sign: .plus, exponent: T.Exponent(2 * T.significandBitCount + 4), significand: 1)
    if a.magnitude < nearTiny || b.magnitude < nearTiny {
      let factor = T(sign: .plus, exponent: T.Exponent(2 * T.significandBitCount + 6), significand: 1)
      if numerator.magnitude < T.greatestFiniteMagnitude / factor
        && denominator.magnitude < T.greatestFiniteMagnitude / factor
      {
        numerator *= factor
        denominator *= factor
      }
    }
    let quotient = numerator / denominator
    if quotient.magnitude < 2 * T.leastNormalMagnitude {
      let scaledNumerator = numerator * T(sign: .plus, exponent: T.Exponent(T.tinyScale), significand: 1)
      let scaled = scaledNumerator / denominator
      if scaled.magnitude < T.leastNormalMagnitude { return deepUnderflow(negative: (a < 0) != (b < 0), env, &flags) }
      let residual = (-scaled).fusedMultiplyAdd(denominator, scaledNumerator)
      return finish(scaled, errorSign: signum(residual) * signum(denominator), scale: T.tinyScale, env, &flags)
    }
    if quotient.isInfinite {
      // Both operands brought to [1, 2): the quotient there is exact to round, 2^shift away.
      let shift = Int(numerator.exponent) - Int(denominator.exponent)
      let n = T(sign: numerator.sign, exponent: 0, significand: numerator.significand)
      let m = T(sign: denominator.sign, exponent: 0, significand: denominator.significand)
      let scaled = n / m
      let residual = (-scaled).fusedMultiplyAdd(m, n)
      return finishOverflow(scaled, errorSign: signum(residual) * signum(m), scaleDown: shift, env, &flags)
    }
    let residual = (-quotient).fusedMultiplyAdd(denominator, numerator)
    return finish(quotient, errorSign: signum(residual) * signum(denominator), scale: 0, env, &flags)
  }
}
