/// The processor mode a kernel expects at its entry point.
public enum EntryMode: Sendable, Equatable {
  /// 16-bit real mode at CS:IP.
  case real(segment: UInt16, offset: UInt16)
  /// 32-bit protected mode with flat segments and paging off.
  case protected32(entry: UInt64)
  /// 64-bit long mode with identity-mapped page tables.
  case long64(entry: UInt64)

  var entryAddress: UInt64 {
    switch self {
    case .real(let segment, let offset): UInt64(segment) << 4 + UInt64(offset)
    case .protected32(let entry), .long64(let entry): entry
    }
  }
}

/// What to copy into guest memory and how to enter it, independent of the file format.
public struct BootImage: Sendable {
  public struct Chunk: Sendable, Equatable {
    public var address: UInt64
    public var bytes: ArraySlice<UInt8>
    /// At least `bytes.count`; the rest is zero-filled (BSS).
    public var memorySize: UInt64
  }

  public var chunks: [Chunk]
  public var entry: EntryMode
  /// Multiboot kernels get EAX/EBX and an information structure.
  public var multiboot: Bool
  /// Linux kernels get the zero page (boot_params) in RSI.
  public var linux: LinuxKernel? = nil
  /// What format was recognised, for messages.
  public var formatName: String
}

/// How the user asked for the file to be treated.
public enum ImageFormat: String, Sendable, CaseIterable {
  case auto
  case elf
  case multiboot
  case flatReal = "flat-real"
  case flatProtected = "flat-protected"
}

extension BootImage {
  /// Recognises and parses a kernel image.
  ///
  /// Automatic detection follows QEMU's `-kernel`: a Multiboot header wins, then an ELF
  /// executable. Raw binaries have no magic number, so they must be asked for by format.
  public static func parse(
    _ bytes: [UInt8], format: ImageFormat = .auto, loadAddress: UInt64? = nil,
    linuxDecompressor: LinuxDecompressor = .host
  ) throws(ImageError) -> BootImage {
    guard !bytes.isEmpty else { throw .empty }
    switch format {
    case .flatReal:
      // An ELF of 16-bit code (what a linker makes before objcopy turns it into a .bin) is
      // loaded as it was linked.
      if ELFFile.hasMagic(bytes) {
        guard loadAddress == nil else {
          throw .unsupported("--load-address is for raw binaries; an ELF file is loaded where it was linked")
        }
        return try elf(ELFFile(bytes), realMode: true)
      }
      return try flat(bytes, realMode: true, at: loadAddress ?? bootSectorAddress)
    case .flatProtected:
      return try flat(bytes, realMode: false, at: loadAddress ?? 0x10_0000)
    case .multiboot:
      guard let header = try MultibootHeader.find(in: bytes) else {
        throw .malformed("no Multiboot header (magic 0x1BADB002 with a valid checksum) in the first 8 KiB")
      }
      return try multiboot(bytes, header: header)
    case .elf:
      return try elf(ELFFile(bytes))
    case .auto:
      if let header = try MultibootHeader.find(in: bytes) { return try multiboot(bytes, header: header) }
      if ELFFile.hasMagic(bytes) {
        let file = try ELFFile(bytes)
        return file.isLinuxKernel ? try vmlinux(file) : try elf(file)
      }
      if LinuxKernel.hasMagic(bytes) { return try linux(bytes, decompressor: linuxDecompressor) }
      throw .unrecognized(firstBytes: Array(bytes.prefix(4)))
    }
  }

  static func linux(_ bytes: [UInt8], decompressor: LinuxDecompressor) throws(ImageError) -> BootImage {
    let kernel = try LinuxKernel(bytes)
    if decompressor == .host { return try unpackedLinux(bytes, kernel: kernel) }
    let payload = bytes[kernel.payloadOffset...]
    let chunk = Chunk(
      address: kernel.loadAddress, bytes: payload, memorySize: max(UInt64(payload.count), kernel.initSize))
    var image = BootImage(
      chunks: [chunk], entry: .long64(entry: kernel.entry), multiboot: false, formatName: "Linux bzImage")
    image.linux = kernel
    return image
  }

  static func flat(_ bytes: [UInt8], realMode: Bool, at address: UInt64) throws(ImageError) -> BootImage {
    let chunk = Chunk(address: address, bytes: bytes[...], memorySize: UInt64(bytes.count))
    let end = try end(of: chunk)
    guard realMode else {
      // Entered with a 32-bit EIP: an image above 4 GiB could never run.
      guard end <= 0x1_0000_0000 else {
        throw .unsupported("a protected-mode image must end below 4 GiB, this one ends at 0x\(hex(end))")
      }
      return BootImage(
        chunks: [chunk], entry: .protected32(entry: address), multiboot: false,
        formatName: "flat binary (protected mode)")
    }
    return BootImage(
      chunks: [chunk], entry: try realModeEntry(at: address, imageEnd: end), multiboot: false,
      formatName: "flat binary (real mode)")
  }

  /// Where a chunk ends, or a bad-input error when it would wrap around the address space.
  static func end(of chunk: Chunk) throws(ImageError) -> UInt64 {
    let (end, overflow) = chunk.address.addingReportingOverflow(max(chunk.memorySize, UInt64(chunk.bytes.count)))
    guard !overflow else {
      throw .malformed(
        "an image of \(chunk.bytes.count) bytes at 0x\(hex(chunk.address)) runs past the end of the address space")
    }
    return end
  }

  /// Real mode reaches the first MiB only; enter at 0:addr like a BIOS does for a boot sector,
  /// or at addr/16:0 for entry points above 64 KiB.
  static func realModeEntry(at address: UInt64, imageEnd: UInt64) throws(ImageError) -> EntryMode {
    guard imageEnd <= 0x10_0000, address < 0x10_0000 else {
      throw .unsupported(
        "a real-mode image must lie below 1 MiB, this one ends at 0x\(hex(imageEnd)) (entry 0x\(hex(address)))")
    }
    if address < 0x1_0000 { return .real(segment: 0, offset: UInt16(address)) }
    guard address % 16 == 0 else {
      throw .unsupported("a real-mode entry point above 64 KiB must be 16-byte aligned, this one is 0x\(hex(address))")
    }
    return .real(segment: UInt16(address >> 4), offset: 0)
  }

  /// The BIOS loads a boot sector here and jumps to it in real mode.
  static let bootSectorAddress: UInt64 = 0x7c00

  /// `realMode`: the ELF holds 16-bit code (asked for with `--kernel-format flat-real`, or an
  /// ELF32 whose entry point is the boot-sector address): its segments are loaded where they
  /// were linked and entered in real mode.
  static func elf(_ file: ELFFile, realMode: Bool = false) throws(ImageError) -> BootImage {
    let chunks = file.segments.map {
      Chunk(address: $0.physicalAddress, bytes: file.fileBytes(of: $0), memorySize: $0.memorySize)
    }
    let entry = file.physicalAddress(ofVirtual: file.entry) ?? file.entry
    switch file.elfClass {
    case .elf32 where realMode || entry == bootSectorAddress:
      var imageEnd: UInt64 = 0
      for chunk in chunks { imageEnd = max(imageEnd, try end(of: chunk)) }
      return BootImage(
        chunks: chunks, entry: try realModeEntry(at: entry, imageEnd: imageEnd), multiboot: false,
        formatName: "ELF32 (real mode)")
    case .elf32:
      return BootImage(chunks: chunks, entry: .protected32(entry: entry), multiboot: false, formatName: "ELF32")
    case .elf64 where realMode:
      throw .unsupported("an ELF64 image cannot be entered in real mode (--kernel-format flat-real)")
    case .elf64: return BootImage(chunks: chunks, entry: .long64(entry: entry), multiboot: false, formatName: "ELF64")
    }
  }

  static func multiboot(_ bytes: [UInt8], header: MultibootHeader) throws(ImageError) -> BootImage {
    if let a = header.addresses {
      // The a.out kludge: the file is loaded from the header's position backwards to load_addr.
      guard a.header >= a.load, UInt64(a.header - a.load) <= UInt64(header.offset) else {
        throw .malformed(
          "Multiboot load_addr 0x\(hex(a.load)) is not at or before header_addr 0x\(hex(a.header)) within the file")
      }
      let fileStart = header.offset - Int(a.header - a.load)
      let fileEnd: Int
      if a.loadEnd == 0 {
        fileEnd = bytes.count
      } else {
        guard a.loadEnd >= a.load else { throw .malformed("Multiboot load_end_addr is below load_addr") }
        fileEnd = fileStart + Int(a.loadEnd - a.load)
        guard fileEnd <= bytes.count else {
          throw .truncated("Multiboot load_end_addr asks for more bytes than the file has")
        }
      }
      let loadSize = UInt64(fileEnd - fileStart)
      var memorySize = loadSize
      if a.bssEnd != 0 {
        guard UInt64(a.bssEnd) >= UInt64(a.load) + loadSize else {
          throw .malformed("Multiboot bss_end_addr is below the loaded image")
        }
        memorySize = UInt64(a.bssEnd - a.load)
      }
      let chunk = Chunk(address: UInt64(a.load), bytes: bytes[fileStart..<fileEnd], memorySize: memorySize)
      return BootImage(
        chunks: [chunk], entry: .protected32(entry: UInt64(a.entry)), multiboot: true,
        formatName: "Multiboot (a.out kludge)")
    }
    let file = try ELFFile(bytes)
    guard file.elfClass == .elf32 else {
      throw .unsupported("a Multiboot v1 kernel must be ELF32 or use the header's address fields; this one is ELF64")
    }
    var image = try elf(file)
    image.multiboot = true
    image.formatName = "Multiboot ELF32"
    return image
  }
}
