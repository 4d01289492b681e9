/// The PC's real-time clock and CMOS memory: a Motorola MC146818 at ports 0x70 (index, with
/// the NMI mask in bit 7) and 0x71 (data). Register names follow the MC146818 data sheet.
///
/// The clock reads the start time given at creation plus the virtual time advanced to (see
/// `TimedDevice`), so a guest sees the same dates on every run. Its interrupt output (IRQ 8)
/// goes to `interruptChanged` as its level changes: high when a flag enabled in register B is
/// set in register C, low when the guest reads register C.
public final class RTCCMOS: PlatformPortDevice, TimedDevice {
  public static let ports: ClosedRange<UInt16> = 0x70...0x71
  public static let interruptLine = 8
  /// The divider chain's 32.768 kHz time base, from which the periodic rates come.
  static let timeBase = TickClock(hertz: 32_768)
  /// UIP rises 244 us before an update and stays up for the update's 1984 us ("Update Cycle").
  static let updateWarning: UInt64 = 244_000
  static let updateDuration: UInt64 = 1_984_000

  public enum Index {
    public static let seconds: UInt8 = 0x00
    public static let secondsAlarm: UInt8 = 0x01
    public static let minutes: UInt8 = 0x02
    public static let minutesAlarm: UInt8 = 0x03
    public static let hours: UInt8 = 0x04
    public static let hoursAlarm: UInt8 = 0x05
    public static let dayOfWeek: UInt8 = 0x06
    public static let dayOfMonth: UInt8 = 0x07
    public static let month: UInt8 = 0x08
    public static let year: UInt8 = 0x09
    public static let statusA: UInt8 = 0x0a
    public static let statusB: UInt8 = 0x0b
    public static let statusC: UInt8 = 0x0c
    public static let statusD: UInt8 = 0x0d
    /// The IBM PC/AT's century byte, where QEMU and SeaBIOS keep it.
    public static let century: UInt8 = 0x32
  }

  enum B {
    static let set: UInt8 = 0x80
    static let periodicEnable: UInt8 = 0x40
    static let alarmEnable: UInt8 = 0x20
    static let updateEnable: UInt8 = 0x10
    static let binary: UInt8 = 0x04
    static let twentyFourHour: UInt8 = 0x02
  }

  enum C {
    static let interruptRequest: UInt8 = 0x80
    static let periodic: UInt8 = 0x40
    static let alarm: UInt8 = 0x20
    static let update: UInt8 = 0x10
  }

  /// Told IRQ 8's new level.
  public var interruptChanged: ((Bool) -> Void)?
  /// Port 0x70 bit 7: NMIs are masked while set. The platform consults it.
  public private(set) var nmiMasked = false
  public private(set) var index: UInt8 = 0
  /// The 128 bytes behind the data port; the clock registers (0x00-0x0d) and the century are
  /// computed from the time and kept out of it.
  public private(set) var memory = [UInt8](repeating: 0, count: 128)
  public private(set) var registerA: UInt8 = 0x26  // 32.768 kHz divider, 1024 Hz periodic rate
  public private(set) var registerB: UInt8 = B.twentyFourHour
  public private(set) var registerC: UInt8 = 0
  public private(set) var now: UInt64 = 0

  /// Seconds since 1970 at `epochNanoseconds` of virtual time; seconds tick every 1e9 ns after it.
  private var epochSeconds: Int64
  private var epochNanoseconds: UInt64 = 0
  /// The time while SET holds the clock.
  private var heldSeconds: Int64?
  private var alarmSecond: UInt8 = 0
  private var alarmMinute: UInt8 = 0
  private var alarmHour: UInt8 = 0
  private var interruptLevel = false

  /// - Parameters:
  ///   - start: the wall-clock time at virtual time 0.
  ///   - memoryBelow4G, memoryAbove4G: guest RAM in bytes, written to the memory-size bytes
  ///     as QEMU's pc_cmos_init does for SeaBIOS: 0x15-0x16 base memory in KiB (640),
  ///     0x17-0x18 and 0x30-0x31 KiB above 1 MiB (at most 65535), 0x34-0x35 64 KiB blocks
  ///     above 16 MiB below 4 GiB, 0x5b-0x5d 64 KiB blocks above 4 GiB; 0x5f the CPU count - 1.
  public init(start: CivilTime, memoryBelow4G: UInt64 = 0, memoryAbove4G: UInt64 = 0, cpuCount: Int = 1) {
    epochSeconds = start.secondsSinceEpoch
    memory[Int(Index.statusD)] = 0x80
    setWord(0x15, 640)
    let kibAbove1M = min(memoryBelow4G / 1024 &- 1024, 65_535)
    let extended = memoryBelow4G > 1 << 20 ? UInt16(kibAbove1M) : 0
    setWord(0x17, extended)
    setWord(0x30, extended)
    let above16M = memoryBelow4G > 16 << 20 ? UInt16(min((memoryBelow4G - (16 << 20)) >> 16, 65_535)) : 0
    setWord(0x34, above16M)
    let above4G = memoryAbove4G >> 16
    memory[0x5b] = UInt8(truncatingIfNeeded: above4G)
    memory[0x5c] = UInt8(truncatingIfNeeded: above4G >> 8)
    memory[0x5d] = UInt8(truncatingIfNeeded: above4G >> 16)
    memory[0x5f] = UInt8(truncatingIfNeeded: max(cpuCount, 1) - 1)
  }

  private func setWord(_ at: Int, _ value: UInt16) {
    memory[at] = UInt8(truncatingIfNeeded: value)
    memory[at + 1] = UInt8(truncatingIfNeeded: value >> 8)
  }

  // MARK: Time

  /// The clock's seconds since 1970 now.
  public var currentSeconds: Int64 {
    heldSeconds ?? epochSeconds + Int64((now - epochNanoseconds) / nanosecondsPerSecond)
  }

  public var currentTime: CivilTime { CivilTime(secondsSinceEpoch: currentSeconds) }

  /// Nanoseconds into the current second (the divider chain's phase).
  private var phase: UInt64 { (now - epochNanoseconds) % nanosecondsPerSecond }

  public func advance(to now: UInt64) {
    guard now > self.now else { return }
    let before = self.now
    self.now = now
    updateFlags(from: before)
  }

  /// Sets the flags for what happened in (from, now] and raises IRQ 8 if one is enabled.
  private func updateFlags(from: UInt64) {
    if let period = periodicTicks {
      let start = Self.timeBase.ticks(atNanoseconds: from) / period
      if Self.timeBase.ticks(atNanoseconds: now) / period > start { registerC |= C.periodic }
    }
    if heldSeconds == nil {
      let secondsBefore = epochSeconds + Int64((from - min(from, epochNanoseconds)) / nanosecondsPerSecond)
      let secondsNow = currentSeconds
      if secondsNow > secondsBefore {
        registerC |= C.update
        if alarmMatches(from: secondsBefore + 1, through: secondsNow) { registerC |= C.alarm }
      }
    }
    let enabled = registerB & (B.periodicEnable | B.alarmEnable | B.updateEnable)
    if registerC & enabled & 0x70 != 0 { registerC |= C.interruptRequest }
    setInterrupt(registerC & C.interruptRequest != 0)
  }

  private func setInterrupt(_ level: Bool) {
    guard level != interruptLevel else { return }
    interruptLevel = level
    interruptChanged?(level)
  }

  /// The periodic interrupt's period in 32.768 kHz ticks (register A rate bits, "Periodic
  /// Interrupt Rate" table): rates 1 and 2 are 256 and 128 Hz, rate r >= 3 is 65536 >> r Hz;
  /// 0 turns it off, as does a divider not in its normal 010 setting.
  private var periodicTicks: UInt64? {
    let rate = registerA & 0x0f
    guard rate != 0, registerA & 0x70 == 0x20 else { return nil }
    if rate <= 2 { return 64 << UInt64(rate) }
    return 1 << UInt64(rate - 1)
  }

  /// Whether the alarm bytes match any second in the range; a byte of 0xc0-0xff matches every
  /// value ("don't care"). A day or more matches whatever the alarm says.
  private func alarmMatches(from first: Int64, through last: Int64) -> Bool {
    guard last - first < 86_400 else { return true }
    var second = first
    while second <= last {
      let time = CivilTime(secondsSinceEpoch: second)
      if matches(alarmSecond, time.second) && matches(alarmMinute, time.minute)
        && matches(alarmHour, time.hour, isHour: true)
      {
        return true
      }
      second += 1
    }
    return false
  }

  private func matches(_ alarm: UInt8, _ value: Int, isHour: Bool = false) -> Bool {
    alarm >= 0xc0 || alarm == (isHour ? encodeHour(value) : encode(value))
  }

  public var nextDeadline: UInt64? {
    guard !interruptLevel else { return nil }  // IRQ 8 stays up until register C is read
    var deadline: UInt64?
    if registerB & B.periodicEnable != 0, let period = periodicTicks {
      let next = (Self.timeBase.ticks(atNanoseconds: now) / period + 1) * period
      deadline = Self.timeBase.nanoseconds(atTick: next)
    }
    if heldSeconds == nil && registerB & (B.updateEnable | B.alarmEnable) != 0 {
      // Updates and alarms happen on second boundaries; an alarm is checked at each.
      deadline = earliest(deadline, now - phase + nanosecondsPerSecond)
    }
    return deadline
  }

  // MARK: Ports

  public func read(port: UInt16, size: Int) -> UInt32 {
    guard port == 0x71 else { return 0xff }  // the index port is write-only
    return UInt32(readRegister(index))
  }

  public func write(port: UInt16, size: Int, value: UInt32) -> DeviceAction {
    let byte = UInt8(truncatingIfNeeded: value)
    switch port {
    case 0x70:
      index = byte & 0x7f
      nmiMasked = byte & 0x80 != 0
    case 0x71:
      writeRegister(index, byte)
    default:
      break
    }
    return .none
  }

  func readRegister(_ index: UInt8) -> UInt8 {
    let time = currentTime
    switch index {
    case Index.seconds: return encode(time.second)
    case Index.secondsAlarm: return alarmSecond
    case Index.minutes: return encode(time.minute)
    case Index.minutesAlarm: return alarmMinute
    case Index.hours: return encodeHour(time.hour)
    case Index.hoursAlarm: return alarmHour
    case Index.dayOfWeek: return encode(time.dayOfWeek)
    case Index.dayOfMonth: return encode(time.day)
    case Index.month: return encode(time.month)
    case Index.year: return encode(time.year % 100)
    case Index.century: return encode(time.year / 100 % 100)
    case Index.statusA:
      let inUpdate =
        heldSeconds == nil
        && (phase >= nanosecondsPerSecond - Self.updateWarning
          || (phase < Self.updateDuration && now >= epochNanoseconds + nanosecondsPerSecond))
      return registerA | (inUpdate ? 0x80 : 0)
    case Index.statusB: return registerB
    case Index.statusC:
      // Reading C clears every flag and drops IRQ 8.
      let flags = registerC
      registerC = 0
      setInterrupt(false)
      return flags
    case Index.statusD: return 0x80  // VRT: the battery is good
    default: return memory[Int(index & 0x7f)]
    }
  }

  func writeRegister(_ index: UInt8, _ value: UInt8) {
    switch index {
    case Index.seconds, Index.minutes, Index.hours, Index.dayOfMonth, Index.month, Index.year, Index.century:
      setTimeField(index, value)
    case Index.secondsAlarm: alarmSecond = value
    case Index.minutesAlarm: alarmMinute = value
    case Index.hoursAlarm: alarmHour = value
    case Index.dayOfWeek: break  // derived from the date here
    case Index.statusA:
      registerA = value & 0x7f  // UIP is read-only
    case Index.statusB:
      writeRegisterB(value)
    case Index.statusC, Index.statusD:
      break  // read-only
    default:
      memory[Int(index & 0x7f)] = value
    }
  }

  /// SET (bit 7) holds the clock so software can write it; clearing it lets it run on from
  /// what was written. Setting SET clears UIE ("Register B").
  private func writeRegisterB(_ value: UInt8) {
    var value = value
    if value & B.set != 0 {
      value &= ~B.updateEnable
      if heldSeconds == nil { heldSeconds = currentSeconds }
    } else if let held = heldSeconds {
      heldSeconds = nil
      epochSeconds = held
      epochNanoseconds = now
    }
    registerB = value
    updateFlags(from: now)  // a newly enabled flag that is already set raises IRQ 8
  }

  private func setTimeField(_ index: UInt8, _ raw: UInt8) {
    var time = currentTime
    switch index {
    case Index.seconds: time.second = min(decode(raw), 59)
    case Index.minutes: time.minute = min(decode(raw), 59)
    case Index.hours: time.hour = decodeHour(raw)
    case Index.dayOfMonth: time.day = max(1, min(decode(raw), 31))
    case Index.month: time.month = max(1, min(decode(raw), 12))
    case Index.year: time.year = time.year / 100 * 100 + min(decode(raw), 99)
    default: time.year = min(decode(raw), 99) * 100 + time.year % 100
    }
    let seconds = time.secondsSinceEpoch
    if heldSeconds != nil {
      heldSeconds = seconds
    } else {
      // Written while running: the clock goes on from the new time, in the same phase.
      epochSeconds = seconds
      epochNanoseconds = now - phase
    }
  }

  // MARK: Number formats (register B: DM and 24/12)

  private var isBinary: Bool { registerB & B.binary != 0 }

  private func encode(_ value: Int) -> UInt8 {
    isBinary ? UInt8(truncatingIfNeeded: value) : UInt8(truncatingIfNeeded: (value / 10) << 4 | value % 10)
  }

  private func decode(_ raw: UInt8) -> Int {
    isBinary ? Int(raw) : Int(raw >> 4) * 10 + Int(raw & 0x0f)
  }

  /// In 12-hour mode hours run 1-12 with bit 7 set for PM.
  private func encodeHour(_ hour: Int) -> UInt8 {
    guard registerB & B.twentyFourHour == 0 else { return encode(hour) }
    let twelve = hour % 12 == 0 ? 12 : hour % 12
    return encode(twelve) | (hour >= 12 ? 0x80 : 0)
  }

  private func decodeHour(_ raw: UInt8) -> Int {
    guard registerB & B.twentyFourHour == 0 else { return min(decode(raw), 23) }
    let twelve = min(decode(raw & 0x7f), 12) % 12
    return raw & 0x80 != 0 ? twelve + 12 : twelve
  }
}
