/// An interrupt message as the APIC bus (or the system bus, since the Pentium 4) carries it:
/// sent by an I/O APIC redirection entry or by a local APIC's interrupt command register, and
/// routed by the platform to the local APICs it names. Field meanings follow the ICR layout
/// (Intel SDM Vol. 3A, 11.6.1 "Interrupt Command Register (ICR)"), which the I/O APIC's
/// redirection entries share (82093AA data sheet, 3.2.4).
public struct InterruptMessage: Equatable, Sendable {
  /// ICR bits 10-8.
  public enum DeliveryMode: UInt8, Sendable {
    case fixed = 0
    case lowestPriority = 1
    case systemManagement = 2
    case nonMaskable = 4
    case initialize = 5
    case startup = 6
    case externalInterrupt = 7
  }

  /// ICR bits 19-18: who receives the message without looking at `destination`.
  public enum Shorthand: UInt8, Sendable {
    case none = 0
    case selfOnly = 1
    case allIncludingSelf = 2
    case allExcludingSelf = 3
  }

  public var vector: UInt8
  public var deliveryMode: DeliveryMode
  /// ICR bit 11: `destination` is an APIC ID (physical) or a logical mask (logical).
  public var logicalDestination: Bool
  /// ICR bits 63-56 (xAPIC): an APIC ID, 0xff for all, or a logical destination.
  public var destination: UInt8
  /// ICR bit 15 / redirection bit 15.
  public var levelTriggered: Bool
  /// ICR bit 14: clear only in an INIT level de-assert.
  public var assert: Bool
  public var shorthand: Shorthand
  /// The index of the sending local APIC (for the self shorthands); nil from an I/O APIC.
  public var sourceAPIC: Int?

  public init(
    vector: UInt8, deliveryMode: DeliveryMode = .fixed, logicalDestination: Bool = false, destination: UInt8,
    levelTriggered: Bool = false, assert: Bool = true, shorthand: Shorthand = .none, sourceAPIC: Int? = nil
  ) {
    self.vector = vector
    self.deliveryMode = deliveryMode
    self.logicalDestination = logicalDestination
    self.destination = destination
    self.levelTriggered = levelTriggered
    self.assert = assert
    self.shorthand = shorthand
    self.sourceAPIC = sourceAPIC
  }
}

/// What a local APIC asks of its processor; the engine acts on it.
public enum ProcessorSignal: Equatable, Sendable {
  /// INIT: reset the processor and wait for a start-up IPI (an AP) or restart (SDM 8.4.4).
  case initialize
  /// Start-up IPI: begin executing in real mode at vector << 12 (CS = vector << 8, IP = 0).
  case startup(vector: UInt8)
}

/// 256 bits, one per interrupt vector: the local APIC's IRR, ISR and TMR.
public struct VectorSet: Equatable, Sendable {
  var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

  public init() {}

  public static func == (a: Self, b: Self) -> Bool { a.words == b.words }

  func word(_ index: Int) -> UInt64 {
    switch index {
    case 0: words.0
    case 1: words.1
    case 2: words.2
    default: words.3
    }
  }

  mutating func setWord(_ index: Int, _ value: UInt64) {
    switch index {
    case 0: words.0 = value
    case 1: words.1 = value
    case 2: words.2 = value
    default: words.3 = value
    }
  }

  public subscript(vector: UInt8) -> Bool {
    get { word(Int(vector >> 6)) >> UInt64(vector & 63) & 1 != 0 }
    set {
      let bit = UInt64(1) << UInt64(vector & 63)
      let old = word(Int(vector >> 6))
      setWord(Int(vector >> 6), newValue ? old | bit : old & ~bit)
    }
  }

  /// The highest vector in the set, or nil.
  public var highest: UInt8? {
    for index in stride(from: 3, through: 0, by: -1) where word(index) != 0 {
      return UInt8(index * 64 + 63 - word(index).leadingZeroBitCount)
    }
    return nil
  }

  /// Bits 32n...32n+31, as the APIC's register at offset base + 0x10 n shows them.
  func register(_ n: Int) -> UInt32 {
    UInt32(truncatingIfNeeded: word(n / 2) >> UInt64(32 * (n % 2)))
  }
}
