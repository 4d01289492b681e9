import Testing

@testable import GuestMemory

/// The interpreter's fast accessors: the largest writable region by one comparison, the others
/// through the general search, nil/false (never a trap) outside RAM.
@Suite struct PhysicalAccessTests {
  let ram = try! GuestRAM([
    MemoryRegionSpec(start: 0x1000, size: 0x1000),
    MemoryRegionSpec(start: 0x10_0000, size: 0x10_0000),
    MemoryRegionSpec(start: 0xffff_0000, size: 0x1_0000, readOnly: true),
  ])

  @Test func theLargestWritableRegionIsTheFastOne() {
    #expect(ram.fastStart == 0x10_0000 && ram.fastSize == 0x10_0000)
  }

  @Test func roundTripsInEveryRegion() throws {
    #expect(ram.storePhysical(UInt64(0x1122_3344_5566_7788), at: 0x10_0ff8))
    #expect(ram.loadPhysical(UInt64.self, at: 0x10_0ff8) == 0x1122_3344_5566_7788)
    #expect(try ram.load(UInt8.self, at: 0x10_0ff8) == 0x88)  // little-endian, same bytes as load()
    #expect(ram.storePhysical(UInt16(0xbeef), at: 0x1ffe))  // the small region, via the search
    #expect(ram.loadPhysical(UInt16.self, at: 0x1ffe) == 0xbeef)
    #expect(ram.loadPhysical(UInt8.self, at: 0xffff_fff0) == 0)  // ROM reads work
    #expect(!ram.storePhysical(UInt8(1), at: 0xffff_fff0))  // guest writes to ROM do not
    #expect(ram.loadPhysical(UInt8.self, at: 0xffff_fff0) == 0)
  }

  @Test func outsideRAMIsNilOrFalse() {
    #expect(ram.loadPhysical(UInt32.self, at: 0x3000) == nil)  // a gap
    #expect(ram.loadPhysical(UInt64.self, at: 0x1f_fffc) == nil)  // straddles the end
    #expect(!ram.storePhysical(UInt64(1), at: 0x1f_fffc))
    #expect(ram.loadPhysical(UInt64.self, at: .max) == nil)
    #expect(!ram.storePhysical(UInt8(1), at: .max))
  }
}
