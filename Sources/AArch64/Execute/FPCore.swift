/// The IEEE 754 arithmetic of the ARM ARM's floating-point pseudocode (shared/functions/float:
/// FPUnpack, FPRound, FPProcessNaNs and the operations built on them), on raw bits, in
/// software. The host's Float and Double round to nearest and keep no flags a Swift program
/// can read reliably (the optimiser may move an operation across `fesetround`), so every
/// operation computes its exact result as an integer mantissa and exponent (or the exact
/// quotient/root with a sticky bit) and rounds it once, as FPRound does, under FPCR's
/// rounding mode, flush-to-zero and default-NaN bits, collecting FPSR's cumulative flags.

/// Half, single or double precision: the widths FPRound needs.
public enum FPFormat: UInt8, Sendable {
  case half = 1
  case single = 2
  case double = 3

  /// The format an FP instruction's `ftype` field names (00 S, 01 D, 11 H); nil for 10.
  public init?(ftype: UInt32) {
    switch ftype {
    case 0: self = .single
    case 1: self = .double
    case 3: self = .half
    default: return nil
    }
  }

  var totalBits: Int { 8 << Int(rawValue) }
  var exponentBits: Int {
    switch self {
    case .half: 5
    case .single: 8
    case .double: 11
    }
  }
  var fractionBits: Int { totalBits - exponentBits - 1 }
  var bias: Int { (1 << (exponentBits - 1)) - 1 }
  /// The exponent of the smallest normal number.
  var minimumExponent: Int { 1 - bias }
  var signBit: UInt64 { 1 << UInt64(totalBits - 1) }
  var fractionMask: UInt64 { (1 << UInt64(fractionBits)) - 1 }
  var exponentMask: UInt64 { ((1 << UInt64(exponentBits)) - 1) << UInt64(fractionBits) }
  var quietBit: UInt64 { 1 << UInt64(fractionBits - 1) }
  var mask: UInt64 { totalBits == 64 ? .max : (1 << UInt64(totalBits)) - 1 }

  func zero(_ negative: Bool) -> UInt64 { negative ? signBit : 0 }
  func infinity(_ negative: Bool) -> UInt64 { zero(negative) | exponentMask }
  func maxNormal(_ negative: Bool) -> UInt64 {
    zero(negative) | (exponentMask - (1 << UInt64(fractionBits))) | fractionMask
  }
  /// FPDefaultNaN: positive, quiet, fraction otherwise zero.
  var defaultNaN: UInt64 { exponentMask | quietBit }
}

/// FPCR's fields an operation reads, and the FPSR flags it raises.
public struct FPEnvironment: Sendable {
  /// FPRounding: FPCR.RMode's order (RN, RP, RM, RZ), then ties-away (FRINTA, FCVTA*).
  /// `odd` (von Neumann rounding: toward zero, the last bit set when inexact) is FCVTXN's.
  public enum Rounding: UInt8, Sendable {
    case tieEven = 0
    case positiveInfinity, negativeInfinity, zero, tieAway
    case odd = 7
  }

  public var fpcr: UInt64
  /// FPSR's cumulative bits this operation set: IOC 0, DZC 1, OFC 2, UFC 3, IXC 4, IDC 7.
  public var flags: UInt64 = 0

  public init(fpcr: UInt64) { self.fpcr = fpcr }

  public static let invalid: UInt64 = 1 << 0
  public static let divideByZero: UInt64 = 1 << 1
  public static let overflow: UInt64 = 1 << 2
  public static let underflow: UInt64 = 1 << 3
  public static let inexact: UInt64 = 1 << 4
  public static let inputDenormal: UInt64 = 1 << 7

  var alternativeHalf: Bool { fpcr >> 26 & 1 != 0 }
  var defaultNaN: Bool { fpcr >> 25 & 1 != 0 }
  var flushToZero: Bool { fpcr >> 24 & 1 != 0 }
  /// FPRoundingMode: FPCR.RMode.
  public var rounding: Rounding { Rounding(rawValue: UInt8(fpcr >> 22 & 3)) ?? .tieEven }
}

/// FPType, and an unpacked value: for numbers the exact magnitude `mantissa` × 2^`exponent`.
struct FPUnpacked {
  enum Kind { case zero, number, infinity, quietNaN, signallingNaN }
  var kind: Kind
  var negative: Bool
  var mantissa: UInt64 = 0
  var exponent: Int = 0
  var isNaN: Bool { kind == .quietNaN || kind == .signallingNaN }
}

extension FPEnvironment {
  /// FPUnpack: with FPCR.FZ a single or double denormal reads as zero and raises IDC (half
  /// precision has FZ16, which ARMv8.0 does not have). `alternative` reads a half as FPCR.AHP's
  /// format, which has no infinities or NaNs.
  mutating func unpack(_ bits: UInt64, _ format: FPFormat, flush: Bool = true, alternative: Bool = false)
    -> FPUnpacked
  {
    let negative = bits & format.signBit != 0
    let exponentField = Int((bits & format.exponentMask) >> UInt64(format.fractionBits))
    let fraction = bits & format.fractionMask
    let maxExponent = (1 << format.exponentBits) - 1
    if exponentField == 0 {
      if fraction == 0 { return FPUnpacked(kind: .zero, negative: negative) }
      if flush && flushToZero && format != .half {
        flags |= FPEnvironment.inputDenormal
        return FPUnpacked(kind: .zero, negative: negative)
      }
      return FPUnpacked(
        kind: .number, negative: negative, mantissa: fraction, exponent: format.minimumExponent - format.fractionBits)
    }
    if exponentField == maxExponent && !(alternative && format == .half) {
      if fraction == 0 { return FPUnpacked(kind: .infinity, negative: negative) }
      return FPUnpacked(kind: fraction & format.quietBit != 0 ? .quietNaN : .signallingNaN, negative: negative)
    }
    return FPUnpacked(
      kind: .number, negative: negative, mantissa: fraction | 1 << UInt64(format.fractionBits),
      exponent: exponentField - format.bias - format.fractionBits)
  }

  /// FPProcessNaN: a signalling NaN is quietened and raises IOC; FPCR.DN replaces any NaN
  /// with the default NaN.
  mutating func processNaN(_ bits: UInt64, _ kind: FPUnpacked.Kind, _ format: FPFormat) -> UInt64 {
    if kind == .signallingNaN { flags |= FPEnvironment.invalid }
    return defaultNaN ? format.defaultNaN : bits | format.quietBit
  }

  /// FPProcessNaNs: the first signalling NaN of the two, else the first quiet one; nil when
  /// neither is a NaN. (Two and three operands, without an array: this is every FP
  /// operation's path.)
  mutating func processNaNs(_ a: UInt64, _ x: FPUnpacked, _ b: UInt64, _ y: FPUnpacked, _ format: FPFormat) -> UInt64? {
    if x.kind == .signallingNaN { return processNaN(a, .signallingNaN, format) }
    if y.kind == .signallingNaN { return processNaN(b, .signallingNaN, format) }
    if x.kind == .quietNaN { return processNaN(a, .quietNaN, format) }
    if y.kind == .quietNaN { return processNaN(b, .quietNaN, format) }
    return nil
  }

  /// FPProcessNaNs3, in the operands' order (FPMulAdd: addend, then the factors).
  mutating func processNaNs(
    _ a: UInt64, _ x: FPUnpacked, _ b: UInt64, _ y: FPUnpacked, _ c: UInt64, _ z: FPUnpacked, _ format: FPFormat
  ) -> UInt64? {
    if x.kind == .signallingNaN { return processNaN(a, .signallingNaN, format) }
    if y.kind == .signallingNaN { return processNaN(b, .signallingNaN, format) }
    if z.kind == .signallingNaN { return processNaN(c, .signallingNaN, format) }
    if x.kind == .quietNaN { return processNaN(a, .quietNaN, format) }
    if y.kind == .quietNaN { return processNaN(b, .quietNaN, format) }
    if z.kind == .quietNaN { return processNaN(c, .quietNaN, format) }
    return nil
  }

  /// FPRoundBase: the value (`mantissa` + a sticky bit below it) × 2^`exponent`, nonzero, to
  /// `format`, under `rounding`: flush-to-zero before rounding, underflow detected before
  /// rounding (tiny and inexact), overflow to infinity or the largest normal by mode.
  mutating func round(
    negative: Bool, mantissa: UInt128, exponent: Int, sticky: Bool = false, _ format: FPFormat,
    rounding: Rounding? = nil, flush: Bool = true
  ) -> UInt64 {
    let rounding = rounding ?? self.rounding
    let fractionBits = format.fractionBits
    let top = 127 - mantissa.leadingZeroBitCount
    // The value lies in [2^e, 2^(e+1)).
    let e = top + exponent
    if flush && flushToZero && format != .half && e < format.minimumExponent {
      flags |= FPEnvironment.underflow
      return format.zero(negative)
    }
    var biased = max(e - format.minimumExponent + 1, 0)
    // The weight of the last place kept: fraction bits below the leading one, or the
    // denormal spacing.
    let ulpExponent = biased > 0 ? e - fractionBits : format.minimumExponent - fractionBits
    let shift = ulpExponent - exponent
    var integer: UInt128
    var half = false
    var rest = sticky
    if shift <= 0 {
      integer = mantissa << UInt128(-shift)
    } else if shift > 127 {
      integer = 0
      rest = rest || mantissa != 0
    } else {
      integer = mantissa >> UInt128(shift)
      half = (mantissa >> UInt128(shift - 1)) & 1 != 0
      let below = shift - 1 == 0 ? 0 : mantissa & ((1 << UInt128(shift - 1)) - 1)
      rest = rest || below != 0
    }
    var inexact = half || rest
    if biased == 0 && inexact { flags |= FPEnvironment.underflow }
    let roundUp: Bool
    let overflowToInfinity: Bool
    switch rounding {
    case .tieEven:
      roundUp = half && (rest || integer & 1 != 0)
      overflowToInfinity = true
    case .positiveInfinity:
      roundUp = inexact && !negative
      overflowToInfinity = !negative
    case .negativeInfinity:
      roundUp = inexact && negative
      overflowToInfinity = negative
    case .zero, .odd:
      roundUp = false
      overflowToInfinity = false
    case .tieAway:
      roundUp = half
      overflowToInfinity = true
    }
    if roundUp {
      integer += 1
      if integer == 1 << UInt128(fractionBits) { biased = 1 }
      if integer == 1 << UInt128(fractionBits + 1) {
        biased += 1
        integer >>= 1
      }
    }
    if rounding == .odd && inexact { integer |= 1 }
    var result: UInt64
    if format == .half && alternativeHalf {
      if biased >= 1 << format.exponentBits {
        flags |= FPEnvironment.invalid
        return format.zero(negative) | 0x7fff
      }
      result = format.zero(negative) | UInt64(biased) << UInt64(fractionBits) | UInt64(integer) & format.fractionMask
    } else if biased >= (1 << format.exponentBits) - 1 {
      result = overflowToInfinity ? format.infinity(negative) : format.maxNormal(negative)
      flags |= FPEnvironment.overflow
      inexact = true
    } else {
      result = format.zero(negative) | UInt64(biased) << UInt64(fractionBits) | UInt64(integer) & format.fractionMask
    }
    if inexact { flags |= FPEnvironment.inexact }
    return result
  }

  /// An exact number's encoding (FPRound of a value known to fit, as FPMax's result is).
  mutating func encode(_ value: FPUnpacked, _ format: FPFormat) -> UInt64 {
    switch value.kind {
    case .zero: return format.zero(value.negative)
    case .infinity: return format.infinity(value.negative)
    default: return round(negative: value.negative, mantissa: UInt128(value.mantissa), exponent: value.exponent, format)
    }
  }
}
