import GuestMemory

/// Builds the Multiboot v1 information structure (the one EBX points at on entry).
enum MultibootInfo {
  enum Flag {
    static let memory: UInt32 = 1 << 0
    static let commandLine: UInt32 = 1 << 2
    static let modules: UInt32 = 1 << 3
    static let memoryMap: UInt32 = 1 << 6
    static let bootLoaderName: UInt32 = 1 << 9
  }

  static let bootLoaderName = "Hyperstep"

  /// Writes the structure at `base`, followed by its memory map and strings, with the
  /// command line already placed at `commandLine`. Returns the structure's address.
  static func write(
    into memory: GuestRAM, at base: UInt64, ramRegions: [(start: UInt64, size: UInt64)], commandLine: UInt64
  ) throws(MemoryError) -> UInt64 {
    let infoSize: UInt64 = 88
    var cursor = base + infoSize
    try memory.fill(at: GuestAddress(base), count: Int(infoSize), with: 0)

    // Memory map: conventional memory, the EBDA/ROM hole, then RAM above 1 MiB.
    let mapStart = cursor
    for entry in MemoryMapEntry.entries(for: ramRegions) {
      let (start, length, type) = (entry.start, entry.length, entry.type)
      try memory.store(UInt32(20), at: GuestAddress(cursor))  // size of the rest of this entry
      try memory.store(start, at: GuestAddress(cursor + 4))
      try memory.store(length, at: GuestAddress(cursor + 12))
      try memory.store(type, at: GuestAddress(cursor + 20))
      cursor += 24
    }
    let mapLength = cursor - mapStart

    let nameAddress = cursor
    try memory.write(Array(bootLoaderName.utf8) + [0], at: GuestAddress(nameAddress))

    // mem_upper counts the contiguous KiB from 1 MiB to the first hole.
    let firstRegionEnd = ramRegions.first.map { $0.start + $0.size } ?? 0
    let upperKiB =
      firstRegionEnd > BootLayout.highMemoryStart ? (firstRegionEnd - BootLayout.highMemoryStart) / 1024 : 0
    try memory.store(
      Flag.memory | Flag.commandLine | Flag.modules | Flag.memoryMap | Flag.bootLoaderName, at: GuestAddress(base))
    try memory.store(UInt32(BootLayout.lowMemoryEnd / 1024), at: GuestAddress(base + 4))  // mem_lower
    try memory.store(UInt32(truncatingIfNeeded: upperKiB), at: GuestAddress(base + 8))  // mem_upper
    try memory.store(UInt32(commandLine), at: GuestAddress(base + 16))  // cmdline
    try memory.store(UInt32(0), at: GuestAddress(base + 20))  // mods_count
    try memory.store(UInt32(0), at: GuestAddress(base + 24))  // mods_addr
    try memory.store(UInt32(mapLength), at: GuestAddress(base + 44))  // mmap_length
    try memory.store(UInt32(mapStart), at: GuestAddress(base + 48))  // mmap_addr
    try memory.store(UInt32(nameAddress), at: GuestAddress(base + 64))  // boot_loader_name
    return base
  }
}
