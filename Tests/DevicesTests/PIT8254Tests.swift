import Testing

@testable import Devices

/// The 8254 driven through its ports over virtual time. Section names are those of the Intel
/// 8254 data sheet (231164). One tick of the 1.193182 MHz clock is 838.1 ns; the first tick at
/// which t ticks have elapsed is ceil(t * 1e9 / 1193182) ns (e.g. 1194 ticks: 1_000_686 ns).
@Suite struct PIT8254Tests {
  final class Line {
    var levels: [Bool] = []
  }

  func makePIT() -> (PIT8254, Line) {
    let pit = PIT8254()
    let line = Line()
    pit.output0Changed = { line.levels.append($0) }
    return (pit, line)
  }

  func write(_ pit: PIT8254, _ port: UInt16, _ value: UInt8) {
    #expect(pit.write(port: port, size: 1, value: UInt32(value)) == .none)
  }

  func read(_ pit: PIT8254, _ port: UInt16) -> UInt8 {
    UInt8(truncatingIfNeeded: pit.read(port: port, size: 1))
  }

  @Test func timerGuestRateGeneratorTicksEvery1193Clocks() {
    // Guests/tests/timer.S: control word 0x34 (counter 0, LSB then MSB, mode 2), count 1193.
    // "Mode 2": the count loads on the CLK after the write (tick 1) and OUT pulses low when the
    // counter reaches 1, rising again as N reloads: rising edges at ticks 1 + 1193 m.
    let (pit, line) = makePIT()
    write(pit, 0x43, 0x34)
    write(pit, 0x40, 0xa9)
    write(pit, 0x40, 0x04)
    #expect(pit.output(channel: 0))
    #expect(pit.nextDeadline == 1_000_686)  // tick 1194
    pit.advance(to: 1_000_685)
    // High from the control word; low for the clock at which the counter holds 1 (tick 1193).
    #expect(line.levels == [true, false])
    let before = line.levels.count
    pit.advance(to: 1_000_686)
    #expect(Array(line.levels[before...]).last == true)
    #expect(line.levels[before...].contains(true))
    #expect(pit.nextDeadline == 2_000_534)  // tick 2387: periodic
    // Count after 500 ticks of counting (tick 501): 1193 - 500.
    let (pit2, _) = makePIT()
    write(pit2, 0x43, 0x34)
    write(pit2, 0x40, 0xa9)
    write(pit2, 0x40, 0x04)
    pit2.advance(to: 419_886)
    write(pit2, 0x43, 0x00)  // counter latch command, counter 0
    pit2.advance(to: 900_000)  // the latch holds while the counter runs on
    #expect(read(pit2, 0x40) == UInt8(693 & 0xff))
    #expect(read(pit2, 0x40) == UInt8(693 >> 8))
  }

  @Test func everyMissedPeriodStillGivesTheIRQLineAnEdge() {
    let (pit, line) = makePIT()
    write(pit, 0x43, 0x34)
    write(pit, 0x40, 100)
    write(pit, 0x40, 0)
    line.levels = []
    pit.advance(to: 10_000_000)  // many periods in one step: one low-high pair reported
    #expect(line.levels == [false, true])
    pit.advance(to: 10_000_000)  // not later: nothing
    #expect(line.levels == [false, true])
  }

  @Test func linuxPITCalibrationWaitsForOUT2ThroughPort61() {
    // arch/x86/kernel/tsc.c pit_calibrate_tsc: gate 2 on and speaker off through port 0x61,
    // counter 2 in mode 0 (0xb0) with 1193182 / 20 = 59659, then poll port 0x61 bit 5.
    let (pit, _) = makePIT()
    write(pit, 0x61, (read(pit, 0x61) & ~0x02) | 0x01)
    write(pit, 0x43, 0xb0)
    write(pit, 0x42, UInt8(59659 & 0xff))
    write(pit, 0x42, UInt8(59659 >> 8))
    #expect(read(pit, 0x61) & 0x21 == 0x01)  // gate on, OUT2 low ("Mode 0": low until terminal count)
    pit.advance(to: 50_000_754)  // tick 59659: the count is 0 only at tick 1 + 59659
    #expect(read(pit, 0x61) & 0x20 == 0)
    pit.advance(to: 50_000_755)
    #expect(read(pit, 0x61) & 0x20 == 0x20)
    #expect(pit.nextDeadline == nil)  // channel 0 was never programmed
  }

  @Test func linuxQuickCalibrationReadsTheFallingMSB() {
    // tsc.c quick_pit_calibrate: counter 2, mode 0, count 0xffff, then reads LSB and MSB of
    // the live count and waits for the MSB to step down.
    let (pit, _) = makePIT()
    write(pit, 0x61, (read(pit, 0x61) & ~0x02) | 0x01)
    write(pit, 0x43, 0xb0)
    write(pit, 0x42, 0xff)
    write(pit, 0x42, 0xff)
    pit.advance(to: 839)  // tick 1: loaded
    #expect(read(pit, 0x42) == 0xff)
    #expect(read(pit, 0x42) == 0xff)
    pit.advance(to: 215_391)  // tick 257: 256 clocks counted, 0xffff - 256 = 0xfeff
    #expect(read(pit, 0x42) == 0xff)
    #expect(read(pit, 0x42) == 0xfe)
  }

  @Test func gateLowSuspendsMode0AndHighResumes() {
    let (pit, _) = makePIT()
    write(pit, 0x61, 0x01)
    write(pit, 0x43, 0xb0)
    write(pit, 0x42, 100)
    write(pit, 0x42, 0)
    pit.advance(to: 8_381)  // tick 10: 9 clocks counted
    #expect(pit.count(channel: 2) == 91)
    write(pit, 0x61, 0x00)  // gate off
    pit.advance(to: 83_810)  // tick 100: nothing counted meanwhile
    #expect(pit.count(channel: 2) == 91)
    write(pit, 0x61, 0x01)
    pit.advance(to: 92_191)  // tick 110
    #expect(pit.count(channel: 2) == 81)
  }

  @Test func linuxOneShotMode0ReArmsWithEachCount() {
    // Linux's i8253 clockevent in one-shot mode: control word 0x30 once, then every event
    // writes LSB and MSB. OUT0 is low until the count expires, so each expiry is one edge.
    let (pit, line) = makePIT()
    write(pit, 0x43, 0x30)
    #expect(!pit.output(channel: 0))
    write(pit, 0x40, 10)
    write(pit, 0x40, 0)
    #expect(pit.nextDeadline == 9_220)  // tick 11 = 1 + 10
    pit.advance(to: 9_220)
    #expect(line.levels.last == true)
    #expect(pit.nextDeadline == nil)  // one shot: counts on (wrapping) with OUT high
    pit.advance(to: 20_000)  // tick 23
    write(pit, 0x40, 5)  // first byte: counting stops and OUT goes low
    #expect(line.levels.last == false)
    write(pit, 0x40, 0)
    #expect(pit.nextDeadline == PIT8254.clock.nanoseconds(atTick: 23 + 1 + 5))
  }

  @Test func readBackLatchesStatusThenCount() {
    // "Read-Back Command" 0xc2: count and status of counter 0. "Status Byte": OUT, NULL
    // COUNT, RW, mode, BCD.
    let (pit, _) = makePIT()
    write(pit, 0x43, 0x34)
    write(pit, 0x40, 0x00)
    write(pit, 0x40, 0x10)  // 4096
    write(pit, 0x43, 0xe2)  // status only, before the load clock: NULL COUNT set
    #expect(read(pit, 0x40) == 0xf4)
    pit.advance(to: 8_381)  // tick 10: 9 clocks counted
    write(pit, 0x43, 0xc2)
    pit.advance(to: 838_096)  // the latches hold
    #expect(read(pit, 0x40) == 0xb4)  // OUT high, loaded, LSB/MSB, mode 2, binary
    #expect(read(pit, 0x40) == UInt8((4096 - 9) & 0xff))
    #expect(read(pit, 0x40) == UInt8((4096 - 9) >> 8))
    // A second latch command before reading keeps the first latched value.
    write(pit, 0x43, 0x00)
    pit.advance(to: 900_000)
    write(pit, 0x43, 0x00)
    let low = read(pit, 0x40)
    let high = read(pit, 0x40)
    let latched = UInt16(high) << 8 | UInt16(low)
    #expect(latched == UInt16(4096 - (999 % 4096)))  // tick 1000 = 838_096 ns: 999 counted
  }

  @Test func squareWaveIsHighForHalfThePeriod() {
    // "Mode 3" with N = 4: OUT high for 2 clocks, low for 2.
    let (pit, line) = makePIT()
    write(pit, 0x43, 0x16)  // counter 0, LSB only, mode 3
    write(pit, 0x40, 4)
    line.levels = []
    let outputs = (1...9).map { tick -> Bool in
      pit.advance(to: PIT8254.clock.nanoseconds(atTick: UInt64(tick)))
      return pit.output(channel: 0)
    }
    #expect(outputs == [true, true, false, false, true, true, false, false, true])
    #expect(line.levels.filter { $0 }.count == 2)  // rising edges at ticks 5 and 9
  }

  @Test func mode2GateLowStopsAndTheRisingEdgeReloads() {
    let (pit, _) = makePIT()
    write(pit, 0x43, 0xb4)  // counter 2, mode 2
    write(pit, 0x42, 50)
    write(pit, 0x42, 0)
    pit.advance(to: 100_000)
    #expect(pit.count(channel: 2) == 50)  // gate low since reset: waiting
    write(pit, 0x61, 0x01)  // gate up at tick 119: loads on tick 120
    pit.advance(to: PIT8254.clock.nanoseconds(atTick: 130))
    #expect(pit.count(channel: 2) == 40)
    write(pit, 0x61, 0x00)
    #expect(pit.output(channel: 2))
  }

  @Test func hardwareOneShotWaitsForAGateTrigger() {
    // "Mode 1": OUT high until a rising gate edge, then low for N clocks.
    let (pit, _) = makePIT()
    write(pit, 0x43, 0xb2)  // counter 2, mode 1
    write(pit, 0x42, 3)
    write(pit, 0x42, 0)
    pit.advance(to: 10_000)
    #expect(read(pit, 0x61) & 0x20 == 0x20)
    write(pit, 0x61, 0x01)  // trigger at tick 11; counts from tick 12
    pit.advance(to: PIT8254.clock.nanoseconds(atTick: 12))
    #expect(read(pit, 0x61) & 0x20 == 0)
    // "Mode 1": a count written during the pulse leaves it alone until the next trigger.
    write(pit, 0x42, 10)
    write(pit, 0x42, 0)
    pit.advance(to: PIT8254.clock.nanoseconds(atTick: 15))
    #expect(read(pit, 0x61) & 0x20 == 0x20)  // ended after the old 3 clocks
    write(pit, 0x61, 0x00)
    write(pit, 0x61, 0x01)  // retrigger at tick 15: 10 clocks from tick 16
    pit.advance(to: PIT8254.clock.nanoseconds(atTick: 25))
    #expect(read(pit, 0x61) & 0x20 == 0)
    pit.advance(to: PIT8254.clock.nanoseconds(atTick: 26))
    #expect(read(pit, 0x61) & 0x20 == 0x20)
  }

  @Test func softwareStrobePulsesLowForOneClock() {
    // "Mode 4": OUT high, low for one clock when the count reaches 0 (tick 1 + N).
    let (pit, line) = makePIT()
    write(pit, 0x43, 0x18)  // counter 0, LSB, mode 4
    write(pit, 0x40, 3)
    pit.advance(to: PIT8254.clock.nanoseconds(atTick: 4))
    #expect(!pit.output(channel: 0))
    #expect(pit.nextDeadline == PIT8254.clock.nanoseconds(atTick: 5))
    pit.advance(to: PIT8254.clock.nanoseconds(atTick: 5))
    #expect(pit.output(channel: 0))
    #expect(line.levels == [true, false, true])  // the control word sets OUT high in mode 4
  }

  @Test func bcdCountsInDecimalDigits() {
    let (pit, _) = makePIT()
    write(pit, 0x43, 0x31)  // counter 0, LSB/MSB, mode 0, BCD
    write(pit, 0x40, 0x00)
    write(pit, 0x40, 0x10)  // 1000 decimal
    pit.advance(to: PIT8254.clock.nanoseconds(atTick: 1 + 1))
    #expect(read(pit, 0x40) == 0x99)  // 999
    #expect(read(pit, 0x40) == 0x09)
  }

  @Test func msbOnlyAccessAndZeroMeansTheFullCount() {
    let (pit, _) = makePIT()
    write(pit, 0x43, 0x24)  // counter 0, MSB only, mode 2
    write(pit, 0x40, 0x12)
    pit.advance(to: PIT8254.clock.nanoseconds(atTick: 1))
    #expect(pit.count(channel: 0) == 0x1200)
    write(pit, 0x43, 0x14)  // LSB only, mode 2, count 0 = 65536
    write(pit, 0x40, 0)
    #expect(pit.nextDeadline == PIT8254.clock.nanoseconds(atTick: 1 + 1 + 0x1_0000))  // written at tick 1
  }

  @Test func oddAccessesNeverTrap() {
    let (pit, _) = makePIT()
    #expect(read(pit, 0x43) == 0xff)  // the control word register is write-only
    #expect(read(pit, 0x40) == 0)  // never programmed
    write(pit, 0x43, 0x3e)  // mode 7 is mode 3
    #expect(pit.channels[0].mode == 3)
    write(pit, 0x43, 0xfe)  // read-back with no counter selected
    write(pit, 0x40, 1)  // count 1 in a periodic mode (illegal): counts as 2
    write(pit, 0x40, 0)
    #expect(pit.nextDeadline == PIT8254.clock.nanoseconds(atTick: 3))
    pit.advance(to: 5_000)
    pit.advance(to: 1_000)  // time never goes back
    #expect(pit.now == 5_000)
    write(pit, 0x43, 0x30)  // control word between the two count bytes resets the flip-flop
    write(pit, 0x40, 0x34)
    write(pit, 0x43, 0x30)
    write(pit, 0x40, 0x10)
    write(pit, 0x40, 0x00)
    #expect(pit.count(channel: 0) == 0x10)
  }

  @Test func tickAndInstructionClocksConvertBothWays() {
    let clock = PIT8254.clock
    #expect(clock.ticks(atNanoseconds: 1_000_000_000) == 1_193_182)
    #expect(clock.nanoseconds(atTick: 1_193_182) == 1_000_000_000)
    #expect(clock.ticks(atNanoseconds: 1_000_686) == 1194 && clock.ticks(atNanoseconds: 1_000_685) == 1193)
    #expect(clock.ticks(atNanoseconds: .max) == 22_010_322_987_356_910)  // no overflow on the way
    #expect(clock.nanoseconds(atTick: .max) == .max)
    let cpu = InstructionClock(instructionsPerSecond: 2_000_000_000)
    #expect(cpu.nanoseconds(afterRetiring: 3) == 1)
    #expect(cpu.instructions(untilNanoseconds: 1_000_686) == 2_001_372)
  }
}
