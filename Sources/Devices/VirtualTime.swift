/// Virtual time for devices that count: the PIT, the local APIC timer, the RTC.
///
/// Devices never read a host clock. The engine derives time from what the guest has
/// executed (retired instructions at a nominal rate, see `InstructionClock`), so a run is
/// deterministic: the same guest reads the same PIT counts and takes its timer interrupts
/// at the same instructions on every run and on every engine.
///
/// The contract between an engine and a `TimedDevice`:
/// - before the guest touches the device, and whenever the engine reaches the device's
///   `nextDeadline`, it calls `advance(to:)` with the current virtual time; port and MMIO
///   accesses then happen at that instant;
/// - time never goes backwards: an earlier `now` than the last one is ignored; the same
///   `now` again is harmless (and fires anything a write made due at that very instant);
/// - `nextDeadline` is the earliest virtual time at which the device will change an
///   interrupt output on its own, so the engine can run exactly until then and no further.
public protocol TimedDevice: AnyObject {
  /// Brings the device to virtual time `now` (nanoseconds since the machine started),
  /// raising whatever interrupts fell due on the way.
  func advance(to now: UInt64)
  /// The next virtual time at which the device needs `advance(to:)` to raise an interrupt,
  /// or nil if it needs none (timer stopped or masked output).
  var nextDeadline: UInt64? { get }
}

/// Nanoseconds in one second: the unit conversions below divide by it.
public let nanosecondsPerSecond: UInt64 = 1_000_000_000

/// Converts between nanoseconds and ticks of a clock at `hertz`, without overflow for any
/// 64-bit time (the products are computed on 128 bits).
public struct TickClock: Equatable, Sendable {
  public let hertz: UInt64

  public init(hertz: UInt64) {
    precondition(hertz > 0 && hertz <= nanosecondsPerSecond, "a tick clock runs at 1 Hz to 1 GHz")
    self.hertz = hertz
  }

  /// Whole ticks elapsed at `nanoseconds`: floor(ns * hertz / 1e9).
  public func ticks(atNanoseconds nanoseconds: UInt64) -> UInt64 {
    let product = nanoseconds.multipliedFullWidth(by: hertz)
    return nanosecondsPerSecond.dividingFullWidth(product).quotient
  }

  /// The first nanosecond at which `ticks` whole ticks have elapsed: ceil(ticks * 1e9 / hertz),
  /// so `ticks(atNanoseconds: nanoseconds(atTick: t)) == t`. Saturates at UInt64.max.
  public func nanoseconds(atTick ticks: UInt64) -> UInt64 {
    let product = ticks.multipliedFullWidth(by: nanosecondsPerSecond)
    if product.high >= hertz { return .max }  // the quotient would not fit in 64 bits
    let (quotient, remainder) = hertz.dividingFullWidth(product)
    if remainder == 0 { return quotient }
    return quotient == .max ? .max : quotient + 1
  }
}

/// The engine's side of virtual time: retired instructions at a nominal rate.
///
/// An interpreter retires instructions one by one, so `nanoseconds(afterRetiring:)` is exact;
/// `instructions(until:)` tells it how many to run before a device deadline.
public struct InstructionClock: Equatable, Sendable {
  /// Nominal instructions per second (1 GHz by default: one instruction per nanosecond).
  public let instructionsPerSecond: UInt64

  public init(instructionsPerSecond: UInt64 = nanosecondsPerSecond) {
    precondition(instructionsPerSecond > 0, "a clock must run")
    self.instructionsPerSecond = instructionsPerSecond
  }

  /// Virtual time after `retired` instructions: floor(retired * 1e9 / rate).
  public func nanoseconds(afterRetiring retired: UInt64) -> UInt64 {
    let product = retired.multipliedFullWidth(by: nanosecondsPerSecond)
    if product.high >= instructionsPerSecond { return .max }
    return instructionsPerSecond.dividingFullWidth(product).quotient
  }

  /// The number of retired instructions at which virtual time first reaches `deadline`.
  public func instructions(untilNanoseconds deadline: UInt64) -> UInt64 {
    let product = deadline.multipliedFullWidth(by: instructionsPerSecond)
    if product.high >= nanosecondsPerSecond { return .max }
    let (quotient, remainder) = nanosecondsPerSecond.dividingFullWidth(product)
    if remainder == 0 { return quotient }
    return quotient == .max ? .max : quotient + 1
  }
}

/// The earlier of two optional deadlines.
@inline(__always)
public func earliest(_ a: UInt64?, _ b: UInt64?) -> UInt64? {
  switch (a, b) {
  case (nil, nil): nil
  case (let x?, nil): x
  case (nil, let y?): y
  case (let x?, let y?): min(x, y)
  }
}
