/// What a device asks of the machine after an access.
public enum DeviceAction: Equatable, Sendable {
  case none
  /// The guest wrote `value` to isa-debug-exit: end the run with status (value << 1) | 1.
  case debugExit(value: UInt32)
  /// Reset the machine (keyboard-controller reset, triple fault).
  case reset
  /// Power the machine off cleanly.
  case powerOff
  /// The guest wrote to Hyperstep's control port (see `ControlPort`).
  case guestRequest(value: UInt32)
}

/// A device on the x86 port-I/O bus. `offset` counts from the start of the device's port range.
public protocol PortDevice: AnyObject {
  func read(offset: UInt16, size: Int) -> UInt32
  func write(offset: UInt16, size: Int, value: UInt32) -> DeviceAction
}

/// A device on the memory-mapped I/O bus. `offset` counts from the start of its range.
public protocol MMIODevice: AnyObject {
  func read(offset: UInt64, size: Int) -> UInt64
  func write(offset: UInt64, size: Int, value: UInt64) -> DeviceAction
}

/// All-ones of `size` bytes: what a read from nothing returns on a PC bus.
@inline(__always)
public func floatingBus(size: Int) -> UInt64 {
  size >= 8 ? .max : (1 << (UInt64(size) * 8)) - 1
}
