import Testing

@testable import GuestMemory

@Suite struct GuestRAMTests {
  let ram = try! GuestRAM([
    MemoryRegionSpec(start: 0, size: 0x10000),
    MemoryRegionSpec(start: 0x100000, size: 0x1000),
  ])

  @Test func bytesRoundTripInsideEachRegion() throws {
    try ram.write([1, 2, 3], at: 0xfffd)
    #expect(try ram.read(at: 0xfffd, count: 3) == [1, 2, 3])
    try ram.store(UInt32(0xdead_beef), at: 0x100ffc)
    #expect(try ram.load(UInt32.self, at: 0x100ffc) == 0xdead_beef)
    #expect(try ram.read(at: 0x100ffc, count: 4) == [0xef, 0xbe, 0xad, 0xde])  // little-endian
  }

  @Test func accessesCrossingARegionEndAreRefused() {
    #expect(throws: MemoryError.outOfRange(address: 0xfffe, length: 3)) { try ram.write([1, 2, 3], at: 0xfffe) }
    #expect(throws: MemoryError.self) { try ram.load(UInt64.self, at: 0x100ff9) }
    #expect(throws: MemoryError.self) { try ram.read(at: 0x10000, count: 1) }  // the gap between regions
    #expect(throws: MemoryError.self) { try ram.fill(at: 0x100000, count: 0x1001, with: 0) }
  }

  @Test func addressesNearTheTopOfTheSpaceDoNotOverflow() {
    #expect(throws: MemoryError.self) { try ram.read(at: GuestAddress(.max), count: 2) }
    #expect(throws: MemoryError.self) { try ram.store(UInt16(1), at: GuestAddress(.max - 1)) }
    #expect(ram.contains(GuestAddress(.max), length: .max) == false)
  }

  @Test func containsChecksWholeRanges() {
    #expect(ram.contains(0, length: 0x10000))
    #expect(!ram.contains(0, length: 0x10001))
    #expect(ram.contains(0x100fff))
    #expect(!ram.contains(0x101000))
  }

  @Test func badLayoutsAreRefused() {
    #expect(throws: MemoryError.self) {
      try GuestRAM([MemoryRegionSpec(start: 0, size: 0x2000), MemoryRegionSpec(start: 0x1000, size: 0x1000)])
    }
    #expect(throws: MemoryError.self) { try GuestRAM([MemoryRegionSpec(start: 0, size: 0)]) }
    #expect(throws: MemoryError.self) { try GuestRAM([MemoryRegionSpec(start: GuestAddress(.max - 10), size: 0x1000)]) }
  }

  @Test func readIntoReusesTheCallersBuffer() throws {
    try ram.write([9, 8, 7, 6], at: 0x100)
    var buffer = [UInt8](repeating: 0, count: 4)
    try ram.read(at: 0x100, into: &buffer)
    #expect(buffer == [9, 8, 7, 6])
  }
}
