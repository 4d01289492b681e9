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

  /// Byte `index` of the 256-bit concatenation high:low (EXT, UZP, TRN, ZIP work on pairs).
  static func pairByte(_ low: Vector128, _ high: Vector128, _ index: Int) -> UInt64 {
    index < 16 ? low.element(index, 0) : high.element(index - 16, 0)
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
}
