/// Why a guest-memory operation was refused.
public enum MemoryError: Error, Equatable, CustomStringConvertible {
  /// Some byte of [address, address+length) is not backed by guest RAM.
  case outOfRange(address: GuestAddress, length: UInt64)
  /// A memory layout that cannot be built (overlapping or empty regions).
  case invalidLayout(String)
  /// The host refused to provide the memory.
  case hostAllocationFailed(size: UInt64, reason: String)

  public var description: String {
    switch self {
    case .outOfRange(let address, let length):
      return "guest-physical range \(address)+0x\(String(length, radix: 16)) is outside guest RAM"
    case .invalidLayout(let reason):
      return "invalid guest memory layout: \(reason)"
    case .hostAllocationFailed(let size, let reason):
      return "could not reserve \(size >> 20) MiB of host memory for the guest: \(reason)"
    }
  }
}
