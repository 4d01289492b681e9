/// Where Hyperstep puts the structures it builds for a guest in low memory, and how guest
/// physical space is laid out. All below 640 KiB, clear of the conventional 0x7c00 boot
/// sector and of kernels linked at 1 MiB.
public enum BootLayout {
  /// GDT with flat code and data descriptors (after the BIOS data area).
  static let gdt: UInt64 = 0x500
  /// Linux's zero page (boot_params).
  static let zeroPage: UInt64 = 0x7000
  static let zeroPageSize: UInt64 = 0x1000
  /// Initial stack for protected- and long-mode entries: grows down from here.
  static let stackTop: UInt64 = 0x7000
  static let stackBottom: UInt64 = 0x1000
  /// PML4, PDPT and four page directories: 4 GiB identity-mapped with 2 MiB pages.
  static let pageTables: UInt64 = 0x9000
  static let pageTablesEnd: UInt64 = 0xf000
  /// Multiboot information structure, memory map and strings.
  static let multibootInfo: UInt64 = 0xf000
  static let multibootInfoEnd: UInt64 = 0x1_0000
  /// The kernel command line.
  static let commandLine: UInt64 = 0x2_0000
  static let commandLineMaximum = 4096

  /// Top of conventional memory; the EBDA and ROM area follow.
  static let lowMemoryEnd: UInt64 = 0x9_fc00
  static let highMemoryStart: UInt64 = 0x10_0000
  /// RAM above this is relocated above 4 GiB to leave room for devices, as on a PC.
  static let memoryHoleStart: UInt64 = 0xc000_0000
  static let fourGiB: UInt64 = 0x1_0000_0000
  /// The read-only reset-vector ROM; filled with HLT so a stray vCPU there stops.
  static let rom: UInt64 = 0xffff_0000
  static let romSize: UInt64 = 0x1_0000
  /// Intel VT-x needs three pages for its real-mode TSS and one for an identity map; unused on AMD.
  static let tss: UInt64 = 0xfffb_d000
  static let identityMap: UInt64 = 0xfffb_c000

  /// The guest-physical regions for `memorySize` bytes of RAM.
  public static func ramRegions(memorySize: UInt64) -> [(start: UInt64, size: UInt64)] {
    if memorySize <= memoryHoleStart { return [(0, memorySize)] }
    return [(0, memoryHoleStart), (fourGiB, memorySize - memoryHoleStart)]
  }
}
