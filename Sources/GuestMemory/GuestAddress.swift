/// A guest-physical address. Kept distinct from plain integers so that host pointers,
/// guest-virtual addresses and sizes cannot be passed where a guest-physical address belongs.
public struct GuestAddress: Hashable, Comparable, Sendable, ExpressibleByIntegerLiteral, CustomStringConvertible {
  public var value: UInt64

  public init(_ value: UInt64) { self.value = value }
  public init(integerLiteral value: UInt64) { self.value = value }

  public static func < (lhs: GuestAddress, rhs: GuestAddress) -> Bool { lhs.value < rhs.value }

  /// The address `offset` bytes further on, or nil past the end of the 64-bit space.
  public func advanced(by offset: UInt64) -> GuestAddress? {
    let (sum, overflow) = value.addingReportingOverflow(offset)
    return overflow ? nil : GuestAddress(sum)
  }

  public var description: String { "0x" + String(value, radix: 16) }
}
