extension PIT8254 {
  /// One counter in the data sheet's terms, for carrying it to another model of the chip and
  /// back (an engine switch carries KVM's in-kernel PIT here): what was programmed, what is
  /// latched or half written, and how far the count has gone.
  public struct Counter: Equatable, Sendable {
    /// 0-5 (modes 6 and 7 are stored as 2 and 3).
    public var mode: UInt8 = 0
    /// RW1-0 of the control word: 1 LSB only, 2 MSB only, 3 LSB then MSB.
    public var access: UInt8 = 3
    public var bcd = false
    public var gate = true
    /// The initial count N in binary (1...65536, or 10000 in BCD); a count written during a
    /// period or a pulse, not yet in use, is the one given here.
    public var initialCount: UInt32 = 0x1_0000
    /// A complete count has been written since the control word.
    public var countWritten = false
    /// Ticks of the 1.193182 MHz clock since N was loaded, or nil while the counter is not
    /// counting (no count yet, or modes 1 and 5 waiting for their trigger).
    public var elapsed: UInt64?
    public var latchedCount: UInt16?
    public var latchedStatus: UInt8?
    /// The low byte of an LSB-then-MSB count written, its high byte not yet.
    public var lowByte: UInt8?
    /// The next read of an LSB-then-MSB value gives the high byte.
    public var readHighNext = false

    public init() {}
  }

  /// Counter `index` (0-2) at the current time.
  public func counter(_ index: Int) -> Counter {
    let channel = channels[index]
    var counter = Counter()
    counter.mode = channel.mode
    counter.access = channel.access
    counter.bcd = channel.bcd
    counter.gate = channel.gate
    counter.initialCount = channel.pendingReload?.count ?? channel.countForNextTrigger ?? channel.reload
    counter.countWritten = channel.countWritten
    counter.elapsed = channel.elapsed(atTick: tick)
    counter.latchedCount = channel.latchedCount
    counter.latchedStatus = channel.latchedStatus
    counter.lowByte = channel.lowByte
    counter.readHighNext = channel.readHighNext
    return counter
  }

  /// Gives counter `index` (0-2) that state at the current time. OUT0's level is taken as it
  /// now stands without an edge reported: what it raised before is the interrupt
  /// controllers' state, carried with them.
  public func setCounter(_ index: Int, _ counter: Counter) {
    var channel = PIT8254Channel()
    channel.mode = counter.mode > 5 ? counter.mode & 3 : counter.mode
    channel.access = counter.access
    channel.bcd = counter.bcd
    channel.gate = counter.gate
    channel.reload = max(1, min(counter.initialCount, channel.modulus))
    channel.countWritten = counter.countWritten
    if let elapsed = counter.elapsed {
      channel.armed = true
      // A periodic count's phase is all that matters; a one-shot one that ended stays ended.
      let n = UInt64(channel.reload)
      let phase = channel.isPeriodic ? elapsed % n : min(elapsed, tick)
      if !channel.gate && (channel.mode == 0 || channel.mode == 4) {
        channel.frozen = phase
      } else {
        channel.start = tick - min(phase, tick)
      }
    }
    channel.latchedCount = counter.latchedCount
    channel.latchedStatus = counter.latchedStatus
    channel.lowByte = counter.lowByte
    channel.readHighNext = counter.readHighNext
    channels[index] = channel
    if index == 0 { reportedOutput0 = channel.output(atTick: tick) }
  }
}
