import TestGuests
import Testing

@testable import Machine

@Suite struct ELFParsingTests {
  @Test func guestELF64IsParsedWithItsEntryAndSymbols() throws {
    let file = try ELFFile(TestGuests.longMode.elf)
    #expect(file.elfClass == .elf64)
    #expect(file.entry == 0x10_0000)  // guest.ld puts _start first, at LOAD_ADDRESS
    #expect(file.segments.count == 1)
    #expect(file.segments[0].physicalAddress == 0x10_0000)
    let start = file.symbols().first { $0.name == "_start" }
    #expect(start?.address == 0x10_0000)
    #expect(file.symbols().contains { $0.name == "serial_init" })
  }

  @Test func guestELF32IsProtectedModeEntry() throws {
    let image = try BootImage.parse(TestGuests.protectedElf32.image)
    #expect(image.entry == .protected32(entry: 0x10_0000))
    #expect(image.multiboot == false)
  }

  @Test func truncatedFilesAreReported() {
    let good = SyntheticELF.haltAtOneMiB.bytes
    #expect(throws: ImageError.self) { try ELFFile(Array(good.prefix(40))) }  // inside the 64-byte header
    #expect(throws: ImageError.self) { try ELFFile(Array(good.prefix(80))) }  // program headers cut
    #expect(throws: ImageError.self) { try ELFFile(Array(good.dropLast())) }  // segment bytes cut
    #expect(throws: ImageError.self) { try ELFFile(Array(good.prefix(5))) }
  }

  @Test func otherMachinesClassesAndTypesAreRefused() {
    var arm = SyntheticELF.haltAtOneMiB
    arm.machine = 183
    #expect(throws: ImageError.wrongMachine("ELF64 for AArch64 (machine 183), but Hyperstep boots x86-64 ELF64 images"))
    {
      try ELFFile(arm.bytes)
    }
    var pie = SyntheticELF.haltAtOneMiB
    pie.type = 3
    #expect(throws: ImageError.self) { try ELFFile(pie.bytes) }
    var badClass = SyntheticELF.haltAtOneMiB.bytes
    badClass[4] = 7
    #expect(throws: ImageError.malformed("unknown ELF class 7")) { try ELFFile(badClass) }
    var bigEndian = SyntheticELF.haltAtOneMiB.bytes
    bigEndian[5] = 2
    #expect(throws: ImageError.self) { try ELFFile(bigEndian) }
  }

  @Test func segmentsMustBeLoadableAndConsistent() {
    let none = SyntheticELF(entry: 0x10_0000, segments: [])
    #expect(throws: ImageError.malformed("no loadable (PT_LOAD) segments")) { try ELFFile(none.bytes) }
    let inverted = SyntheticELF(entry: 0x10_0000, segments: [.init(at: 0x10_0000, bytes: [1, 2, 3], memorySize: 1)])
    #expect(throws: ImageError.self) { try ELFFile(inverted.bytes) }
  }

  @Test func virtualEntryIsTranslatedThroughItsSegment() throws {
    // A higher-half kernel: linked at 0xffffffff80100000, loaded at 1 MiB.
    let elf = SyntheticELF(
      entry: 0xffff_ffff_8010_0000,
      segments: [.init(at: 0x10_0000, bytes: [0xf4], virtualAddress: 0xffff_ffff_8010_0000)])
    let image = try BootImage.parse(elf.bytes)
    #expect(image.entry == .long64(entry: 0x10_0000))
  }
}

@Suite struct MultibootParsingTests {
  @Test func demoGuestHeaderIsFound() throws {
    let header = try MultibootHeader.find(in: TestGuests.multiboot.image)
    #expect(header?.flags == 0x3)
    #expect(header?.addresses == nil)
    let image = try BootImage.parse(TestGuests.multiboot.image)
    #expect(image.multiboot)
    #expect(image.entry == .protected32(entry: try ELFFile(TestGuests.multiboot.elf).entry))
  }

  @Test func addressFieldsLoadARawImageWithItsBSS() throws {
    let bytes = TestGuests.multibootAout.image
    let image = try BootImage.parse(bytes)
    #expect(image.multiboot)
    #expect(image.chunks.count == 1)
    #expect(image.chunks[0].address == 0x10_0000)
    #expect(image.chunks[0].bytes.count == bytes.count)
    #expect(image.chunks[0].memorySize == UInt64(bytes.count) + 0x1000)  // bss_end = image_end + 0x1000
    let start = try ELFFile(TestGuests.multibootAout.elf).symbols().first { $0.name == "_start" }!
    #expect(image.entry == .protected32(entry: start.address))
  }

  func header(flags: UInt32, checksum: UInt32? = nil) -> [UInt8] {
    let magic: UInt32 = 0x1BAD_B002
    let sum = checksum ?? (0 &- magic &- flags)
    return [magic, flags, sum].flatMap { word in (0..<4).map { UInt8(truncatingIfNeeded: word >> (8 * $0)) } }
      + Array(repeating: 0, count: 32)
  }

  @Test func aBadChecksumMeansNoHeader() throws {
    #expect(try MultibootHeader.find(in: header(flags: 0, checksum: 1)) == nil)
  }

  @Test func unknownRequiredFeaturesAreRefused() {
    #expect(throws: ImageError.self) { try MultibootHeader.find(in: header(flags: 1 << 5)) }
  }

  @Test func multibootHeaderWithoutAddressesNeedsAnELF() {
    #expect(throws: ImageError.self) { try BootImage.parse(header(flags: 0), format: .multiboot) }
  }
}

@Suite struct FormatDetectionTests {
  @Test func emptyAndUnknownFilesAreRefused() {
    #expect(throws: ImageError.empty) { try BootImage.parse([]) }
    #expect(throws: ImageError.unrecognized(firstBytes: [0x67, 0x61, 0x72, 0x62])) {
      try BootImage.parse(Array("garbage".utf8))
    }
  }

  @Test func flatBinariesNeedTheirFormatNamed() throws {
    let real = try BootImage.parse(TestGuests.realMode.image, format: .flatReal)
    #expect(real.entry == .real(segment: 0, offset: 0x7c00))
    let high = try BootImage.parse([0xf4], format: .flatReal, loadAddress: 0x2_0000)
    #expect(high.entry == .real(segment: 0x2000, offset: 0))
    #expect(throws: ImageError.self) { try BootImage.parse([0xf4, 0xf4], format: .flatReal, loadAddress: 0xf_ffff) }
    #expect(throws: ImageError.self) { try BootImage.parse([0xf4], format: .flatReal, loadAddress: 0x1_0001) }
    let protected = try BootImage.parse(TestGuests.protectedFlat.image, format: .flatProtected)
    #expect(protected.entry == .protected32(entry: 0x10_0000))
  }
}

@Suite struct PlacementTests {
  let ram = BootLayout.ramRegions(memorySize: 64 << 20)

  func check(_ elf: SyntheticELF) throws {
    try BootImage.parse(elf.bytes).checkPlacement(ram: ram, commandLineLength: 0)
  }

  @Test func aWellPlacedImagePasses() throws {
    try check(.haltAtOneMiB)
  }

  @Test func segmentsOutsideRAMAreRefused() {
    let high = SyntheticELF(entry: 0x10_0000, segments: [.init(at: 0x10_0000, bytes: [0xf4], memorySize: 64 << 20)])
    #expect(throws: ImageError.segmentOutsideRAM(start: 0x10_0000, end: 0x410_0000, ramEnd: 0x400_0000)) {
      try check(high)
    }
    let wraps = SyntheticELF(
      entry: 0x10_0000, segments: [.init(at: 0xffff_ffff_ffff_f000, bytes: [0xf4], memorySize: 0x2000)])
    #expect(throws: ImageError.self) { try check(wraps) }
  }

  @Test func overlappingSegmentsAreRefused() {
    let elf = SyntheticELF(
      entry: 0x10_0000,
      segments: [.init(at: 0x10_0000, bytes: [0xf4], memorySize: 0x2000), .init(at: 0x10_1000, bytes: [0xf4])])
    #expect(throws: ImageError.segmentsOverlap(0x10_0000, 0x10_1000)) { try check(elf) }
  }

  @Test func segmentsOverHyperstepsPageTablesAreRefused() {
    let elf = SyntheticELF(entry: 0x9000, segments: [.init(at: 0x9000, bytes: [0xf4])])
    #expect(throws: ImageError.overlapsBootData(start: 0x9000, end: 0x9001, what: "identity-mapped page tables")) {
      try check(elf)
    }
  }

  @Test func entryOutsideRAMIsRefused() {
    let elf = SyntheticELF(entry: 0x5000_0000, segments: [.init(at: 0x10_0000, bytes: [0xf4])])
    #expect(throws: ImageError.entryOutsideRAM(0x5000_0000)) { try check(elf) }
  }

  @Test func ramAboveThreeGiBMovesAboveFourGiB() {
    let regions = BootLayout.ramRegions(memorySize: 4 << 30)
    #expect(regions.count == 2)
    #expect(regions[0].start == 0 && regions[0].size == 0xc000_0000)
    #expect(regions[1].start == 0x1_0000_0000 && regions[1].size == 0x4000_0000)
  }
}

@Suite struct ConfigurationValidationTests {
  func configuration(memory: UInt64 = 64 << 20, cpus: Int = 1) -> MachineConfiguration {
    var configuration = MachineConfiguration(kernel: SyntheticELF.haltAtOneMiB.bytes, kernelName: "test.elf")
    configuration.memorySize = memory
    configuration.cpuCount = cpus
    return configuration
  }

  func expectBadInput(_ configuration: MachineConfiguration, _ fragment: String) {
    do {
      _ = try Machine(configuration: configuration, console: CapturedConsole())
      Issue.record("expected the configuration to be refused")
    } catch {
      #expect(error.isBadInput)
      #expect(error.description.contains(fragment), "\(error.description)")
    }
  }

  @Test func memorySizesOutsideTheUsableRangeAreRefused() {
    expectBadInput(configuration(memory: 0), "too small")
    expectBadInput(configuration(memory: 1 << 20), "too small")
    expectBadInput(configuration(memory: (64 << 20) + 1), "4 KiB pages")
    expectBadInput(configuration(memory: 1 << 50), "more than this host has")
  }

  @Test func vcpuCountsOutsideTheUsableRangeAreRefused() {
    expectBadInput(configuration(cpus: 0), "at least 1")
    expectBadInput(configuration(cpus: -3), "at least 1")
    expectBadInput(configuration(cpus: 100_000), "255")
  }

  @Test func imageErrorsNameTheFile() {
    var bad = configuration()
    bad.kernel = Array("not a kernel".utf8)
    expectBadInput(bad, "test.elf: not an ELF")
  }
}

@Suite struct LinuxKernelParsingTests {
  @Test func headerFieldsAndThe64BitEntry() throws {
    let kernel = try LinuxKernel(syntheticBzImage())
    #expect(kernel.protocolVersion == 0x20f)
    #expect(kernel.payloadOffset == 5 * 512)
    #expect(kernel.loadAddress == 0x100_0000)
    #expect(kernel.entry == 0x100_0200)  // startup_64 is 0x200 into the protected-mode kernel
    #expect(kernel.initSize == 0x40_0000)
    #expect(kernel.commandLineMaximum == 2047)
    #expect(kernel.header.count == 0x26c - 0x1f1)
    let image = try BootImage.parse(syntheticBzImage(), linuxDecompressor: .guest)
    #expect(image.entry == .long64(entry: 0x100_0200))
    #expect(image.chunks[0].memorySize == 0x40_0000)  // init_size, not just the file bytes
    #expect(image.linux == kernel)
  }

  @Test func tooOldOrNot64BitOrMalformedIsRefused() {
    #expect(throws: ImageError.self) { try LinuxKernel(syntheticBzImage(version: 0x20b)) }
    #expect(throws: ImageError.self) { try LinuxKernel(syntheticBzImage(xloadflags: 0)) }
    var unsigned = syntheticBzImage()
    unsigned[0x1fe] = 0
    #expect(throws: ImageError.malformed("bzImage boot sector signature 0xaa55 is missing")) {
      try LinuxKernel(unsigned)
    }
    #expect(throws: ImageError.self) { try LinuxKernel(Array(syntheticBzImage().prefix(5 * 512))) }
  }

  /// The default path unpacks the payload the header names; a bzImage whose header names
  /// none (this synthetic one) is refused with the way out.
  @Test func theHostDecompressorNeedsThePayloadTheHeaderNames() {
    #expect(
      throws: ImageError.unsupported(
        "the bzImage header records no payload (boot protocol 2.08+); boot it with --linux-decompressor guest")
    ) { try BootImage.parse(syntheticBzImage()) }
  }

  @Test func aSetupSectorCountOfZeroMeansFour() throws {
    #expect(try LinuxKernel(syntheticBzImage(setupSectors: 0)).payloadOffset == 5 * 512)
  }

  @Test func initrdGoesHighButAboveTheKernel() throws {
    let kernel = try LinuxKernel(syntheticBzImage())
    let image = try BootImage.parse(syntheticBzImage(), linuxDecompressor: .guest)
    // 64 MiB of RAM: the initrd ends at the top, page-aligned.
    #expect(try Machine.initrdAddress(size: 0x1800, kernel: kernel, image: image, memorySize: 64 << 20) == 0x3ffe000)
    // 20 MiB of RAM: the kernel with its init_size ends at 20 MiB, so nothing fits above it.
    #expect(throws: MachineError.self) {
      try Machine.initrdAddress(size: 0x1000, kernel: kernel, image: image, memorySize: 20 << 20)
    }
  }

  @Test func commandLinesLongerThanTheKernelTakesAreRefused() throws {
    let image = try BootImage.parse(syntheticBzImage(), linuxDecompressor: .guest)
    #expect(throws: ImageError.commandLineTooLong(length: 3000, maximum: 2047)) {
      try image.checkPlacement(ram: BootLayout.ramRegions(memorySize: 64 << 20), commandLineLength: 3000)
    }
  }
}
