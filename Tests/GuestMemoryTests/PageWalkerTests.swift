import Testing

@testable import GuestMemory

/// The page walker against page tables built by hand, per the SDM's paging chapter
/// (vol. 3, 4.3 32-bit, 4.4 PAE, 4.5 4- and 5-level).
@Suite struct PageWalkerTests {
  let ram = try! GuestRAM([MemoryRegionSpec(start: 0, size: 0x40_0000)])
  static let present: UInt64 = 1
  static let writable: UInt64 = 2
  static let large: UInt64 = 1 << 7
  static let pg: UInt64 = 1 << 31
  static let pe: UInt64 = 1

  func store64(_ value: UInt64, _ address: UInt64) { try! ram.store(value, at: GuestAddress(address)) }
  func store32(_ value: UInt32, _ address: UInt64) { try! ram.store(value, at: GuestAddress(address)) }

  @Test func withoutPagingLinearIsPhysical() throws {
    let walker = PageWalker(memory: ram, mode: PagingMode(cr0: Self.pe, cr3: 0, cr4: 0, efer: 0))
    #expect(try walker.translate(0x12_3456) == 0x12_3456)
  }

  @Test func thirtyTwoBitPagingWith4KAnd4MPages() throws {
    // CR3 -> directory at 0x1000. PDE 0 -> table at 0x2000; PTE 5 -> frame 0x30_0000.
    store32(0x2000 | 3, 0x1000)
    store32(0x30_0000 | 3, 0x2000 + 5 * 4)
    // PDE 1 (linear 4 MiB..8 MiB) is a 4 MiB page at physical 0 (PSE).
    store32(0x0000_0000 | 0x83, 0x1000 + 4)
    let walker = PageWalker(memory: ram, mode: PagingMode(cr0: Self.pg | Self.pe, cr3: 0x1000, cr4: 1 << 4, efer: 0))
    #expect(try walker.translate(0x5123) == 0x30_0123)
    #expect(try walker.translate(0x40_1234) == 0x1234)
    #expect(throws: TranslationError.notMapped(linear: 0x80_0000, level: 2)) { try walker.translate(0x80_0000) }
  }

  @Test func paePagingWithItsFourEntryPDPT() throws {
    // PDPT at 0x1000 (32-byte aligned), entry 1 (1-2 GiB) -> directory 0x2000;
    // PDE 2 -> table 0x3000; PTE 3 -> frame 0x20_0000.
    store64(0x2000 | Self.present, 0x1000 + 8)
    store64(0x3000 | 3, 0x2000 + 2 * 8)
    store64(0x20_0000 | 3, 0x3000 + 3 * 8)
    let walker = PageWalker(memory: ram, mode: PagingMode(cr0: Self.pg | Self.pe, cr3: 0x1000, cr4: 1 << 5, efer: 0))
    let linear: UInt64 = 0x4000_0000 | (2 << 21) | (3 << 12) | 0x77
    #expect(try walker.translate(linear) == 0x20_0077)
    #expect(throws: TranslationError.notMapped(linear: 0, level: 3)) { try walker.translate(0) }
  }

  @Test func fourLevelPagingWithHugePagesAndCanonicalChecks() throws {
    // PML4 0x1000 [511] -> PDPT 0x2000 [510] -> PD 0x3000 [0] is a 2 MiB page at 0x20_0000.
    store64(0x2000 | 3, 0x1000 + 511 * 8)
    store64(0x3000 | 3, 0x2000 + 510 * 8)
    store64(0x20_0000 | 3 | Self.large, 0x3000)
    let mode = PagingMode(cr0: Self.pg | Self.pe, cr3: 0x1000, cr4: 1 << 5, efer: 1 << 10 | 1 << 8)
    let walker = PageWalker(memory: ram, mode: mode)
    #expect(try walker.translate(0xffff_ffff_8000_1234) == 0x20_1234)
    #expect(throws: TranslationError.nonCanonical(0x8000_0000_0000)) { try walker.translate(0x8000_0000_0000) }
    #expect(throws: TranslationError.self) { try walker.translate(0x1000) }
  }

  @Test func fiveLevelPagingAddsThePML5() throws {
    // PML5 0x1000 [0] -> PML4 0x2000 [1] -> PDPT 0x3000 [0] is a 1 GiB page at 0.
    store64(0x2000 | 3, 0x1000)
    store64(0x3000 | 3, 0x2000 + 8)
    store64(0 | 3 | Self.large, 0x3000)
    let mode = PagingMode(cr0: Self.pg | Self.pe, cr3: 0x1000, cr4: 1 << 5 | 1 << 12, efer: 1 << 10 | 1 << 8)
    let walker = PageWalker(memory: ram, mode: mode)
    #expect(try walker.translate((1 << 39) | 0x2345) == 0x2345)
  }

  @Test func tablesOutsideRAMAreReportedNotTrapped() {
    store64(0x8000_0000 | 3, 0x1000)  // a PDPT far outside the 4 MiB of RAM
    let mode = PagingMode(cr0: Self.pg | Self.pe, cr3: 0x1000, cr4: 1 << 5, efer: 1 << 10 | 1 << 8)
    #expect(throws: TranslationError.tableOutsideRAM(linear: 0x10, table: 0x8000_0000)) {
      try PageWalker(memory: ram, mode: mode).translate(0x10)
    }
  }

  @Test func readsCrossPagesThroughTheirOwnMappings() throws {
    // Linear pages 0 and 1 map to physical 0x30_0000 and 0x10_0000: a read across the boundary.
    store64(0x2000 | 3, 0x1000)
    store64(0x3000 | 3, 0x2000)
    store64(0x4000 | 3, 0x3000)
    store64(0x30_0000 | 3, 0x4000)
    store64(0x10_0000 | 3, 0x4008)
    try ram.write([1, 2], at: 0x30_0ffe)
    try ram.write([3, 4], at: 0x10_0000)
    let mode = PagingMode(cr0: Self.pg | Self.pe, cr3: 0x1000, cr4: 1 << 5, efer: 1 << 10 | 1 << 8)
    #expect(try PageWalker(memory: ram, mode: mode).read(linear: 0xffe, count: 4) == [1, 2, 3, 4])
  }

  /// Pages for a debugger's memory map (SDM vol. 3, 4.6): the size of the entry that maps
  /// the address, writes allowed only if every entry on the way has R/W, fetches forbidden by
  /// XD in any entry when EFER.NXE is set; unmapped spans as large as the missing entry.
  @Test func pagesCarryTheirSizeAndRights() throws {
    // PML4 0x1000 [0] -> PDPT 0x2000: [0] -> PD 0x3000, [1] not present.
    // PD [0]: a 2 MiB page, writable. PD [1] -> PT 0x4000 (read-only in the PDE): PTE [2] -> 0x5000
    // writable with XD.
    store64(0x2000 | 3, 0x1000)
    store64(0x3000 | 3, 0x2000)
    store64(0x20_0000 | 3 | Self.large, 0x3000)
    store64(0x4000 | Self.present, 0x3000 + 8)
    store64(0x5000 | 3 | 1 << 63, 0x4000 + 2 * 8)
    let nxe: UInt64 = 1 << 11
    let longMode: UInt64 = 1 << 10 | 1 << 8
    func walker(efer: UInt64) -> PageWalker {
      PageWalker(memory: ram, mode: PagingMode(cr0: Self.pg | Self.pe, cr3: 0x1000, cr4: 1 << 5, efer: efer))
    }
    let withNX = walker(efer: longMode | nxe)
    #expect(
      try withNX.page(containing: 0x1_2345)
        == GuestPage(start: 0, size: 0x20_0000, mapped: true, writable: true, executable: true))
    let small = 0x20_0000 + 2 * 0x1000 + 0x10
    #expect(
      try withNX.page(containing: UInt64(small))
        == GuestPage(start: 0x20_2000, size: 0x1000, mapped: true, writable: false, executable: false))
    // Without NXE bit 63 is not XD (it is reserved, and the walker does not fault on it).
    #expect(try walker(efer: longMode).page(containing: UInt64(small)).executable)
    // PDPT [1] missing: the 1 GiB it would map; PML4 [1] missing: 512 GiB.
    #expect(
      try withNX.page(containing: 0x4000_0010)
        == GuestPage(start: 0x4000_0000, size: 0x4000_0000, mapped: false, writable: false, executable: false))
    #expect(try withNX.page(containing: 0x80_0000_0000).size == 0x80_0000_0000)
    // The non-canonical hole of 48-bit addresses.
    #expect(
      try withNX.page(containing: 0x1234_0000_0000_0000)
        == GuestPage(
          start: 0x8000_0000_0000, size: 0xffff_0000_0000_0000, mapped: false, writable: false, executable: false))
  }

  @Test func pagesWithoutPagingAnd32BitPaging() throws {
    let flat = PageWalker(memory: ram, mode: PagingMode(cr0: Self.pe, cr3: 0, cr4: 0, efer: 0))
    #expect(
      try flat.page(containing: 0x12_3456)
        == GuestPage(start: 0, size: 0x1_0000_0000, mapped: true, writable: true, executable: true))
    // 32-bit paging with PSE: PDE 1 is a 4 MiB page; PDE 2 is missing (4 MiB unmapped).
    store32(0x0000_0000 | 0x83, 0x1000 + 4)
    let walker = PageWalker(memory: ram, mode: PagingMode(cr0: Self.pg | Self.pe, cr3: 0x1000, cr4: 1 << 4, efer: 0))
    #expect(
      try walker.page(containing: 0x40_1234)
        == GuestPage(start: 0x40_0000, size: 0x40_0000, mapped: true, writable: true, executable: true))
    #expect(
      try walker.page(containing: 0x80_0001)
        == GuestPage(start: 0x80_0000, size: 0x40_0000, mapped: false, writable: false, executable: false))
  }
}
