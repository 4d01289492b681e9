import GuestMemory

/// The zero page (`struct boot_params`) the 64-bit Linux boot protocol hands the kernel in
/// RSI: the kernel's own setup header, then what the loader adds (command line, initrd,
/// memory map). Offsets from Documentation/arch/x86/zero-page.rst.
enum LinuxBootParams {
  static let size = Int(BootLayout.zeroPageSize)
  static let e820Count = 0x1e8
  static let e820Table = 0x2d0
  static let e820Maximum = 128
  static let setupHeader = 0x1f1
  static let typeOfLoader = 0x210
  static let loadFlags = 0x211
  static let ramdiskImage = 0x218
  static let ramdiskSize = 0x21c
  static let commandLinePointer = 0x228
  static let extendedRamdiskImage = 0x0c0
  static let extendedRamdiskSize = 0x0c4
  static let extendedCommandLinePointer = 0x0c8

  static func write(
    into memory: GuestRAM, at base: UInt64, kernel: LinuxKernel, commandLine: UInt64,
    initrd: (address: UInt64, size: UInt64)?, memoryMap: [MemoryMapEntry]
  ) throws(MemoryError) {
    let zero = GuestAddress(base)
    try memory.fill(at: zero, count: size, with: 0)
    try memory.write(kernel.header, at: GuestAddress(base + UInt64(setupHeader)))
    try memory.store(UInt8(0xff), at: GuestAddress(base + UInt64(typeOfLoader)))  // "undefined" loader
    let flags = try memory.load(UInt8.self, at: GuestAddress(base + UInt64(loadFlags)))
    try memory.store(flags | 0x01, at: GuestAddress(base + UInt64(loadFlags)))  // LOADED_HIGH
    try memory.store(UInt32(truncatingIfNeeded: commandLine), at: GuestAddress(base + UInt64(commandLinePointer)))
    try memory.store(
      UInt32(truncatingIfNeeded: commandLine >> 32), at: GuestAddress(base + UInt64(extendedCommandLinePointer)))
    if let initrd {
      try memory.store(UInt32(truncatingIfNeeded: initrd.address), at: GuestAddress(base + UInt64(ramdiskImage)))
      try memory.store(UInt32(truncatingIfNeeded: initrd.size), at: GuestAddress(base + UInt64(ramdiskSize)))
      try memory.store(
        UInt32(truncatingIfNeeded: initrd.address >> 32), at: GuestAddress(base + UInt64(extendedRamdiskImage)))
      try memory.store(
        UInt32(truncatingIfNeeded: initrd.size >> 32), at: GuestAddress(base + UInt64(extendedRamdiskSize)))
    }
    let entries = memoryMap.prefix(e820Maximum)
    try memory.store(UInt8(entries.count), at: GuestAddress(base + UInt64(e820Count)))
    for (index, entry) in entries.enumerated() {
      let slot = base + UInt64(e820Table + index * 20)
      try memory.store(entry.start, at: GuestAddress(slot))
      try memory.store(entry.length, at: GuestAddress(slot + 8))
      try memory.store(entry.type, at: GuestAddress(slot + 16))
    }
  }
}

/// One range of the machine's physical memory map, as both Multiboot and the E820 table
/// describe it (type 1: usable RAM, 2: reserved).
struct MemoryMapEntry: Equatable {
  var start: UInt64
  var length: UInt64
  var type: UInt32

  static let available: UInt32 = 1
  static let reserved: UInt32 = 2

  /// Conventional memory, the EBDA/ROM hole below 1 MiB, then RAM from 1 MiB on.
  static func entries(for ramRegions: [(start: UInt64, size: UInt64)]) -> [MemoryMapEntry] {
    var entries = [
      MemoryMapEntry(start: 0, length: BootLayout.lowMemoryEnd, type: available),
      MemoryMapEntry(
        start: BootLayout.lowMemoryEnd, length: BootLayout.highMemoryStart - BootLayout.lowMemoryEnd, type: reserved),
    ]
    for region in ramRegions {
      let start = max(region.start, BootLayout.highMemoryStart)
      let end = region.start + region.size
      if end > start { entries.append(MemoryMapEntry(start: start, length: end - start, type: available)) }
    }
    return entries
  }
}
