/// The constants the step instructions need (FPTwo, FPThree, FPOnePointFive), positive.
enum FPDecodedConstant {
  static func two(_ format: FPFormat) -> UInt64 { UInt64(format.bias + 1) << UInt64(format.fractionBits) }
  static func three(_ format: FPFormat) -> UInt64 { two(format) | format.quietBit }
  static func onePointFive(_ format: FPFormat) -> UInt64 {
    UInt64(format.bias) << UInt64(format.fractionBits) | format.quietBit
  }
}

/// The floating-point operations of the ARM ARM's pseudocode (FPAdd, FPMul, FPDiv, FPSqrt,
/// FPMulAdd, FPMax/FPMin and their NM forms, FPCompare, FPRoundInt, FPToFixed, FixedToFP,
/// FPConvert) on raw bits, each exact up to one FPRound.
extension FPEnvironment {
  /// Where a sum's operands are aligned: the larger's leading one at bit 125 leaves 70 or more
  /// guard bits below a double's 53, so a sticky bit ORed into bit 0 rounds exactly.
  static let alignTop = 125

  /// valueA + valueB for nonzero magnitudes `m` × 2^`e`; nil for an exact zero.
  static func addExact(
    _ negativeA: Bool, _ mantissaA: UInt128, _ exponentA: Int, _ negativeB: Bool, _ mantissaB: UInt128,
    _ exponentB: Int
  ) -> (negative: Bool, mantissa: UInt128, exponent: Int)? {
    func normalise(_ m: UInt128, _ e: Int) -> (UInt128, Int) {
      let top = 127 - m.leadingZeroBitCount
      return top <= alignTop
        ? (m << UInt128(alignTop - top), e - (alignTop - top)) : (m >> UInt128(top - alignTop), e + (top - alignTop))
    }
    var (big, bigExponent) = normalise(mantissaA, exponentA)
    var (small, smallExponent) = normalise(mantissaB, exponentB)
    var bigNegative = negativeA
    var smallNegative = negativeB
    if smallExponent > bigExponent || smallExponent == bigExponent && small > big {
      swap(&big, &small)
      swap(&bigExponent, &smallExponent)
      swap(&bigNegative, &smallNegative)
    }
    let distance = bigExponent - smallExponent
    if distance > 0 {
      if distance > 127 {
        small = 1
      } else {
        let lost = small & ((1 << UInt128(distance)) - 1)
        small = small >> UInt128(distance) | (lost != 0 ? 1 : 0)
      }
    }
    if bigNegative == smallNegative { return (bigNegative, big + small, bigExponent) }
    if big == small { return nil }
    return (bigNegative, big - small, bigExponent)
  }

  /// FPAdd (FSUB negates the second operand first, as its pseudocode does).
  public mutating func add(_ a: UInt64, _ b: UInt64, _ format: FPFormat) -> UInt64 {
    let x = unpack(a, format)
    let y = unpack(b, format)
    if let nan = processNaNs(a, x, b, y, format) { return nan }
    switch (x.kind, y.kind) {
    case (.infinity, .infinity) where x.negative != y.negative:
      flags |= FPEnvironment.invalid
      return format.defaultNaN
    case (.infinity, _): return format.infinity(x.negative)
    case (_, .infinity): return format.infinity(y.negative)
    case (.zero, .zero):
      return format.zero(x.negative == y.negative ? x.negative : rounding == .negativeInfinity)
    case (.zero, _): return encode(y, format)
    case (_, .zero): return encode(x, format)
    default:
      guard
        let sum = FPEnvironment.addExact(
          x.negative, UInt128(x.mantissa), x.exponent, y.negative, UInt128(y.mantissa), y.exponent)
      else { return format.zero(rounding == .negativeInfinity) }
      return round(negative: sum.negative, mantissa: sum.mantissa, exponent: sum.exponent, format)
    }
  }

  public mutating func subtract(_ a: UInt64, _ b: UInt64, _ format: FPFormat) -> UInt64 {
    // FPSub is FPAdd with the second operand's sign inverted, except that a NaN keeps its
    // own bits: handle NaNs first, on the operands as given.
    let x = unpack(a, format)
    let y = unpack(b, format)
    if let nan = processNaNs(a, x, b, y, format) { return nan }
    return add(a, b ^ format.signBit, format)
  }

  /// FPMul (FNMUL negates its result, NaNs included, as FPNeg does).
  public mutating func multiply(_ a: UInt64, _ b: UInt64, _ format: FPFormat) -> UInt64 {
    let x = unpack(a, format)
    let y = unpack(b, format)
    if let nan = processNaNs(a, x, b, y, format) { return nan }
    let negative = x.negative != y.negative
    switch (x.kind, y.kind) {
    case (.infinity, .zero), (.zero, .infinity):
      flags |= FPEnvironment.invalid
      return format.defaultNaN
    case (.infinity, _), (_, .infinity): return format.infinity(negative)
    case (.zero, _), (_, .zero): return format.zero(negative)
    default:
      return round(
        negative: negative, mantissa: UInt128(x.mantissa) * UInt128(y.mantissa), exponent: x.exponent + y.exponent,
        format)
    }
  }

  public mutating func divide(_ a: UInt64, _ b: UInt64, _ format: FPFormat) -> UInt64 {
    let x = unpack(a, format)
    let y = unpack(b, format)
    if let nan = processNaNs(a, x, b, y, format) { return nan }
    let negative = x.negative != y.negative
    switch (x.kind, y.kind) {
    case (.infinity, .infinity), (.zero, .zero):
      flags |= FPEnvironment.invalid
      return format.defaultNaN
    case (.infinity, _), (_, .zero):
      if x.kind != .infinity { flags |= FPEnvironment.divideByZero }
      return format.infinity(negative)
    case (.zero, _), (_, .infinity): return format.zero(negative)
    default:
      // The dividend's leading one at bit 125 over a divisor of 53 bits at most: a quotient
      // of 72 bits or more, the remainder as a sticky bit.
      let shift = 125 - (63 - x.mantissa.leadingZeroBitCount)
      let dividend = UInt128(x.mantissa) << UInt128(shift)
      let (quotient, remainder) = dividend.quotientAndRemainder(dividingBy: UInt128(y.mantissa))
      return round(
        negative: negative, mantissa: quotient, exponent: x.exponent - shift - y.exponent, sticky: remainder != 0,
        format)
    }
  }

  public mutating func squareRoot(_ a: UInt64, _ format: FPFormat) -> UInt64 {
    let x = unpack(a, format)
    if x.isNaN { return processNaN(a, x.kind, format) }
    switch x.kind {
    case .zero: return format.zero(x.negative)
    case .infinity where !x.negative: return a
    default:
      if x.negative {
        flags |= FPEnvironment.invalid
        return format.defaultNaN
      }
      // m × 2^e with e even and m about 2^124: the integer root has about 62 bits.
      var shift = 124 - (63 - x.mantissa.leadingZeroBitCount)
      if (x.exponent - shift) & 1 != 0 { shift -= 1 }
      let radicand = UInt128(x.mantissa) << UInt128(shift)
      let (root, exact) = FPEnvironment.integerSquareRoot(radicand)
      return round(negative: false, mantissa: root, exponent: (x.exponent - shift) / 2, sticky: !exact, format)
    }
  }

  /// The floor of √n, and whether it is exact (bit by bit, two bits of n per step).
  static func integerSquareRoot(_ n: UInt128) -> (UInt128, Bool) {
    var remainder = n
    var root: UInt128 = 0
    var bit: UInt128 = 1 << 126
    while bit > n { bit >>= 2 }
    while bit != 0 {
      if remainder >= root + bit {
        remainder -= root + bit
        root = (root >> 1) + bit
      } else {
        root >>= 1
      }
      bit >>= 2
    }
    return (root, remainder == 0)
  }

  /// FPMulAdd: addend + op1 × op2 rounded once (FMADD; the other three negate operands first).
  /// `halve` divides the exact result by two before rounding (FPRSqrtStepFused).
  public mutating func multiplyAdd(
    _ addend: UInt64, _ a: UInt64, _ b: UInt64, _ format: FPFormat, halve: Bool = false
  ) -> UInt64 {
    let c = unpack(addend, format)
    let x = unpack(a, format)
    let y = unpack(b, format)
    let productInvalid = x.kind == .infinity && y.kind == .zero || x.kind == .zero && y.kind == .infinity
    if let nan = processNaNs(addend, c, a, x, b, y, format) {
      if c.kind == .quietNaN && productInvalid {
        flags |= FPEnvironment.invalid
        return format.defaultNaN
      }
      return nan
    }
    let productNegative = x.negative != y.negative
    let productInfinite = x.kind == .infinity || y.kind == .infinity
    let productZero = x.kind == .zero || y.kind == .zero
    if productInvalid || c.kind == .infinity && productInfinite && c.negative != productNegative {
      flags |= FPEnvironment.invalid
      return format.defaultNaN
    }
    if c.kind == .infinity { return format.infinity(c.negative) }
    if productInfinite { return format.infinity(productNegative) }
    if c.kind == .zero && productZero {
      return format.zero(c.negative == productNegative ? c.negative : rounding == .negativeInfinity)
    }
    let scale = halve ? -1 : 0
    if productZero {
      return round(negative: c.negative, mantissa: UInt128(c.mantissa), exponent: c.exponent + scale, format)
    }
    let product = UInt128(x.mantissa) * UInt128(y.mantissa)
    let productExponent = x.exponent + y.exponent
    if c.kind == .zero {
      return round(negative: productNegative, mantissa: product, exponent: productExponent + scale, format)
    }
    guard
      let sum = FPEnvironment.addExact(
        c.negative, UInt128(c.mantissa), c.exponent, productNegative, product, productExponent)
    else { return format.zero(rounding == .negativeInfinity) }
    return round(negative: sum.negative, mantissa: sum.mantissa, exponent: sum.exponent + scale, format)
  }

  /// FPMulX (FMULX): FPMul, except that infinity × zero is 2.0 with the product's sign.
  public mutating func multiplyExtended(_ a: UInt64, _ b: UInt64, _ format: FPFormat) -> UInt64 {
    let x = unpack(a, format)
    let y = unpack(b, format)
    if !x.isNaN && !y.isNaN && (x.kind == .infinity && y.kind == .zero || x.kind == .zero && y.kind == .infinity) {
      return format.zero(x.negative != y.negative) | FPDecodedConstant.two(format)
    }
    return multiply(a, b, format)
  }

  /// FPRecipStepFused (FRECPS, 2 - a × b) and FPRSqrtStepFused (FRSQRTS, (3 - a × b) / 2),
  /// fused: infinity × zero gives 2.0 or 1.5 exactly.
  public mutating func reciprocalStep(_ a: UInt64, _ b: UInt64, _ format: FPFormat, squareRoot: Bool) -> UInt64 {
    let negated = a ^ format.signBit
    let x = unpack(negated, format)
    let y = unpack(b, format)
    if let nan = processNaNs(negated, x, b, y, format) { return nan }
    if x.kind == .infinity && y.kind == .zero || x.kind == .zero && y.kind == .infinity {
      return squareRoot ? FPDecodedConstant.onePointFive(format) : FPDecodedConstant.two(format)
    }
    let constant = squareRoot ? FPDecodedConstant.three(format) : FPDecodedConstant.two(format)
    return multiplyAdd(constant, negated, b, format, halve: squareRoot)
  }

  /// Which of two unpacked numbers (not NaNs) is greater; nil when equal.
  static func greater(_ x: FPUnpacked, _ y: FPUnpacked) -> Bool? {
    func key(_ v: FPUnpacked) -> (Int, UInt128, Int) {
      // Magnitude order: zero < numbers (by leading-one position, then mantissa) < infinity.
      switch v.kind {
      case .zero: return (0, 0, 0)
      case .infinity: return (2, 0, 0)
      default:
        let top = 63 - v.mantissa.leadingZeroBitCount
        return (1, UInt128(v.mantissa) << UInt128(64 - top), top + v.exponent)
      }
    }
    let (kx, mx, ex) = key(x)
    let (ky, my, ey) = key(y)
    if kx == 0 && ky == 0 { return nil }
    let xNegative = x.negative && kx != 0
    let yNegative = y.negative && ky != 0
    if xNegative != yNegative { return yNegative }
    let magnitudeGreater: Bool?
    if kx != ky {
      magnitudeGreater = kx > ky
    } else if ex != ey {
      magnitudeGreater = ex > ey
    } else if mx != my {
      magnitudeGreater = mx > my
    } else {
      magnitudeGreater = nil
    }
    guard let magnitudeGreater else { return nil }
    return xNegative ? !magnitudeGreater : magnitudeGreater
  }

  /// FPMax and FPMin (`maximum` false); `numeric` gives FMAXNM/FMINNM, where one quiet NaN
  /// loses to a number.
  public mutating func maxMin(_ a: UInt64, _ b: UInt64, _ format: FPFormat, maximum: Bool, numeric: Bool) -> UInt64 {
    var a = a
    var b = b
    if numeric {
      let x = unpack(a, format, flush: false)
      let y = unpack(b, format, flush: false)
      let replacement = format.infinity(maximum)
      if x.kind == .quietNaN && !y.isNaN {
        a = replacement
      } else if y.kind == .quietNaN && !x.isNaN {
        b = replacement
      }
    }
    let x = unpack(a, format)
    let y = unpack(b, format)
    if let nan = processNaNs(a, x, b, y, format) { return nan }
    if x.kind == .zero && y.kind == .zero {
      return format.zero(maximum ? x.negative && y.negative : x.negative || y.negative)
    }
    let xGreater = FPEnvironment.greater(x, y) ?? false
    return encode(xGreater == maximum ? x : y, format)
  }

  /// FPCompare: NZCV in bits 31-28 (0110 equal, 1000 less, 0010 greater, 0011 unordered);
  /// `signalling` (FCMPE) raises IOC for quiet NaNs too.
  public mutating func compare(_ a: UInt64, _ b: UInt64, _ format: FPFormat, signalling: Bool) -> UInt32 {
    let x = unpack(a, format)
    let y = unpack(b, format)
    if x.isNaN || y.isNaN {
      if signalling || x.kind == .signallingNaN || y.kind == .signallingNaN { flags |= FPEnvironment.invalid }
      return 0x3000_0000
    }
    guard let xGreater = FPEnvironment.greater(x, y) else { return 0x6000_0000 }
    return xGreater ? 0x2000_0000 : 0x8000_0000
  }

  /// FPCompareEQ (quiet: IOC only for signalling NaNs), FPCompareGE and FPCompareGT (IOC for
  /// any NaN): the predicates of the vector compares, false when unordered.
  public mutating func compareEqual(_ a: UInt64, _ b: UInt64, _ format: FPFormat) -> Bool {
    compare(a, b, format, signalling: false) == 0x6000_0000
  }

  public mutating func compareGreaterOrEqual(_ a: UInt64, _ b: UInt64, _ format: FPFormat) -> Bool {
    let flags = compare(a, b, format, signalling: true)
    return flags == 0x6000_0000 || flags == 0x2000_0000
  }

  public mutating func compareGreater(_ a: UInt64, _ b: UInt64, _ format: FPFormat) -> Bool {
    compare(a, b, format, signalling: true) == 0x2000_0000
  }

  /// A number's value rounded to an integer under `rounding`: the integer's magnitude, and
  /// whether anything was discarded. Magnitudes past 2^127 come back saturated.
  static func roundToInteger(_ x: FPUnpacked, _ rounding: Rounding, fractionBits: Int = 0) -> (
    magnitude: UInt128, inexact: Bool
  ) {
    guard x.kind == .number else { return (0, false) }
    let exponent = x.exponent + fractionBits
    var integer: UInt128
    var half = false
    var rest = false
    if exponent >= 0 {
      if exponent + (64 - x.mantissa.leadingZeroBitCount) > 127 { return (.max, false) }
      integer = UInt128(x.mantissa) << UInt128(exponent)
    } else if -exponent > 64 {
      integer = 0
      rest = true
    } else {
      let shift = -exponent
      integer = UInt128(x.mantissa >> UInt64(min(shift, 63)))
      if shift == 64 { integer = 0 }
      half = (x.mantissa >> UInt64(shift - 1)) & 1 != 0
      rest = shift > 1 && x.mantissa & ((1 << UInt64(shift - 1)) - 1) != 0
    }
    let inexact = half || rest
    let up: Bool
    switch rounding {
    case .tieEven: up = half && (rest || integer & 1 != 0)
    case .tieAway: up = half
    case .positiveInfinity: up = inexact && !x.negative
    case .negativeInfinity: up = inexact && x.negative
    case .zero, .odd: up = false
    }
    return (up ? integer + 1 : integer, inexact)
  }

  /// FPRoundInt (FRINT*): `exact` (FRINTX) raises IXC when the value changes.
  public mutating func roundToIntegral(_ a: UInt64, _ format: FPFormat, rounding: Rounding, exact: Bool) -> UInt64 {
    let x = unpack(a, format)
    switch x.kind {
    case .quietNaN, .signallingNaN: return processNaN(a, x.kind, format)
    case .infinity: return format.infinity(x.negative)
    case .zero: return format.zero(x.negative)
    case .number:
      // No fraction bits: already an integer.
      if x.exponent >= 0 { return a }
      let (magnitude, inexact) = FPEnvironment.roundToInteger(x, rounding)
      if exact && inexact { flags |= FPEnvironment.inexact }
      if magnitude == 0 { return format.zero(x.negative) }
      return round(negative: x.negative, mantissa: magnitude, exponent: 0, format, rounding: .zero)
    }
  }

  /// FPToFixed: to a 32- or 64-bit integer with `fractionBits` fraction bits, saturating;
  /// NaNs give 0. IOC for NaNs and out-of-range values, else IXC when inexact.
  public mutating func toFixed(
    _ a: UInt64, _ format: FPFormat, fractionBits: Int, unsigned: Bool, bits: Int, rounding: Rounding
  ) -> UInt64 {
    let x = unpack(a, format)
    if x.isNaN {
      flags |= FPEnvironment.invalid
      return 0
    }
    let maximum: UInt128 = unsigned ? (1 << UInt128(bits)) - 1 : (1 << UInt128(bits - 1)) - 1
    let minimumMagnitude: UInt128 = unsigned ? 0 : 1 << UInt128(bits - 1)
    let (magnitude, inexact) =
      x.kind == .infinity ? (UInt128.max, false) : FPEnvironment.roundToInteger(x, rounding, fractionBits: fractionBits)
    let mask: UInt64 = bits == 64 ? .max : (1 << UInt64(bits)) - 1
    if x.negative && magnitude != 0 {
      if magnitude > minimumMagnitude {
        flags |= FPEnvironment.invalid
        return UInt64(truncatingIfNeeded: 0 &- minimumMagnitude) & mask
      }
      if inexact { flags |= FPEnvironment.inexact }
      return UInt64(truncatingIfNeeded: 0 &- magnitude) & mask
    }
    if magnitude > maximum {
      flags |= FPEnvironment.invalid
      return UInt64(truncatingIfNeeded: maximum)
    }
    if inexact { flags |= FPEnvironment.inexact }
    return UInt64(truncatingIfNeeded: magnitude)
  }

  /// FixedToFP: a 32- or 64-bit integer with `fractionBits` fraction bits, rounded to `format`.
  public mutating func fromFixed(
    _ value: UInt64, bits: Int, fractionBits: Int, unsigned: Bool, _ format: FPFormat, rounding: Rounding
  ) -> UInt64 {
    let mask: UInt64 = bits == 64 ? .max : (1 << UInt64(bits)) - 1
    var magnitude = value & mask
    var negative = false
    if !unsigned && magnitude >> UInt64(bits - 1) != 0 {
      negative = true
      magnitude = (0 &- magnitude) & mask
    }
    if magnitude == 0 { return format.zero(false) }
    return round(negative: negative, mantissa: UInt128(magnitude), exponent: -fractionBits, format, rounding: rounding)
  }

  /// FPConvert (FCVT) between precisions: NaNs keep their sign and top fraction bits
  /// (FPConvertNaN), quietened; a half with FPCR.AHP has no infinities or NaNs.
  public mutating func convert(
    _ a: UInt64, from source: FPFormat, to destination: FPFormat, rounding: Rounding? = nil
  ) -> UInt64 {
    let alternative = alternativeHalf
    let x = unpack(a, source, alternative: alternative)
    let toAlternative = destination == .half && alternative
    switch x.kind {
    case .quietNaN, .signallingNaN:
      if toAlternative {
        flags |= FPEnvironment.invalid
        return destination.zero(x.negative)
      }
      if x.kind == .signallingNaN { flags |= FPEnvironment.invalid }
      if defaultNaN { return destination.defaultNaN }
      let fraction = a & source.fractionMask
      let moved =
        destination.fractionBits >= source.fractionBits
        ? fraction << UInt64(destination.fractionBits - source.fractionBits)
        : fraction >> UInt64(source.fractionBits - destination.fractionBits)
      return destination.infinity(x.negative) | moved | destination.quietBit
    case .infinity:
      if toAlternative {
        flags |= FPEnvironment.invalid
        return destination.zero(x.negative) | 0x7fff
      }
      return destination.infinity(x.negative)
    case .zero: return destination.zero(x.negative)
    case .number:
      return round(
        negative: x.negative, mantissa: UInt128(x.mantissa), exponent: x.exponent, destination, rounding: rounding)
    }
  }
}
