/// Hyperstep's guest-request port, in the spirit of Xen's vm_event guest requests: a guest
/// write of a 32-bit value v is reported to whoever debugs or traces the machine.
///
/// Values with a meaning of their own:
/// - 1 (`startStepping`): start single-stepping here; the trace begins at the next instruction.
/// - 0 (`stopStepping`): stop single-stepping and run on at full speed.
/// Any other value is passed on as a plain request. A plain `hyperstep run` ignores them all.
public final class ControlPort: PortDevice {
  public static let port: UInt16 = 0x0600
  public static let startStepping: UInt32 = 1
  public static let stopStepping: UInt32 = 0

  public init() {}

  public func read(offset: UInt16, size: Int) -> UInt32 {
    0x4853_5450 & UInt32(truncatingIfNeeded: floatingBus(size: size))  // "HSTP": says Hyperstep is here
  }

  public func write(offset: UInt16, size: Int, value: UInt32) -> DeviceAction {
    .guestRequest(value: value)
  }
}
