import GuestMemory

/// Identity-mapped page tables for long-mode entry: the first 4 GiB with 2 MiB pages,
/// which covers low RAM, the 3-4 GiB device hole and the local APIC.
enum PageTables {
  static let present: UInt64 = 1 << 0
  static let writable: UInt64 = 1 << 1
  static let largePage: UInt64 = 1 << 7

  /// Writes PML4, PDPT and four page directories at `base`; returns the CR3 value.
  static func writeIdentityMap(into memory: GuestRAM, at base: UInt64) throws(MemoryError) -> UInt64 {
    let pml4 = base
    let pdpt = base + 0x1000
    let directories = base + 0x2000
    try memory.fill(at: GuestAddress(base), count: 6 * 0x1000, with: 0)
    try memory.store(pdpt | present | writable, at: GuestAddress(pml4))
    for gib in UInt64(0)..<4 {
      let directory = directories + gib * 0x1000
      try memory.store(directory | present | writable, at: GuestAddress(pdpt + gib * 8))
      for entry in UInt64(0)..<512 {
        let physical = (gib << 30) | (entry << 21)
        try memory.store(physical | present | writable | largePage, at: GuestAddress(directory + entry * 8))
      }
    }
    return pml4
  }
}
