/// A chip whose registers sit at several unrelated port ranges (the PIC pair at 0x20, 0xa0 and
/// 0x4d0; the PIT at 0x40 and 0x61). It sees absolute port numbers, so one object can answer
/// at every range; `IOBus.register(_:portRanges:)` maps each range to it through a `PortWindow`.
public protocol PlatformPortDevice: AnyObject {
  func read(port: UInt16, size: Int) -> UInt32
  func write(port: UInt16, size: Int, value: UInt32) -> DeviceAction
}

/// Adapts a `PlatformPortDevice` to the bus's range-relative offsets.
public final class PortWindow: PortDevice {
  public let base: UInt16
  public let device: any PlatformPortDevice

  public init(base: UInt16, device: any PlatformPortDevice) {
    self.base = base
    self.device = device
  }

  public func read(offset: UInt16, size: Int) -> UInt32 {
    device.read(port: base &+ offset, size: size)
  }

  public func write(offset: UInt16, size: Int, value: UInt32) -> DeviceAction {
    device.write(port: base &+ offset, size: size, value: value)
  }
}

extension IOBus {
  /// Registers one chip at each of its port ranges.
  public func register(
    _ device: any PlatformPortDevice, portRanges: [ClosedRange<UInt16>]
  ) throws(RegistrationError) {
    for range in portRanges {
      try register(PortWindow(base: range.lowerBound, device: device), ports: range)
    }
  }
}
