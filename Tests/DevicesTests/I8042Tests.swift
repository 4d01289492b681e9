import Testing

@testable import Devices

/// The keyboard controller as Linux's i8042.c probes it (i8042_controller_check,
/// i8042_controller_selftest, i8042_kbd_get_id) and as its reboot path uses it.
@Suite struct I8042Tests {
  final class Interrupts {
    var lines: [Int] = []
  }

  func makeController() -> (I8042, Interrupts) {
    let controller = I8042()
    let interrupts = Interrupts()
    controller.interrupt = { interrupts.lines.append($0) }
    return (controller, interrupts)
  }

  func status(_ c: I8042) -> UInt8 { UInt8(truncatingIfNeeded: c.read(port: 0x64, size: 1)) }
  func data(_ c: I8042) -> UInt8 { UInt8(truncatingIfNeeded: c.read(port: 0x60, size: 1)) }

  @Test func selfTestsAnswerAsLinuxExpects() {
    let (c, _) = makeController()
    #expect(status(c) & 0x01 == 0)  // nothing to read: i8042_flush finishes at once
    #expect(c.write(port: 0x64, size: 1, value: 0xaa) == .none)
    #expect(status(c) & 0x01 == 0x01)
    #expect(data(c) == 0x55)
    _ = c.write(port: 0x64, size: 1, value: 0xab)
    #expect(data(c) == 0x00)
    _ = c.write(port: 0x64, size: 1, value: 0xa9)
    #expect(data(c) == 0x00)
    #expect(status(c) & 0x0d == 0x0c)  // empty, system flag, last write was a command
  }

  @Test func commandByteReadsAndWritesThroughPort60() {
    let (c, interrupts) = makeController()
    _ = c.write(port: 0x64, size: 1, value: 0x20)
    #expect(data(c) == 0x47)
    _ = c.write(port: 0x64, size: 1, value: 0x60)
    _ = c.write(port: 0x60, size: 1, value: 0x44)  // interrupts off
    _ = c.write(port: 0x64, size: 1, value: 0x20)
    #expect(data(c) == 0x44)
    #expect(interrupts.lines == [1])  // only the first reply, while IRQ 1 was enabled
    _ = c.write(port: 0x64, size: 1, value: 0xad)  // disable keyboard
    _ = c.write(port: 0x64, size: 1, value: 0x20)
    #expect(data(c) == 0x54)
  }

  @Test func keyboardCommandsAreAcknowledged() {
    let (c, interrupts) = makeController()
    _ = c.write(port: 0x60, size: 1, value: 0xf2)  // identify
    #expect([data(c), data(c), data(c)] == [0xfa, 0xab, 0x83])
    #expect(interrupts.lines == [1, 1, 1])  // one per byte made readable
    _ = c.write(port: 0x60, size: 1, value: 0xed)  // LEDs, then their parameter
    _ = c.write(port: 0x60, size: 1, value: 0x07)
    #expect([data(c), data(c)] == [0xfa, 0xfa])
    _ = c.write(port: 0x60, size: 1, value: 0xff)
    #expect([data(c), data(c)] == [0xfa, 0xaa])
    #expect(data(c) == 0xaa)  // an empty buffer repeats the last byte
  }

  @Test func mouseLoopbackSetsTheAuxiliaryFlag() {
    let (c, interrupts) = makeController()
    _ = c.write(port: 0x64, size: 1, value: 0xd3)
    _ = c.write(port: 0x60, size: 1, value: 0x5a)
    #expect(status(c) & 0x21 == 0x21)
    #expect(data(c) == 0x5a)
    #expect(interrupts.lines == [12])
    _ = c.write(port: 0x64, size: 1, value: 0xd4)  // to the absent mouse
    _ = c.write(port: 0x60, size: 1, value: 0xf2)
    #expect(status(c) & 0x01 == 0)
  }

  @Test func pulsingTheResetLineResetsTheMachine() {
    let (c, _) = makeController()
    #expect(c.write(port: 0x64, size: 1, value: 0xfe) == .reset)
    #expect(c.write(port: 0x64, size: 1, value: 0xff) == .none)  // pulses nothing
    _ = c.write(port: 0x64, size: 1, value: 0xd0)
    #expect(data(c) == 0x03)  // reset line high, A20 enabled
    _ = c.write(port: 0x64, size: 1, value: 0xd1)
    #expect(c.write(port: 0x60, size: 1, value: 0x02) == .reset)  // output port with bit 0 low
  }

  @Test func oddAccessesNeverTrap() {
    let (c, _) = makeController()
    #expect(c.read(port: 0x61, size: 1) == 0xff)
    #expect(c.write(port: 0x65, size: 1, value: 0) == .none)
    #expect(c.write(port: 0x64, size: 1, value: 0x12) == .none)  // unknown command
    _ = c.write(port: 0x64, size: 1, value: 0x60)
    _ = c.write(port: 0x64, size: 1, value: 0xaa)  // a command replaces the pending one
    #expect(data(c) == 0x55)
    let bus = IOBus()
    try! bus.register(c, portRanges: I8042.portRanges)
    try! bus.register(PIT8254(), portRanges: PIT8254.portRanges)  // 0x61 sits between them
    #expect(bus.portWrite(0x64, size: 1, value: 0xfe) == .reset)
  }
}
