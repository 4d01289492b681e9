/// QEMU's `isa-debug-exit`: a guest write of value v ends the run with exit status (v << 1) | 1.
///
/// Test kernels use it to report pass or fail without a shutdown path. The status is always
/// odd, so it never collides with a clean halt (0).
public final class DebugExitPort: PortDevice {
  /// The port QEMU users conventionally give it (`-device isa-debug-exit,iobase=0xf4`).
  public static let defaultPort: UInt16 = 0xf4

  public init() {}

  public func read(offset: UInt16, size: Int) -> UInt32 {
    UInt32(truncatingIfNeeded: floatingBus(size: size))
  }

  public func write(offset: UInt16, size: Int, value: UInt32) -> DeviceAction {
    .debugExit(value: value)
  }

  /// The process exit status for a written value, as the shell sees it (8 bits).
  public static func status(forValue value: UInt32) -> Int32 {
    Int32(truncatingIfNeeded: ((UInt64(value) << 1) | 1) & 0xff)
  }
}
