/// A 128-bit SIMD&FP register's value and its elements (the ARM ARM's Elem[vector, e, size]).
struct Vector128: Equatable {
  var low: UInt64
  var high: UInt64

  static let zero = Vector128(low: 0, high: 0)

  /// Element `index` of 8 << `size` bits.
  @inline(__always) func element(_ index: Int, _ size: Int) -> UInt64 {
    let bits = 8 << size
    let position = index * bits
    let word = position < 64 ? low : high
    let value = word >> UInt64(position & 63)
    return bits == 64 ? value : value & ((1 << UInt64(bits)) - 1)
  }

  @inline(__always) mutating func setElement(_ index: Int, _ size: Int, _ value: UInt64) {
    let bits = 8 << size
    let position = index * bits
    let mask: UInt64 = bits == 64 ? .max : (1 << UInt64(bits)) - 1
    let shift = UInt64(position & 63)
    if position < 64 {
      low = low & ~(mask << shift) | (value & mask) << shift
    } else {
      high = high & ~(mask << shift) | (value & mask) << shift
    }
  }
}

extension A64Core {
  @inline(__always) func vector(_ n: UInt8) -> Vector128 { Vector128(low: state.vLow(n), high: state.vHigh(n)) }

  /// Writes V`n`; a 64-bit (Q = 0) result zeroes the upper half, as every vector write does.
  @inline(__always) mutating func setVector(_ n: UInt8, _ value: Vector128, full: Bool) {
    state.setV(n, low: value.low, high: full ? value.high : 0)
  }

  /// SignExtend of an element of 8 << `size` bits to 64.
  @inline(__always) static func signed(_ value: UInt64, _ size: Int) -> Int64 {
    let unused = UInt64(64 - (8 << size))
    return Int64(bitPattern: value << unused) >> Int64(unused)
  }

  /// PolynomialMult of two bytes: the carry-less product (16 bits).
  static func carrylessMultiply(_ a: UInt64, _ b: UInt64) -> UInt64 {
    var product: UInt64 = 0
    for bit in 0..<8 where b >> UInt64(bit) & 1 != 0 { product ^= a << UInt64(bit) }
    return product
  }

  /// SQDMULH and SQRDMULH of two elements: the high half of 2 × a × b (rounded), saturated.
  static func doublingMultiplyHigh(_ a: UInt64, _ b: UInt64, _ size: Int, rounding: Bool, _ saturated: Bool) -> (
    UInt64, Bool
  ) {
    let bits = 8 << size
    let product = 2 * Int128(signed(a, size)) * Int128(signed(b, size))
    let rounded = product + (rounding ? 1 << Int128(bits - 1) : 0)
    return saturate(rounded >> Int128(bits), size, signed: true, saturated)
  }

  /// SQDMULL, SQDMLAL (`sign` 1), SQDMLSL (-1): 2 × a × b saturated to the double width,
  /// then added to or subtracted from `accumulate` with saturation again.
  static func doublingMultiplyLong(
    _ a: UInt64, _ b: UInt64, _ size: Int, accumulate: UInt64, _ sign: Int, _ saturated: Bool
  ) -> (UInt64, Bool) {
    var (product, saturated) = saturate(
      2 * Int128(signed(a, size)) * Int128(signed(b, size)), size + 1, signed: true, saturated)
    if sign != 0 {
      let old = Int128(signed(accumulate, size + 1))
      let term = Int128(signed(product, size + 1))
      (product, saturated) = saturate(sign > 0 ? old + term : old - term, size + 1, signed: true, saturated)
    }
    return (product, saturated)
  }

  /// FPSR.QC: a saturating instruction clamped a result.
  static let cumulativeSaturation: UInt64 = 1 << 27

  /// SignedSatQ/UnsignedSatQ of an exact (128-bit) value.
  @inline(__always)
  static func saturate(_ value: Int128, _ size: Int, signed: Bool, _ saturated: Bool) -> (UInt64, Bool) {
    let bits = 8 << size
    let maximum: Int128 = signed ? (1 << Int128(bits - 1)) - 1 : (1 << Int128(bits)) - 1
    let minimum: Int128 = signed ? -(1 << Int128(bits - 1)) : 0
    if value > maximum { return (UInt64(truncatingIfNeeded: maximum), true) }
    if value < minimum { return (UInt64(truncatingIfNeeded: minimum), true) }
    return (UInt64(truncatingIfNeeded: value), saturated)
  }

  /// SignedSatQ/UnsignedSatQ: `value` clamped to an element of 8 << `size` bits; whether it
  /// was clamped is ORed into `saturated`.
  @inline(__always)
  static func saturate(_ value: Int64, _ size: Int, signed: Bool, _ saturated: Bool) -> (UInt64, Bool) {
    let bits = 8 << size
    let maximum: Int64 =
      signed ? (bits == 64 ? .max : (1 << Int64(bits - 1)) - 1) : (bits >= 64 ? .max : (1 << Int64(bits)) - 1)
    let minimum: Int64 = signed ? (bits == 64 ? .min : -(1 << Int64(bits - 1))) : 0
    if value > maximum { return (UInt64(bitPattern: maximum), true) }
    if value < minimum { return (UInt64(bitPattern: minimum), true) }
    return (UInt64(bitPattern: value), saturated)
  }

  /// How many elements an instruction works on: one for the scalar forms (`setFlags`),
  /// else 64 or 128 bits' worth.
  @inline(__always) static func lanes(_ i: A64Instruction) -> Int {
    i.setFlags ? 1 : (i.is64 ? 16 : 8) >> Int(i.size)
  }
}
