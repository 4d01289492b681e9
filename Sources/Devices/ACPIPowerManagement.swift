/// The fixed-hardware ACPI registers Hyperstep's ACPI tables describe (FADT, see
/// Machine/X86_64/ACPITables.swift): the PM1a event block (status, enable) and the PM1a
/// control register, at consecutive ports from `base`, and nothing else (no PM timer, no
/// GPE blocks, no SCI is ever raised: there are no fixed-feature events to report).
///
/// The only action is the sleep request: a write to PM1a_CNT with SLP_EN (bit 13) set and
/// SLP_TYP (bits 10-12) equal to the value the DSDT's `\_S5` package gives (`softOffType`)
/// powers the machine off, which is what Linux's `poweroff` does after the ACPI S5
/// preparation (ACPI 6.4, 4.8.3.2.1 and 7.4.2). Other sleep states are not offered by the
/// DSDT, so a write asking for one is ignored, as is any write without SLP_EN. SCI_EN (bit 0)
/// reads as 1: the machine is always in ACPI mode (the FADT's SMI_CMD is 0, so the OS never
/// asks for the switch).
public final class ACPIPowerManagement: PortDevice {
  /// Clear of Hyperstep's control port (0x600, where QEMU's chipsets put their PM base).
  public static let base: UInt16 = 0xb000
  /// PM1a_EVT_BLK: PM1_STS (2 bytes) then PM1_EN (2 bytes).
  public static let eventBlock: UInt16 = base
  public static let eventBlockLength: UInt8 = 4
  /// PM1a_CNT_BLK, two bytes.
  public static let controlBlock: UInt16 = base + 4
  public static let controlBlockLength: UInt8 = 2
  public static let ports: ClosedRange<UInt16> = base...(base + 5)
  /// SLP_TYP for S5 (soft off), the first element of the DSDT's `\_S5` package.
  public static let softOffType: UInt16 = 5

  static let sciEnable: UInt16 = 1 << 0
  static let sleepEnable: UInt16 = 1 << 13

  /// PM1_STS: write-one-to-clear; no event ever sets a bit, so it stays 0 unless a reset
  /// value is needed (WAK_STS is not modelled: the machine never sleeps and wakes).
  private(set) var status: UInt16 = 0
  /// PM1_EN: kept as written.
  private(set) var enable: UInt16 = 0
  /// PM1_CNT's read/write bits (SLP_TYP and the rest; SLP_EN is write-only).
  private(set) var control: UInt16 = 0

  public init() {}

  public func read(offset: UInt16, size: Int) -> UInt32 {
    // The registers as bytes, so that any access size and alignment reads what it covers.
    var value: UInt32 = 0
    for index in 0..<size {
      value |= UInt32(byte(at: offset &+ UInt16(index))) << (8 * index)
    }
    return value
  }

  public func write(offset: UInt16, size: Int, value: UInt32) -> DeviceAction {
    var action = DeviceAction.none
    for index in 0..<size {
      let byte = UInt8(truncatingIfNeeded: value >> (8 * index))
      if store(byte, at: offset &+ UInt16(index)) == .powerOff { action = .powerOff }
    }
    return action
  }

  private func byte(at offset: UInt16) -> UInt8 {
    let register: UInt16
    switch offset {
    case 0, 1: register = status
    case 2, 3: register = enable
    case 4, 5: register = (control & ~Self.sleepEnable) | Self.sciEnable
    default: return 0xff
    }
    return UInt8(truncatingIfNeeded: register >> (8 * (offset & 1)))
  }

  private func store(_ byte: UInt8, at offset: UInt16) -> DeviceAction {
    let shift = 8 * (offset & 1)
    let mask: UInt16 = 0xff << shift
    let bits = UInt16(byte) << shift
    switch offset {
    case 0, 1: status &= ~bits
    case 2, 3: enable = (enable & ~mask) | bits
    case 4, 5:
      control = (control & ~mask) | bits
      if control & Self.sleepEnable != 0 {
        control &= ~Self.sleepEnable
        if (control >> 10) & 7 == Self.softOffType { return .powerOff }
      }
    default: break
    }
    return .none
  }
}

/// The reset control register at port 0xcf9 (the PIIX/ICH "RST_CNT"), which the FADT names as
/// the ACPI reset register: writing a value with RST_CPU (bit 2) set resets the machine, as
/// Linux's `reboot` does through ACPI (RESET_VALUE 0x06: RST_CPU with SYS_RST). Reads return
/// the last value written without RST_CPU.
public final class ResetControlRegister: PortDevice {
  public static let port: UInt16 = 0xcf9
  /// The value the FADT gives the OS to write.
  public static let resetValue: UInt8 = 0x06
  private var value: UInt8 = 0

  public init() {}

  public func read(offset: UInt16, size: Int) -> UInt32 { UInt32(value) }

  public func write(offset: UInt16, size: Int, value: UInt32) -> DeviceAction {
    let byte = UInt8(truncatingIfNeeded: value)
    guard byte & 0x04 == 0 else { return .reset }
    self.value = byte
    return .none
  }
}
