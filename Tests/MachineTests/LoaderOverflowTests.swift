import Machine
import TestGuests
import Testing

/// User-controlled numbers (load addresses, ELF and bzImage header fields) that would overflow
/// the loaders' arithmetic are bad input with a message, never a trap (issue 9, item 2).
@Suite struct LoaderOverflowTests {
  func expectMessage(_ fragment: String, _ body: () throws -> BootImage) {
    do {
      _ = try body()
      Issue.record("no error; expected one mentioning '\(fragment)'")
    } catch let error as ImageError {
      #expect(error.description.contains(fragment), "\(error)")
    } catch {
      Issue.record("not an ImageError: \(error)")
    }
  }

  @Test func flatImagesAtTheTopOfTheAddressSpaceAreRefused() {
    let image = TestGuests.realMode.image
    expectMessage("runs past the end of the address space") {
      try BootImage.parse(image, format: .flatReal, loadAddress: .max)
    }
    expectMessage("runs past the end of the address space") {
      try BootImage.parse(image, format: .flatProtected, loadAddress: 0xffff_ffff_ffff_fff0)
    }
    // A protected-mode image is entered with a 32-bit EIP: above 4 GiB it could never run.
    expectMessage("must end below 4 GiB") {
      try BootImage.parse(image, format: .flatProtected, loadAddress: 0x1_0000_0000)
    }
    expectMessage("must lie below 1 MiB") { try BootImage.parse(image, format: .flatReal, loadAddress: 0x10_0000) }
  }

  @Test func elfSegmentsThatWrapAroundAreRefused() {
    let elf = SyntheticELF(
      entry: 0xffff_ffff_ffff_f000, segments: [.init(at: 0xffff_ffff_ffff_f000, bytes: [0xf4], memorySize: 0x2000)])
    expectMessage("runs past the end of the address space") { try BootImage.parse(elf.bytes) }
  }

  @Test func aBzImageWhosePreferredAddressLeavesNoRoomIsRefused() {
    var bytes = syntheticBzImage()
    for index in 0..<8 { bytes[0x258 + index] = 0xff }  // pref_address = 2^64 - 1
    expectMessage("pref_address 0xffffffffffffffff") { try BootImage.parse(bytes) }
  }

  /// A symbol table whose string table lies past the end of the file (sh_offset all ones):
  /// the symbols are unreadable, so there are none, and nothing traps.
  @Test func anUnreadableStringTableGivesNoSymbols() throws {
    var bytes = TestGuests.longMode.elf
    let original = try ELFFile(bytes)
    #expect(!original.symbols().isEmpty)
    func u64(_ offset: Int) -> Int {
      (0..<8).reduce(0) { $0 | Int(bytes[offset + $1]) << (8 * $1) }
    }
    let sectionTable = u64(0x28)  // e_shoff
    let entrySize = Int(bytes[0x3a]) | Int(bytes[0x3b]) << 8
    let count = Int(bytes[0x3c]) | Int(bytes[0x3d]) << 8
    var patched = 0
    for index in 0..<count {
      let header = sectionTable + index * entrySize
      guard bytes[header + 4] == 3 else { continue }  // SHT_STRTAB
      for byte in 0..<8 { bytes[header + 24 + byte] = 0xff }  // sh_offset
      patched += 1
    }
    #expect(patched > 0)
    #expect(try ELFFile(bytes).symbols().isEmpty)
  }
}

/// ELF files of 16-bit code, as a linker makes them before objcopy (issue 9, item 10).
@Suite struct RealModeELFTests {
  /// real_mode.S is linked at 0x7c00 (`// guest: flat-real 0x7c00`; llvm-objdump: start
  /// address 0x00007c00), the boot-sector address, so its ELF is entered there in real mode.
  @Test func anELFEnteredAtTheBootSectorAddressRunsInRealMode() throws {
    let image = try BootImage.parse(TestGuests.realMode.elf)
    #expect(image.entry == .real(segment: 0, offset: 0x7c00))
    #expect(image.chunks.map(\.address) == [0x7c00])
  }

  @Test func flatRealLoadsAnyELFAsLinked() throws {
    // protected_elf32 is linked at 1 MiB: too high for real mode, and the error says so.
    #expect(throws: ImageError.self) { try BootImage.parse(TestGuests.protectedElf32.elf, format: .flatReal) }
    let image = try BootImage.parse(TestGuests.realMode.elf, format: .flatReal)
    #expect(image.entry == .real(segment: 0, offset: 0x7c00))
    #expect(throws: ImageError.self) {
      try BootImage.parse(TestGuests.realMode.elf, format: .flatReal, loadAddress: 0x8000)
    }
    #expect(throws: ImageError.self) { try BootImage.parse(TestGuests.longMode.elf, format: .flatReal) }
  }

  @Test func otherELF32KernelsStayInProtectedMode() throws {
    let image = try BootImage.parse(TestGuests.protectedElf32.elf)
    #expect(image.entry == .protected32(entry: 0x10_0000))
  }
}
