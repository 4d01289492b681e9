/// The I/O APIC at 0xfec00000 (Intel 82093AA data sheet, 290566; section numbers below are
/// its), in the version 0x20 form that chipsets since the ICH carry: an EOI register at 0x40
/// beside IOREGSEL (0x00) and IOWIN (0x10).
///
/// Its 24 input pins are driven with `setLevel(pin:high:)`; whenever an entry fires, the
/// message goes to `deliver`, which the platform wires to the local APICs. Level-triggered
/// entries keep Remote IRR set until the local APIC's EOI comes back through
/// `endOfInterrupt(vector:)` or the EOI register.
public final class IOAPIC: MMIODevice {
  public static let defaultBase: UInt64 = 0xfec0_0000
  public static let size: UInt64 = 0x1000
  public static let pinCount = 24
  /// Version register (3.2.2): version 0x20 with the EOI register, maximum redirection
  /// entry 23 in bits 23-16.
  public static let version: UInt32 = 0x0017_0020

  /// Memory-mapped registers (3.0, Table 1) and the indirect ones behind IOWIN (3.2).
  public enum Offset {
    public static let registerSelect: UInt64 = 0x00
    public static let window: UInt64 = 0x10
    public static let endOfInterrupt: UInt64 = 0x40
  }

  /// Redirection entry bits (3.2.4).
  enum Entry {
    static let logical: UInt64 = 1 << 11
    static let deliveryStatus: UInt64 = 1 << 12
    static let activeLow: UInt64 = 1 << 13
    static let remoteIRR: UInt64 = 1 << 14
    static let levelTriggered: UInt64 = 1 << 15
    static let masked: UInt64 = 1 << 16
    /// Vector, delivery mode, destination mode, polarity, trigger mode, mask; destination.
    static let writable: UInt64 = 0xff00_0000_0000_0000 | 0x1_afff
  }

  /// Receives each interrupt message the I/O APIC sends.
  public var deliver: ((InterruptMessage) -> Void)?

  public private(set) var id: UInt8
  public private(set) var registerSelect: UInt8 = 0
  /// The 24 redirection entries; all masked at reset (3.2.4).
  public private(set) var entries = [UInt64](repeating: Entry.masked, count: pinCount)
  /// The electrical level of each input pin.
  public private(set) var lines: UInt32 = 0

  public init(id: UInt8 = 0) {
    self.id = id
  }

  /// Takes the state another model of the chip had (an engine switch carries KVM's in-kernel
  /// I/O APIC here and back). Nothing is sent: a pin already asserted was serviced there.
  public func restore(id: UInt8, registerSelect: UInt8, entries: [UInt64], lines: UInt32) {
    precondition(entries.count == Self.pinCount, "24 redirection entries")
    self.id = id & 0x0f
    self.registerSelect = registerSelect
    self.entries = entries
    self.lines = lines & (1 << UInt32(Self.pinCount) - 1)
  }

  // MARK: Pins

  /// Drives input `pin` (0-23). An edge-triggered entry fires on the transition to its
  /// active level; a level-triggered one fires while active and Remote IRR is clear.
  public func setLevel(pin: Int, high: Bool) {
    guard pin >= 0 && pin < Self.pinCount else { return }
    let bit = UInt32(1) << UInt32(pin)
    let wasActive = isActive(pin)
    if high { lines |= bit } else { lines &= ~bit }
    let entry = entries[pin]
    if entry & Entry.levelTriggered != 0 {
      serviceLevel(pin)
    } else if isActive(pin) && !wasActive && entry & Entry.masked == 0 {
      send(pin)
    }
  }

  /// A rising then falling edge on `pin` (an ISA interrupt through the I/O APIC).
  public func pulse(pin: Int) {
    setLevel(pin: pin, high: true)
    setLevel(pin: pin, high: false)
  }

  private func isActive(_ pin: Int) -> Bool {
    let high = lines >> UInt32(pin) & 1 != 0
    return entries[pin] & Entry.activeLow != 0 ? !high : high
  }

  private func serviceLevel(_ pin: Int) {
    let entry = entries[pin]
    guard entry & Entry.levelTriggered != 0, entry & (Entry.masked | Entry.remoteIRR) == 0, isActive(pin) else {
      return
    }
    entries[pin] |= Entry.remoteIRR  // set when a local APIC accepts the level interrupt
    send(pin)
  }

  private func send(_ pin: Int) {
    let entry = entries[pin]
    let mode = InterruptMessage.DeliveryMode(rawValue: UInt8(entry >> 8 & 7)) ?? .fixed
    deliver?(
      InterruptMessage(
        vector: UInt8(truncatingIfNeeded: entry), deliveryMode: mode, logicalDestination: entry & Entry.logical != 0,
        destination: UInt8(truncatingIfNeeded: entry >> 56), levelTriggered: entry & Entry.levelTriggered != 0))
  }

  /// A local APIC's EOI for a level-triggered `vector`: Remote IRR clears on every entry with
  /// that vector, and an input still active fires again.
  public func endOfInterrupt(vector: UInt8) {
    for pin in 0..<Self.pinCount where UInt8(truncatingIfNeeded: entries[pin]) == vector {
      guard entries[pin] & Entry.remoteIRR != 0 else { continue }
      entries[pin] &= ~Entry.remoteIRR
      serviceLevel(pin)
    }
  }

  // MARK: Registers

  public func read(offset: UInt64, size: Int) -> UInt64 {
    switch offset {
    case Offset.registerSelect: UInt64(registerSelect)
    case Offset.window: UInt64(readIndirect(registerSelect))
    default: 0  // the EOI register is write-only; the rest of the page is unused
    }
  }

  public func write(offset: UInt64, size: Int, value: UInt64) -> DeviceAction {
    switch offset {
    case Offset.registerSelect: registerSelect = UInt8(truncatingIfNeeded: value)
    case Offset.window: writeIndirect(registerSelect, UInt32(truncatingIfNeeded: value))
    case Offset.endOfInterrupt: endOfInterrupt(vector: UInt8(truncatingIfNeeded: value))
    default: break
    }
    return .none
  }

  /// IOAPICID (0x00, ID in bits 27-24), IOAPICVER (0x01), IOAPICARB (0x02, the arbitration
  /// ID, which takes the APIC ID), IOREDTBL0-23 (0x10-0x3f, low half at even indexes).
  /// Selecting anything else reads 0 and drops writes.
  private func readIndirect(_ index: UInt8) -> UInt32 {
    switch index {
    case 0x00: return UInt32(id & 0x0f) << 24
    case 0x01: return Self.version
    case 0x02: return UInt32(id & 0x0f) << 24
    case 0x10...0x3f:
      let entry = entries[Int(index - 0x10) / 2]
      return UInt32(truncatingIfNeeded: index & 1 == 0 ? entry : entry >> 32)
    default: return 0
    }
  }

  private func writeIndirect(_ index: UInt8, _ value: UInt32) {
    switch index {
    case 0x00:
      id = UInt8(value >> 24 & 0x0f)
    case 0x10...0x3f:
      let pin = Int(index - 0x10) / 2
      let old = entries[pin]
      let written = index & 1 == 0 ? old & ~0xffff_ffff | UInt64(value) : old & 0xffff_ffff | UInt64(value) << 32
      // Delivery status and Remote IRR are read-only.
      entries[pin] = written & Entry.writable | old & (Entry.deliveryStatus | Entry.remoteIRR)
      // Switching to edge triggering drops Remote IRR, which only means something for level.
      if entries[pin] & Entry.levelTriggered == 0 { entries[pin] &= ~Entry.remoteIRR }
      serviceLevel(pin)  // unmasking an active level input fires it
    default:
      break  // version and arbitration are read-only
    }
  }
}
