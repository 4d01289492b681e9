/// The estimate instructions of ARMv8.0 (FRECPE, FRSQRTE, FRECPX, URECPE, URSQRTE): the ARM
/// ARM's FPRecipEstimate, FPRSqrtEstimate, FPRecpX, UnsignedRecipEstimate and
/// UnsignedRSqrtEstimate, whose 8-bit estimates come from integer formulas (RecipEstimate,
/// RecipSqrtEstimate), not from a table of the implementation's choosing.
extension FPEnvironment {
  /// RecipEstimate: 256 ≤ a < 512 (0.5 ≤ x < 1 in steps of 1/512) to 256 ≤ r < 512.
  static func recipEstimate(_ a: Int) -> Int {
    let b = (1 << 19) / (a * 2 + 1)
    return (b + 1) / 2
  }

  /// RecipSqrtEstimate: 128 ≤ a < 512 (0.25 ≤ x < 1) to 256 ≤ r < 512.
  static func recipSqrtEstimate(_ a: Int) -> Int {
    let scaled = a < 256 ? a * 2 + 1 : ((a >> 1) << 1 + 1) * 2
    var b = 512
    while scaled * (b + 1) * (b + 1) < 1 << 28 { b += 1 }
    return (b + 1) / 2
  }

  /// The fraction of a single or double as 52 bits (a single's 23 at the top) and its
  /// biased exponent.
  static func fractionAndExponent(_ bits: UInt64, _ format: FPFormat) -> (UInt64, Int) {
    if format == .single { return ((bits & 0x7f_ffff) << 29, Int(bits >> 23 & 0xff)) }
    return (bits & 0xf_ffff_ffff_ffff, Int(bits >> 52 & 0x7ff))
  }

  public mutating func reciprocalEstimate(_ a: UInt64, _ format: FPFormat) -> UInt64 {
    let x = unpack(a, format)
    switch x.kind {
    case .quietNaN, .signallingNaN: return processNaN(a, x.kind, format)
    case .infinity: return format.zero(x.negative)
    case .zero:
      flags |= FPEnvironment.divideByZero
      return format.infinity(x.negative)
    case .number: break
    }
    // |x| < 2^-128 (single) or 2^-1024 (double): the reciprocal overflows.
    let top = 63 - x.mantissa.leadingZeroBitCount + x.exponent
    if top < (format == .single ? -128 : -1024) {
      let toInfinity: Bool
      switch rounding {
      case .tieEven, .tieAway: toInfinity = true
      case .positiveInfinity: toInfinity = !x.negative
      case .negativeInfinity: toInfinity = x.negative
      case .zero, .odd: toInfinity = false
      }
      flags |= FPEnvironment.overflow | FPEnvironment.inexact
      return toInfinity ? format.infinity(x.negative) : format.maxNormal(x.negative)
    }
    if flushToZero && top >= (format == .single ? 126 : 1022) {
      flags |= FPEnvironment.underflow
      return format.zero(x.negative)
    }
    var (fraction, exponent) = FPEnvironment.fractionAndExponent(a, format)
    if exponent == 0 {
      if fraction >> 51 & 1 == 0 {
        exponent = -1
        fraction = (fraction << 2) & 0xf_ffff_ffff_ffff
      } else {
        fraction = (fraction << 1) & 0xf_ffff_ffff_ffff
      }
    }
    let scaled = Int(1 << 8 | fraction >> 44)
    var resultExponent = (format == .single ? 253 : 2045) - exponent
    let estimate = UInt64(FPEnvironment.recipEstimate(scaled))
    var resultFraction = (estimate & 0xff) << 44
    if resultExponent == 0 {
      resultFraction = 1 << 51 | resultFraction >> 1
    } else if resultExponent == -1 {
      resultFraction = 1 << 50 | resultFraction >> 2
      resultExponent = 0
    }
    return FPEnvironment.pack(x.negative, resultExponent, resultFraction, format)
  }

  public mutating func reciprocalSquareRootEstimate(_ a: UInt64, _ format: FPFormat) -> UInt64 {
    let x = unpack(a, format)
    switch x.kind {
    case .quietNaN, .signallingNaN: return processNaN(a, x.kind, format)
    case .zero:
      flags |= FPEnvironment.divideByZero
      return format.infinity(x.negative)
    case .infinity where !x.negative: return format.zero(false)
    default:
      if x.negative {
        flags |= FPEnvironment.invalid
        return format.defaultNaN
      }
    }
    var (fraction, exponent) = FPEnvironment.fractionAndExponent(a, format)
    if exponent == 0 {
      while fraction >> 51 & 1 == 0 {
        fraction = (fraction << 1) & 0xf_ffff_ffff_ffff
        exponent -= 1
      }
      fraction = (fraction << 1) & 0xf_ffff_ffff_ffff
    }
    let scaled = exponent & 1 == 0 ? Int(1 << 8 | fraction >> 44) : Int(1 << 7 | fraction >> 45)
    // (380 - exp) DIV 2 rounds toward minus infinity; the operand is never negative here.
    let resultExponent = ((format == .single ? 380 : 3068) - exponent) / 2
    let estimate = UInt64(FPEnvironment.recipSqrtEstimate(scaled))
    return FPEnvironment.pack(false, resultExponent, (estimate & 0xff) << 44, format)
  }

  /// FPRecpX: the exponent inverted, the fraction zeroed (the largest finite exponent for
  /// zeros and denormals).
  public mutating func reciprocalExponent(_ a: UInt64, _ format: FPFormat) -> UInt64 {
    let x = unpack(a, format)
    if x.isNaN { return processNaN(a, x.kind, format) }
    let exponentField = (a & format.exponentMask) >> UInt64(format.fractionBits)
    let maxExponent = UInt64((1 << format.exponentBits) - 1)
    // With FZ a denormal reads as zero: exponent 0 either way.
    let exponent = exponentField == 0 || x.kind == .zero ? maxExponent - 1 : ~exponentField & maxExponent
    return format.zero(x.negative) | exponent << UInt64(format.fractionBits)
  }

  /// Sign, biased exponent and a 52-bit fraction (a single keeps its top 23) as bits.
  static func pack(_ negative: Bool, _ exponent: Int, _ fraction: UInt64, _ format: FPFormat) -> UInt64 {
    if format == .single {
      return (negative ? 1 << 31 : 0) | UInt64(exponent & 0xff) << 23 | fraction >> 29
    }
    return (negative ? 1 << 63 : 0) | UInt64(exponent & 0x7ff) << 52 | fraction
  }

  /// UnsignedRecipEstimate and UnsignedRSqrtEstimate on a 32-bit fixed-point fraction.
  public static func unsignedEstimate(_ a: UInt64, squareRoot: Bool) -> UInt64 {
    if squareRoot {
      if a >> 30 & 3 == 0 { return 0xffff_ffff }
      return UInt64(recipSqrtEstimate(Int(a >> 23 & 0x1ff)) & 0x1ff) << 23
    }
    if a >> 31 & 1 == 0 { return 0xffff_ffff }
    return UInt64(recipEstimate(Int(a >> 23 & 0x1ff)) & 0x1ff) << 23
  }
}
