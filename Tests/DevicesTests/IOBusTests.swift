import Testing

@testable import Devices

@Suite struct IOBusTests {
  final class Recorder: PortDevice, MMIODevice {
    var accesses: [String] = []
    func read(offset: UInt16, size: Int) -> UInt32 {
      accesses.append("in \(offset)/\(size)")
      return 0x1234
    }
    func write(offset: UInt16, size: Int, value: UInt32) -> DeviceAction {
      accesses.append("out \(offset)/\(size)=\(value)")
      return .none
    }
    func read(offset: UInt64, size: Int) -> UInt64 {
      accesses.append("load \(offset)/\(size)")
      return 0xabcd
    }
    func write(offset: UInt64, size: Int, value: UInt64) -> DeviceAction {
      accesses.append("store \(offset)/\(size)=\(value)")
      return .powerOff
    }
  }

  @Test func portAccessesReachTheClaimingDeviceWithRelativeOffsets() {
    let bus = IOBus()
    let device = Recorder()
    try! bus.register(device, ports: 0x100...0x107)
    #expect(bus.portRead(0x103, size: 2) == 0x1234)
    #expect(bus.portWrite(0x107, size: 1, value: 9) == .none)
    #expect(device.accesses == ["in 3/2", "out 7/1=9"])
  }

  @Test func unclaimedPortsReadAllOnesAndIgnoreWrites() {
    let bus = IOBus()
    #expect(bus.portRead(0x2f0, size: 1) == 0xff)
    #expect(bus.portRead(0x2f0, size: 2) == 0xffff)
    #expect(bus.portRead(0x2f0, size: 4) == 0xffff_ffff)
    #expect(bus.portWrite(0x2f0, size: 1, value: 1) == .none)
  }

  @Test func mmioDispatchAndFloatingBus() {
    let bus = IOBus()
    let device = Recorder()
    try! bus.register(device, addresses: 0xfed0_0000...0xfed0_0fff)
    #expect(bus.mmioRead(0xfed0_0010, size: 4) == 0xabcd)
    #expect(bus.mmioWrite(0xfed0_0ff8, size: 8, value: 5) == .powerOff)
    #expect(device.accesses == ["load 16/4", "store 4088/8=5"])
    #expect(bus.mmioRead(0xd000_0000, size: 8) == .max)
    #expect(bus.mmioRead(0xd000_0000, size: 1) == 0xff)
    #expect(bus.mmioWrite(0xd000_0000, size: 4, value: 1) == .none)
  }

  @Test func overlappingRegistrationsAreRefused() {
    let bus = IOBus()
    try! bus.register(Recorder(), ports: 0x3f8...0x3ff)
    #expect(throws: IOBus.RegistrationError.self) { try bus.register(Recorder(), ports: 0x3ff...0x400) }
    try! bus.register(Recorder(), addresses: 0x1000...0x1fff)
    #expect(throws: IOBus.RegistrationError.self) { try bus.register(Recorder(), addresses: 0x1800...0x2800) }
  }

  @Test func debugExitStatusIsValueShiftedOrOne() {
    // QEMU's isa-debug-exit: exit((val << 1) | 1), seen by the shell as 8 bits.
    #expect(DebugExitPort.status(forValue: 0) == 1)
    #expect(DebugExitPort.status(forValue: 0x10) == 33)
    #expect(DebugExitPort.status(forValue: 0x7f) == 255)
    #expect(DebugExitPort.status(forValue: 0x80) == 1)
    #expect(DebugExitPort().write(offset: 0, size: 1, value: 3) == .debugExit(value: 3))
  }
}
