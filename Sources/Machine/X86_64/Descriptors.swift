import KVM

/// The flat GDT Hyperstep gives protected- and long-mode guests, and the matching
/// hidden segment state for KVM.
enum Descriptors {
  static let code32Selector: UInt16 = 0x08
  static let dataSelector: UInt16 = 0x10
  static let code64Selector: UInt16 = 0x18

  /// Null, 32-bit code, data, 64-bit code: base 0, limit 4 GiB, ring 0.
  static let gdtEntries: [UInt64] = [
    0,
    0x00cf_9b00_0000_ffff,  // code: present, DPL 0, execute/read, accessed, 4 KiB granular, 32-bit
    0x00cf_9300_0000_ffff,  // data: present, DPL 0, read/write, accessed, 4 KiB granular, 32-bit
    0x00af_9b00_0000_ffff,  // code: as above but L=1, D=0 (64-bit)
  ]

  static var gdtLimit: UInt16 { UInt16(gdtEntries.count * 8 - 1) }

  /// The Linux boot protocol wants __BOOT_CS at 0x10 and __BOOT_DS at 0x18.
  static let linuxCodeSelector: UInt16 = 0x10
  static let linuxDataSelector: UInt16 = 0x18
  static let linuxGDTEntries: [UInt64] = [0, 0, gdtEntries[3], gdtEntries[2]]

  static func code32() -> Segment {
    Segment(base: 0, limit: 0xffff_ffff, selector: code32Selector, type: 0xb, defaultSize32: true, granularity: true)
  }

  static func code64() -> Segment {
    Segment(base: 0, limit: 0xffff_ffff, selector: code64Selector, type: 0xb, longMode: true, granularity: true)
  }

  static func data() -> Segment {
    Segment(base: 0, limit: 0xffff_ffff, selector: dataSelector, type: 0x3, defaultSize32: true, granularity: true)
  }

  static func realMode(segment: UInt16, code: Bool) -> Segment {
    Segment(base: UInt64(segment) << 4, limit: 0xffff, selector: segment, type: code ? 0xb : 0x3)
  }

  /// A busy TSS: VM entry insists on one even though these guests never switch tasks.
  static func taskRegister() -> Segment {
    Segment(base: 0, limit: 0x67, selector: 0, type: 0xb, isCodeOrData: false)
  }
}

/// Control-register bits used to set up entry modes.
enum ControlBits {
  static let cr0ProtectionEnable: UInt64 = 1 << 0
  static let cr0MonitorCoprocessor: UInt64 = 1 << 1
  static let cr0ExtensionType: UInt64 = 1 << 4
  static let cr0NumericError: UInt64 = 1 << 5
  static let cr0WriteProtect: UInt64 = 1 << 16
  static let cr0Paging: UInt64 = 1 << 31
  static let cr4PAE: UInt64 = 1 << 5
  static let eferLongModeEnable: UInt64 = 1 << 8
  static let eferLongModeActive: UInt64 = 1 << 10
}
