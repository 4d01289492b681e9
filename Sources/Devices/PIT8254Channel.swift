/// One counter of the 8254, in ticks of its 1.193182 MHz input clock. Section names are those
/// of the Intel 8254 data sheet (231164): "Mode 0" ... "Mode 5", "Counter Latch Command",
/// "Read-Back Command", "Status Byte".
///
/// The counter is evaluated lazily: from the tick at which the count was loaded (`start`,
/// k = 0) the counting element's value and OUT at any later tick follow from the mode, so no
/// work is done per tick. Gate changes and writes happen only at guest accesses, between
/// which the state is constant.
struct PIT8254Channel: Sendable {
  var mode: UInt8 = 0
  /// RW bits of the control word: 1 LSB only, 2 MSB only, 3 LSB then MSB.
  var access: UInt8 = 3
  var bcd = false
  /// The count N in binary, 1...modulus (a written 0 means the modulus: 65536 or 10000).
  var reload: UInt32 = 0x1_0000
  /// A count is loaded and, in modes 1 and 5, a gate trigger started it.
  var armed = false
  /// A complete count has been written since the control word (modes 1 and 5 wait for a trigger).
  var countWritten = false
  /// The tick at which the counting element holds N (the CLK pulse after the write or trigger).
  var start: UInt64 = 0
  /// Modes 0 and 4: the elapsed ticks held while the gate is low.
  var frozen: UInt64?
  var gate = true
  /// Modes 2 and 3: a count written while counting takes effect at the end of the period.
  var pendingReload: (count: UInt32, at: UInt64)?
  /// Modes 1 and 5: a count written during a pulse waits for the next trigger.
  var countForNextTrigger: UInt32?
  /// LSB-then-MSB writes: the low byte waiting for its high byte.
  var lowByte: UInt8?
  var readHighNext = false
  var latchedCount: UInt16?
  var latchedStatus: UInt8?

  var modulus: UInt32 { bcd ? 10_000 : 0x1_0000 }
  var isPeriodic: Bool { mode == 2 || mode == 3 }

  /// Ticks since the count was loaded, or nil before that (or when not armed).
  func elapsed(atTick tick: UInt64) -> UInt64? {
    guard armed else { return nil }
    if let frozen { return frozen }
    return tick >= start ? tick - start : nil
  }

  /// The counting element at `tick`, in binary.
  func counter(atTick tick: UInt64) -> UInt32 {
    let n = reload
    guard let k = elapsed(atTick: tick) else { return n % modulus }
    switch mode {
    case 2:
      return (n - UInt32(k % UInt64(n))) % modulus
    case 3:
      // Decrements by two; the high half lasts (N+1)/2 clocks, the low half N/2.
      let p = UInt32(k % UInt64(n))
      let highHalf = (n + 1) / 2
      let value = p < highHalf ? n - 2 * p : (n & ~1) - 2 * (p - highHalf)
      return value % modulus
    default:
      // Modes 0, 1, 4, 5 count down and wrap through zero (to FFFF, or 9999 in BCD).
      let m = UInt64(modulus)
      return UInt32((UInt64(n) + m - k % m) % m)
    }
  }

  /// The OUT pin at `tick`.
  func output(atTick tick: UInt64) -> Bool {
    let n = UInt64(reload)
    switch mode {
    case 0:  // low from the control word until terminal count
      guard let k = elapsed(atTick: tick) else { return false }
      return k >= n
    case 1:  // high until triggered, low until terminal count
      guard let k = elapsed(atTick: tick) else { return true }
      return k >= n
    case 2:  // high, low for one clock when the counter reaches 1
      guard let k = elapsed(atTick: tick) else { return true }
      return k % n != n - 1
    case 3:  // square wave: high for (N+1)/2 clocks, low for N/2
      guard let k = elapsed(atTick: tick) else { return true }
      return k % n < (n + 1) / 2
    default:  // 4 and 5: high, low for one clock at terminal count
      guard let k = elapsed(atTick: tick) else { return true }
      return k != n
    }
  }

  /// The rising edges of OUT in (from, to]: what an edge-triggered IRQ input sees.
  func risingEdges(after from: UInt64, through to: UInt64) -> UInt64 {
    guard armed, frozen == nil, to > from else { return 0 }
    let n = UInt64(reload)
    switch mode {
    case 2, 3:
      // Rising edges at start + m*N for m >= 1.
      func periods(_ t: UInt64) -> UInt64 { t >= start ? (t - start) / n : 0 }
      return periods(to) - periods(from)
    case 0, 1:
      let edge = start + n
      return from < edge && edge <= to ? 1 : 0
    default:
      let edge = start + n + 1
      return from < edge && edge <= to ? 1 : 0
    }
  }

  /// The first rising edge of OUT after `tick`, or nil when none will come on its own.
  func nextRisingEdge(after tick: UInt64) -> UInt64? {
    guard armed, frozen == nil else { return nil }
    let n = UInt64(reload)
    switch mode {
    case 2, 3:
      let periods = tick >= start ? (tick - start) / n + 1 : 1
      return start + periods * n
    case 0, 1:
      return start + n > tick ? start + n : nil
    default:
      return start + n + 1 > tick ? start + n + 1 : nil
    }
  }

  /// Applies a mode 2/3 reload that fell due by `tick`.
  mutating func settle(atTick tick: UInt64) {
    if let pending = pendingReload, tick >= pending.at {
      reload = pending.count
      start = pending.at
      pendingReload = nil
    }
  }

  // MARK: Programming

  /// A control word for this counter (not a latch command): resets the mode, the byte
  /// flip-flops and the latches; OUT goes low in mode 0 and high in the others.
  mutating func setControl(access: UInt8, mode: UInt8, bcd: Bool) {
    self.access = access
    self.mode = mode > 5 ? mode & 3 : mode  // modes 6 and 7 are 2 and 3 ("X" bit)
    self.bcd = bcd
    armed = false
    countWritten = false
    frozen = nil
    pendingReload = nil
    countForNextTrigger = nil
    lowByte = nil
    readHighNext = false
    latchedCount = nil
    latchedStatus = nil
  }

  /// A data byte written to the counter at `tick`.
  mutating func writeByte(_ byte: UInt8, atTick tick: UInt64) {
    switch access {
    case 1: load(UInt16(byte), atTick: tick)
    case 2: load(UInt16(byte) << 8, atTick: tick)
    default:
      if let low = lowByte {
        lowByte = nil
        load(UInt16(byte) << 8 | UInt16(low), atTick: tick)
      } else {
        lowByte = byte
        // Mode 0: "writing the first byte disables counting"; OUT goes (stays) low.
        if mode == 0 && armed {
          frozen = nil
          armed = false
        }
      }
    }
  }

  private mutating func load(_ raw: UInt16, atTick tick: UInt64) {
    var count = bcd ? Self.binary(fromBCD: raw) : UInt32(raw)
    if count == 0 { count = modulus }
    // Modes 2 and 3 cannot count from 1 (the data sheet calls it illegal); 2 is the nearest.
    if isPeriodic && count == 1 { count = 2 }
    countWritten = true
    if isPeriodic && armed {
      // A new count during counting waits for the end of the current period.
      settle(atTick: tick)
      let next = nextRisingEdge(after: tick) ?? tick + 1
      pendingReload = (count, next)
      return
    }
    switch mode {
    case 1, 5:
      // Waits for a rising gate edge; a pulse under way is not affected.
      if armed { countForNextTrigger = count } else { reload = count }
      return
    default:
      reload = count
      armed = gate || mode == 0 || mode == 4
      start = tick + 1
      frozen = gate || !armed ? nil : 0
    }
  }

  /// The gate input at `tick` (channel 2's is bit 0 of port 0x61; 0 and 1 are tied high).
  mutating func setGate(_ high: Bool, atTick tick: UInt64) {
    guard high != gate else { return }
    gate = high
    switch mode {
    case 0, 4:  // the gate only suspends counting
      guard armed else { return }
      if high {
        let held = frozen ?? 0
        frozen = nil
        start = tick - min(held, tick)
      } else {
        frozen = elapsed(atTick: tick) ?? 0
      }
    case 2, 3:  // low stops counting with OUT high; the rising edge reloads
      settle(atTick: tick)
      pendingReload = nil
      armed = high && countWritten
      start = tick + 1
    default:  // 1 and 5: a rising edge (re)triggers
      if high && countWritten {
        if let next = countForNextTrigger {
          reload = next
          countForNextTrigger = nil
        }
        armed = true
        start = tick + 1
      }
    }
  }

  // MARK: Reading

  mutating func latchCount(atTick tick: UInt64) {
    guard latchedCount == nil else { return }  // a latch holds until read
    latchedCount = encoded(counter(atTick: tick))
    readHighNext = false
  }

  mutating func latchStatus(atTick tick: UInt64) {
    guard latchedStatus == nil else { return }
    latchedStatus = status(atTick: tick)
  }

  /// "Status Byte": OUT, NULL COUNT, RW1-0, M2-0, BCD.
  func status(atTick tick: UInt64) -> UInt8 {
    let loaded = armed && (frozen != nil || tick >= start) && pendingReload == nil
    var byte = access << 4 | mode << 1 | (bcd ? 1 : 0)
    if output(atTick: tick) { byte |= 0x80 }
    if !loaded { byte |= 0x40 }
    return byte
  }

  mutating func readByte(atTick tick: UInt64) -> UInt8 {
    if let status = latchedStatus {
      latchedStatus = nil
      return status
    }
    let value = latchedCount ?? encoded(counter(atTick: tick))
    let byte: UInt8
    switch access {
    case 1:
      byte = UInt8(truncatingIfNeeded: value)
      latchedCount = nil
    case 2:
      byte = UInt8(truncatingIfNeeded: value >> 8)
      latchedCount = nil
    default:
      byte = readHighNext ? UInt8(truncatingIfNeeded: value >> 8) : UInt8(truncatingIfNeeded: value)
      if readHighNext { latchedCount = nil }
      readHighNext.toggle()
    }
    return byte
  }

  private func encoded(_ value: UInt32) -> UInt16 {
    bcd ? Self.bcd(fromBinary: value) : UInt16(truncatingIfNeeded: value)
  }

  static func bcd(fromBinary value: UInt32) -> UInt16 {
    let v = value % 10_000
    return UInt16((v / 1000) << 12 | (v / 100 % 10) << 8 | (v / 10 % 10) << 4 | v % 10)
  }

  /// BCD digits above 9 are taken at face value, as a counter's decade logic would.
  static func binary(fromBCD raw: UInt16) -> UInt32 {
    let r = UInt32(raw)
    return (r >> 12 & 0xf) * 1000 + (r >> 8 & 0xf) * 100 + (r >> 4 & 0xf) * 10 + (r & 0xf)
  }
}
