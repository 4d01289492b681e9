import KVM

/// A guest access to a port, MMIO address or MSR, seen before Hyperstep carries it out.
public enum GuestAccess: Sendable, Equatable {
  case portWrite(port: UInt16, size: Int, value: UInt32)
  case portRead(port: UInt16, size: Int)
  case mmioWrite(address: UInt64, size: Int, value: UInt64)
  case mmioRead(address: UInt64, size: Int)
  /// Only writes to MSRs trapped with `VirtualMachine.trapMSRWrites` reach user space.
  case msrWrite(index: UInt32, value: UInt64)
}

/// What to do with a watched access.
public enum AccessVerdict: Sendable, Equatable {
  /// Carry it out as usual.
  case perform
  /// Leave it undone: a write goes nowhere (an MSR keeps its value, without a #GP); a read
  /// returns `readValue` (truncated to the access size).
  case skip(readValue: UInt64)
}

/// Sees chosen guest accesses before the machine carries them out, on the thread of the vCPU
/// that made them (the event API's port, MMIO and MSR events).
public protocol AccessWatcher: Sendable {
  /// Whether this access is to be shown to `decide` (asked per access, so cheap).
  func watches(_ access: GuestAccess) -> Bool
  func decide(_ access: GuestAccess, on vcpu: any VirtualCPU) -> AccessVerdict
}
