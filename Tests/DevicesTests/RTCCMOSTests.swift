import Testing

@testable import Devices

/// The MC146818 RTC and CMOS through ports 0x70/0x71. Register behaviour from the Motorola
/// MC146818 data sheet; expected dates checked against the Gregorian calendar (2026-11-30 is
/// a Monday, day-of-week 2 with Sunday = 1).
@Suite struct RTCCMOSTests {
  final class Line {
    var levels: [Bool] = []
  }

  static let start = CivilTime(year: 2026, month: 11, day: 30, hour: 23, minute: 59, second: 58)

  func makeRTC() -> (RTCCMOS, Line) {
    let rtc = RTCCMOS(start: Self.start)
    let line = Line()
    rtc.interruptChanged = { line.levels.append($0) }
    return (rtc, line)
  }

  func read(_ rtc: RTCCMOS, _ index: UInt8) -> UInt8 {
    _ = rtc.write(port: 0x70, size: 1, value: UInt32(index))
    return UInt8(truncatingIfNeeded: rtc.read(port: 0x71, size: 1))
  }

  func write(_ rtc: RTCCMOS, _ index: UInt8, _ value: UInt8) {
    _ = rtc.write(port: 0x70, size: 1, value: UInt32(index))
    _ = rtc.write(port: 0x71, size: 1, value: UInt32(value))
  }

  /// Seconds, minutes, hours, day of week, day, month, year, century: as Linux's
  /// mc146818_get_time reads them.
  func clock(_ rtc: RTCCMOS) -> [UInt8] {
    [0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x32].map { read(rtc, $0) }
  }

  @Test func readsTheStartTimeInBCDAndRollsOverMidnightAndTheMonth() {
    let (rtc, _) = makeRTC()
    #expect(read(rtc, 0x0a) & 0x80 == 0)  // no update in progress
    #expect(clock(rtc) == [0x58, 0x59, 0x23, 2, 0x30, 0x11, 0x26, 0x20])
    rtc.advance(to: 2_000_000_000)
    #expect(clock(rtc) == [0x00, 0x00, 0x00, 3, 0x01, 0x12, 0x26, 0x20])
  }

  @Test func updateInProgressSurroundsEachSecondBoundary() {
    // UIP rises 244 us before the update and falls when the 1984 us update cycle ends.
    let (rtc, _) = makeRTC()
    rtc.advance(to: 999_755_999)
    #expect(read(rtc, 0x0a) == 0x26)
    rtc.advance(to: 999_756_000)
    #expect(read(rtc, 0x0a) == 0xa6)
    rtc.advance(to: 1_001_983_999)
    #expect(read(rtc, 0x0a) & 0x80 == 0x80)
    rtc.advance(to: 1_001_984_000)
    #expect(read(rtc, 0x0a) & 0x80 == 0)
    #expect(read(rtc, 0x00) == 0x59)
  }

  @Test func binaryAndTwelveHourFormats() {
    let (rtc, _) = makeRTC()
    write(rtc, 0x0b, 0x04)  // binary, 12-hour
    #expect(read(rtc, 0x04) == 0x80 | 11)  // 23:00 is 11 PM
    #expect(read(rtc, 0x02) == 59)
    #expect(read(rtc, 0x32) == 20)
    rtc.advance(to: 2_000_000_000)
    #expect(read(rtc, 0x04) == 12)  // midnight is 12 AM
    write(rtc, 0x0b, 0x00)  // BCD, 12-hour
    #expect(read(rtc, 0x04) == 0x12)
  }

  @Test func setHoldsTheClockWhileSoftwareWritesIt() {
    let (rtc, _) = makeRTC()
    write(rtc, 0x0b, 0x82)  // SET, 24-hour, BCD
    write(rtc, 0x04, 0x12)
    write(rtc, 0x02, 0x34)
    write(rtc, 0x00, 0x56)
    write(rtc, 0x07, 0x15)
    write(rtc, 0x08, 0x06)
    write(rtc, 0x09, 0x99)
    write(rtc, 0x32, 0x19)
    rtc.advance(to: 5_000_000_000)  // held: no time passes
    #expect(clock(rtc) == [0x56, 0x34, 0x12, 3, 0x15, 0x06, 0x99, 0x19])  // 1999-06-15 was a Tuesday
    write(rtc, 0x0b, 0x02)
    rtc.advance(to: 6_000_000_000)
    #expect(read(rtc, 0x00) == 0x57)
  }

  @Test func periodicInterruptAt1024HzUntilRegisterCIsRead() {
    // Register A rate 6: 1024 Hz, every 32 ticks of 32.768 kHz (976562.5 ns).
    let (rtc, line) = makeRTC()
    write(rtc, 0x0b, 0x42)  // PIE
    #expect(rtc.nextDeadline == 976_563)
    rtc.advance(to: 976_562)
    #expect(line.levels.isEmpty)
    rtc.advance(to: 976_563)
    #expect(line.levels == [true])
    #expect(rtc.nextDeadline == nil)  // IRQ 8 stays up until C is read
    #expect(read(rtc, 0x0c) == 0xc0)  // IRQF and PF
    #expect(line.levels == [true, false])
    #expect(read(rtc, 0x0c) == 0x00)
    #expect(rtc.nextDeadline == 1_953_125)
  }

  @Test func updateEndedAndAlarmInterrupts() {
    let (rtc, line) = makeRTC()
    write(rtc, 0x01, 0x00)  // alarm at hh:00:00 for any hour
    write(rtc, 0x03, 0x00)
    write(rtc, 0x05, 0xff)
    write(rtc, 0x0b, 0x22)  // AIE only
    #expect(rtc.nextDeadline == 1_000_000_000)
    rtc.advance(to: 1_000_000_000)  // 23:59:59: UF but no alarm
    #expect(line.levels.isEmpty)
    rtc.advance(to: 2_000_000_000)  // 00:00:00
    #expect(line.levels == [true])
    // IRQF, AF, UF, and PF: flags are set whether or not enabled ("Register C").
    #expect(read(rtc, 0x0c) == 0xf0)
    write(rtc, 0x0b, 0x12)  // UIE
    rtc.advance(to: 3_000_000_000)
    #expect(read(rtc, 0x0c) == 0xd0)
    // Within a second no update happens; the periodic flag alone raises no interrupt.
    write(rtc, 0x0b, 0x02)
    rtc.advance(to: 3_500_000_000)
    #expect(read(rtc, 0x0c) == 0x40)
    #expect(line.levels == [true, false, true, false])
  }

  @Test func memorySizeBytesAsSeaBIOSReadsThem() {
    let rtc = RTCCMOS(start: Self.start, memoryBelow4G: 512 << 20, memoryAbove4G: 1 << 30, cpuCount: 2)
    let bytes = [0x15, 0x16, 0x17, 0x18, 0x30, 0x31, 0x34, 0x35, 0x5b, 0x5c, 0x5d, 0x5f].map { rtc.memory[$0] }
    // 640 KiB; 523264 KiB above 1 MiB capped at 65535; (512 - 16) MiB / 64 KiB = 7936;
    // 1 GiB / 64 KiB = 16384; two CPUs.
    #expect(bytes == [0x80, 0x02, 0xff, 0xff, 0xff, 0xff, 0x00, 0x1f, 0x00, 0x40, 0x00, 0x01])
    let small = RTCCMOS(start: Self.start, memoryBelow4G: 8 << 20)
    #expect(small.memory[0x17] == 0x00 && small.memory[0x18] == 0x1c)  // 7168 KiB
    #expect(small.memory[0x34] == 0 && small.memory[0x35] == 0)
  }

  @Test func cmosBytesNMIMaskAndOddAccesses() {
    let (rtc, _) = makeRTC()
    write(rtc, 0x40, 0xa5)
    #expect(read(rtc, 0x40) == 0xa5)
    _ = rtc.write(port: 0x70, size: 1, value: 0x8f)  // NMI masked, index 0x0f
    #expect(rtc.nmiMasked && rtc.index == 0x0f)
    _ = rtc.write(port: 0x70, size: 1, value: 0x0f)
    #expect(!rtc.nmiMasked)
    #expect(rtc.read(port: 0x70, size: 1) == 0xff)  // the index port is write-only
    write(rtc, 0x0d, 0x00)
    #expect(read(rtc, 0x0d) == 0x80)  // read-only, VRT set
    write(rtc, 0x0c, 0xff)
    #expect(read(rtc, 0x0c) == 0x00)
    write(rtc, 0x0a, 0xff)
    #expect(read(rtc, 0x0a) & 0x80 == 0)  // UIP cannot be written; divider off
    write(rtc, 0x0b, 0x82)
    write(rtc, 0x08, 0x99)  // nonsense month and hour: clamped, never a trap
    write(rtc, 0x04, 0xff)
    #expect(read(rtc, 0x08) == 0x12)
    rtc.advance(to: 10)
    rtc.advance(to: 5)
    #expect(rtc.now == 10)
  }

  @Test func civilTimeConversions() {
    #expect(CivilTime(year: 1970, month: 1, day: 1).daysSinceEpoch == 0)
    #expect(CivilTime(year: 2000, month: 2, day: 29).daysSinceEpoch == 11_016)
    #expect(CivilTime(year: 2100, month: 3, day: 1).daysSinceEpoch == 47_541)
    #expect(Self.start.secondsSinceEpoch == 1_796_083_198)
    #expect(CivilTime(secondsSinceEpoch: 1_796_083_198) == Self.start)
    #expect(
      CivilTime(secondsSinceEpoch: -1) == CivilTime(year: 1969, month: 12, day: 31, hour: 23, minute: 59, second: 59))
    #expect(CivilTime(year: 1970, month: 1, day: 1).dayOfWeek == 5)  // Thursday
    #expect(CivilTime(year: 2100, month: 3, day: 1).dayOfWeek == 2)  // Monday
  }
}
