/// A parsed ELF executable: just what a loader and a symbolizer need.
public struct ELFFile: Sendable {
  public enum Class: Sendable { case elf32, elf64 }

  public struct LoadSegment: Sendable, Equatable {
    public var physicalAddress: UInt64
    public var virtualAddress: UInt64
    public var fileOffset: UInt64
    public var fileSize: UInt64
    public var memorySize: UInt64
  }

  public struct Symbol: Sendable, Equatable {
    public var name: String
    public var address: UInt64
    public var size: UInt64
    public var isFunction: Bool
  }

  public let elfClass: Class
  public let entry: UInt64
  public let segments: [LoadSegment]
  /// The owners named by the file's notes (PT_NOTE segments): "GNU", "Xen", "Linux"...
  public let noteOwners: Set<String>
  let reader: ByteReader
  let sectionTable: (offset: Int, entrySize: Int, count: Int)

  static let machineNames: [UInt16: String] = [
    2: "SPARC", 3: "i386", 8: "MIPS", 20: "PowerPC", 21: "PowerPC64", 22: "S/390", 40: "ARM", 50: "IA-64",
    62: "x86-64", 183: "AArch64", 243: "RISC-V", 258: "LoongArch",
  ]

  /// Whether `bytes` start with the ELF magic.
  public static func hasMagic(_ bytes: [UInt8]) -> Bool {
    bytes.count >= 4 && bytes[0] == 0x7f && bytes[1] == 0x45 && bytes[2] == 0x4c && bytes[3] == 0x46
  }

  /// The processor an image is for: x86 (ELF32 i386 or ELF64 x86-64) or AArch64 (ELF64 only).
  public enum Architecture: Sendable { case x86, aarch64 }

  public init(_ bytes: [UInt8], for architecture: Architecture = .x86) throws(ImageError) {
    let r = ByteReader(bytes: bytes)
    guard Self.hasMagic(bytes) else { throw .unrecognized(firstBytes: Array(bytes.prefix(4))) }
    guard let classByte = r.u8(4), let dataByte = r.u8(5) else { throw .truncated("ELF identification is cut short") }
    switch classByte {
    case 1: elfClass = .elf32
    case 2: elfClass = .elf64
    default: throw .malformed("unknown ELF class \(classByte)")
    }
    guard dataByte == 1 else {
      throw dataByte == 2
        ? .unsupported("big-endian ELF; x86 needs little-endian") : .malformed("unknown ELF data encoding \(dataByte)")
    }
    let is64 = elfClass == .elf64
    guard r.has(0, is64 ? 64 : 52) else {
      throw .truncated("the ELF header needs \(is64 ? 64 : 52) bytes, the file has \(bytes.count)")
    }
    // Each field is read with its own check: nothing below relies on an earlier test to
    // make a read or an addition safe.
    func half(_ offset: Int, _ what: String) throws(ImageError) -> Int {
      Int(try r.require(r.u16(offset).map(UInt64.init), what))
    }
    func word(_ offset: Int, _ what: String) throws(ImageError) -> UInt64 {
      try r.require(r.word(offset, wide: is64), what)
    }
    let type = try half(16, "e_type")
    let machine = try half(18, "e_machine")
    let expected = architecture == .aarch64 ? 183 : (is64 ? 62 : 3)
    guard machine == expected && (is64 || architecture == .x86) else {
      let name = Self.machineNames[UInt16(machine)].map { "\($0) (machine \(machine))" } ?? "machine \(machine)"
      let wanted = architecture == .aarch64 ? "AArch64 ELF64" : (is64 ? "x86-64 ELF64" : "i386 ELF32")
      throw .wrongMachine("ELF\(is64 ? 64 : 32) for \(name), but Hyperstep boots \(wanted) images")
    }
    guard type == 2 else {
      throw type == 3
        ? .unsupported("position-independent ELF (ET_DYN); link the kernel at a fixed address")
        : .unsupported("ELF type \(type) is not an executable (ET_EXEC)")
    }
    entry = try word(24, "e_entry")
    let programOffset = try word(is64 ? 32 : 28, "e_phoff")
    let programEntrySize = try half(is64 ? 54 : 42, "e_phentsize")
    let programCount = try half(is64 ? 56 : 44, "e_phnum")
    let sectionOffset = try word(is64 ? 40 : 32, "e_shoff")
    let sectionEntrySize = try half(is64 ? 58 : 46, "e_shentsize")
    let sectionCount = try half(is64 ? 60 : 48, "e_shnum")
    guard programEntrySize >= (is64 ? 56 : 32) || programCount == 0 else {
      throw .malformed("program header entries are \(programEntrySize) bytes")
    }
    guard r.has(programOffset, UInt64(programCount) * UInt64(programEntrySize)),
      let programStart = r.index(programOffset)
    else {
      throw .truncated(
        "the program header table (\(programCount) entries at 0x\(hex(programOffset))) runs past the end")
    }
    var segments: [LoadSegment] = []
    var noteOwners: Set<String> = []
    for index in 0..<programCount {
      let base = programStart + index * programEntrySize
      func field(_ offset64: Int, _ offset32: Int, _ what: String) throws(ImageError) -> UInt64 {
        try r.require(r.word(base + (is64 ? offset64 : offset32), wide: is64), "program header \(index) \(what)")
      }
      let kind = try r.require(r.u32(base).map(UInt64.init), "program header \(index)")
      if kind == 4 {  // PT_NOTE: only the owners' names are kept; a malformed note ends the walk
        noteOwners.formUnion(
          Self.noteOwners(r, offset: try field(8, 4, "p_offset"), size: try field(32, 16, "p_filesz")))
      }
      guard kind == 1 else { continue }  // PT_LOAD
      let segment = LoadSegment(
        physicalAddress: try field(24, 12, "p_paddr"), virtualAddress: try field(16, 8, "p_vaddr"),
        fileOffset: try field(8, 4, "p_offset"), fileSize: try field(32, 16, "p_filesz"),
        memorySize: try field(40, 20, "p_memsz"))
      guard segment.fileSize <= segment.memorySize else {
        throw .malformed("segment at 0x\(hex(segment.physicalAddress)) has more file bytes than memory bytes")
      }
      guard r.has(segment.fileOffset, segment.fileSize) else {
        throw .truncated(
          "segment at 0x\(hex(segment.physicalAddress)) needs file bytes 0x\(hex(segment.fileOffset))+0x\(hex(segment.fileSize))"
        )
      }
      guard !segment.physicalAddress.addingReportingOverflow(segment.memorySize).overflow,
        !segment.virtualAddress.addingReportingOverflow(segment.memorySize).overflow
      else {
        throw .malformed(
          "segment at 0x\(hex(segment.physicalAddress)) of 0x\(hex(segment.memorySize)) bytes runs past the end of the address space"
        )
      }
      if segment.memorySize > 0 { segments.append(segment) }
    }
    guard !segments.isEmpty else { throw .malformed("no loadable (PT_LOAD) segments") }
    self.segments = segments
    self.noteOwners = noteOwners
    self.reader = r
    let tableFits =
      sectionEntrySize >= (is64 ? 64 : 40) && r.has(sectionOffset, UInt64(sectionCount) * UInt64(sectionEntrySize))
    if tableFits, let start = r.index(sectionOffset) {
      sectionTable = (start, sectionEntrySize, sectionCount)
    } else {
      sectionTable = (0, 0, 0)
    }
  }

  /// The owner names of the notes in `size` bytes at `offset`: each note is a 12-byte header
  /// (name size, descriptor size, type), the name and the descriptor, each padded to 4 bytes.
  static func noteOwners(_ r: ByteReader, offset: UInt64, size: UInt64) -> Set<String> {
    var owners: Set<String> = []
    guard r.has(offset, size), let start = r.index(offset), let count = r.index(size) else { return owners }
    var position = start
    let end = start + count
    while position + 12 <= end, let nameSize = r.u32(position), let descriptorSize = r.u32(position + 4) {
      let nameEnd = position + 12 + Int(nameSize)
      let next = position + 12 + (Int(nameSize) + 3) / 4 * 4 + (Int(descriptorSize) + 3) / 4 * 4
      guard nameEnd <= end, next <= end, next > position else { break }
      let name = (position + 12..<nameEnd).compactMap { r.u8($0) }.prefix { $0 != 0 }
      owners.insert(String(decoding: name, as: UTF8.self))
      position = next
    }
    return owners
  }

  /// Whether this is a Linux kernel's vmlinux: an ELF64 whose notes include the kernel's own
  /// ("Linux", its version and build salt) or Xen's guest-OS notes, which x86 kernels carry.
  public var isLinuxKernel: Bool {
    elfClass == .elf64 && (noteOwners.contains("Linux") || noteOwners.contains("Xen"))
  }

  /// The bytes of a segment that come from the file (checked to be in the file when parsed).
  public func fileBytes(of segment: LoadSegment) -> ArraySlice<UInt8> {
    guard let start = reader.index(segment.fileOffset), let count = reader.index(segment.fileSize),
      count <= reader.bytes.count - start
    else { return [] }
    return reader.bytes[start..<start + count]
  }

  /// Where `virtualAddress` is loaded physically, through the segment that covers it
  /// (segments were checked not to wrap around the address space).
  public func physicalAddress(ofVirtual virtualAddress: UInt64) -> UInt64? {
    for segment in segments
    where virtualAddress >= segment.virtualAddress && virtualAddress - segment.virtualAddress < segment.memorySize {
      return segment.physicalAddress + (virtualAddress - segment.virtualAddress)
    }
    return nil
  }

  /// Symbols from the static symbol table (SHT_SYMTAB), skipping section, file and mapping
  /// symbols.
  /// Returns an empty list for stripped files; unreadable tables and entries are skipped.
  public func symbols() -> [Symbol] {
    let is64 = elfClass == .elf64
    let r = reader
    var result: [Symbol] = []
    for index in 0..<sectionTable.count {
      let header = sectionTable.offset + index * sectionTable.entrySize
      guard r.u32(header + 4) == 2 else { continue }  // SHT_SYMTAB
      guard let offset = r.word(header + (is64 ? 24 : 16), wide: is64),
        let size = r.word(header + (is64 ? 32 : 20), wide: is64),
        let link = r.u32(header + (is64 ? 40 : 24)).map(Int.init),
        let entrySize = r.word(header + (is64 ? 56 : 36), wide: is64).flatMap(r.index),
        link < sectionTable.count, entrySize >= (is64 ? 24 : 16), r.has(offset, size),
        let start = r.index(offset), let end = r.index(offset + size),
        let strings = r.word(sectionTable.offset + link * sectionTable.entrySize + (is64 ? 24 : 16), wide: is64)
          .flatMap(r.index)
      else { continue }
      for entry in stride(from: start, to: end - entrySize + 1, by: entrySize) {
        guard let nameOffset = r.u32(entry).map(Int.init), let info = r.u8(entry + (is64 ? 4 : 12)),
          let value = r.word(entry + (is64 ? 8 : 4), wide: is64),
          let symbolSize = r.word(entry + (is64 ? 16 : 8), wide: is64),
          let section = r.u16(entry + (is64 ? 6 : 14))
        else { continue }
        let kind = info & 0xf
        guard nameOffset != 0, kind != 3, kind != 4,  // STT_SECTION, STT_FILE
          section != 0, section != 0xfff1,  // undefined and absolute (linker-script constants)
          let name = r.cString(strings + nameOffset), !name.isEmpty,
          // AArch64's mapping symbols ($x code, $d data: AAELF64 5.7.2) mark, they do not name.
          !name.hasPrefix("$")
        else { continue }
        result.append(Symbol(name: name, address: value, size: symbolSize, isFunction: kind == 2))
      }
    }
    return result
  }
}
