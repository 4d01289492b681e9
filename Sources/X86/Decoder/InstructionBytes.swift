/// Up to 16 instruction bytes as two little-endian words: a value, so decoding allocates
/// nothing and needs no pointer into guest memory.
public struct InstructionBytes: Sendable, Equatable {
  public var low: UInt64
  public var high: UInt64
  /// How many of the bytes are valid (the rest lie past a page the fetch could not reach).
  public var count: Int

  public init(low: UInt64, high: UInt64, count: Int) {
    self.low = low
    self.high = high
    self.count = count
  }

  /// From up to 16 bytes (tests and tools).
  public init(_ bytes: some Collection<UInt8>) {
    var low: UInt64 = 0
    var high: UInt64 = 0
    for (index, byte) in bytes.prefix(16).enumerated() {
      if index < 8 { low |= UInt64(byte) << (index * 8) } else { high |= UInt64(byte) << ((index - 8) * 8) }
    }
    self.init(low: low, high: high, count: min(bytes.count, 16))
  }

  @inline(__always)
  public func byte(_ index: Int) -> UInt8 {
    UInt8(truncatingIfNeeded: index < 8 ? low &>> UInt64(index &* 8) : high &>> UInt64((index &- 8) &* 8))
  }
}
