/// The Intel 8254 programmable interval timer at ports 0x40-0x43, and the PC's port 0x61
/// bits that belong to it (channel 2's gate and OUT, the speaker enable, the refresh toggle).
///
/// Channel 0's OUT drives IRQ 0: `output0Changed` is told its level as it changes, and at
/// least one low-to-high transition for every advance in which a rising edge fell, so an
/// edge-triggered PIC or IOAPIC input latches the tick. Channel 1 (DRAM refresh) counts but
/// drives nothing; channel 2 feeds the speaker and is read back through port 0x61 bit 5,
/// which is how Linux calibrates its TSC.
///
/// Time comes from `advance(to:)` (see `TimedDevice`); the counters run at 1.193182 MHz of
/// virtual time and port accesses happen at the last time advanced to.
public final class PIT8254: PlatformPortDevice, TimedDevice {
  public static let ports: ClosedRange<UInt16> = 0x40...0x43
  public static let systemControlPort: ClosedRange<UInt16> = 0x61...0x61
  public static let portRanges = [ports, systemControlPort]
  /// The PC's PIT input clock: 14.31818 MHz / 12.
  public static let clock = TickClock(hertz: 1_193_182)
  /// Port 0x61 bit 4 toggles with every DRAM refresh request, every 15.085 us on a PC/AT.
  static let refreshPeriodNanoseconds: UInt64 = 15_085

  /// Told OUT0's new level (IRQ 0). Set by whoever wires the platform.
  public var output0Changed: ((Bool) -> Void)?

  var channels = [PIT8254Channel](repeating: PIT8254Channel(), count: 3)
  /// Port 0x61 bits 1-3 as last written (speaker data, parity and I/O check enables).
  var systemControl: UInt8 = 0
  public private(set) var now: UInt64 = 0
  /// The input clock's ticks at `now`.
  public internal(set) var tick: UInt64 = 0
  var reportedOutput0: Bool

  public init() {
    channels[2].gate = false  // port 0x61 bit 0 is clear at reset
    reportedOutput0 = channels[0].output(atTick: 0)
  }

  // MARK: Time

  public func advance(to now: UInt64) {
    guard now > self.now else { return }
    let newTick = Self.clock.ticks(atNanoseconds: now)
    var edges: UInt64 = 0
    var from = tick
    if let pending = channels[0].pendingReload, pending.at <= newTick {
      edges += channels[0].risingEdges(after: from, through: pending.at)
      from = pending.at
    }
    for index in channels.indices { channels[index].settle(atTick: newTick) }
    edges += channels[0].risingEdges(after: from, through: newTick)
    self.now = now
    tick = newTick
    reportOutput0(risingEdges: edges)
  }

  /// The next rising edge of OUT0, the only output that interrupts.
  public var nextDeadline: UInt64? {
    channels[0].nextRisingEdge(after: tick).map { Self.clock.nanoseconds(atTick: $0) }
  }

  /// Tells the IRQ 0 wiring what OUT0 did: a low-high pair for edges it missed, then the level.
  private func reportOutput0(risingEdges: UInt64) {
    let level = channels[0].output(atTick: tick)
    if risingEdges > 0 {
      if reportedOutput0 { output0Changed?(false) }
      output0Changed?(true)
      reportedOutput0 = true
    }
    if level != reportedOutput0 {
      output0Changed?(level)
      reportedOutput0 = level
    }
  }

  // MARK: Observers (for tests and the platform)

  /// OUT of `channel` (0-2) now.
  public func output(channel: Int) -> Bool { channels[channel].output(atTick: tick) }
  /// The counting element of `channel` now, in binary.
  public func count(channel: Int) -> UInt32 { channels[channel].counter(atTick: tick) }

  // MARK: Ports

  public func read(port: UInt16, size: Int) -> UInt32 {
    switch port {
    case 0x40...0x42:
      return UInt32(channels[Int(port - 0x40)].readByte(atTick: tick))
    case 0x61:
      return UInt32(readSystemControl())
    default:
      return 0xff  // the control word register (0x43) cannot be read
    }
  }

  public func write(port: UInt16, size: Int, value: UInt32) -> DeviceAction {
    let byte = UInt8(truncatingIfNeeded: value)
    switch port {
    case 0x40...0x42:
      channels[Int(port - 0x40)].writeByte(byte, atTick: tick)
    case 0x43:
      writeControl(byte)
    case 0x61:
      systemControl = byte & 0x0e
      channels[2].setGate(byte & 0x01 != 0, atTick: tick)
    default:
      break
    }
    reportOutput0(risingEdges: 0)
    return .none
  }

  /// Control word: SC1-0 select the counter (3: read-back), RW1-0 the access (0: latch the
  /// count), M2-0 the mode, and BCD ("Control Word Format").
  private func writeControl(_ byte: UInt8) {
    let select = Int(byte >> 6)
    let access = byte >> 4 & 3
    if select == 3 {
      readBack(byte)
    } else if access == 0 {
      channels[select].latchCount(atTick: tick)
    } else {
      channels[select].setControl(access: access, mode: byte >> 1 & 7, bcd: byte & 1 != 0)
    }
  }

  /// "Read-Back Command": bit 5 clear latches the count, bit 4 clear latches the status, of
  /// each counter whose bit (1-3) is set. A counter already latched keeps its first latch.
  private func readBack(_ byte: UInt8) {
    for index in 0..<3 where byte & (2 << UInt8(index)) != 0 {
      if byte & 0x20 == 0 { channels[index].latchCount(atTick: tick) }
      if byte & 0x10 == 0 { channels[index].latchStatus(atTick: tick) }
    }
  }

  /// Port 0x61 ("system control port B" of the PC/AT): bit 0 gate 2, bit 1 speaker data,
  /// bits 2-3 as written, bit 4 refresh toggle, bit 5 OUT2; no parity or I/O check errors.
  private func readSystemControl() -> UInt8 {
    var byte = systemControl
    if channels[2].gate { byte |= 0x01 }
    if now / Self.refreshPeriodNanoseconds & 1 != 0 { byte |= 0x10 }
    if channels[2].output(atTick: tick) { byte |= 0x20 }
    return byte
  }
}
