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
  let reader: ByteReader
  let sectionTable: (offset: UInt64, entrySize: Int, count: Int)

  static let machineNames: [UInt16: String] = [
    2: "SPARC", 3: "i386", 8: "MIPS", 20: "PowerPC", 21: "PowerPC64", 22: "S/390", 40: "ARM", 50: "IA-64",
    62: "x86-64", 183: "AArch64", 243: "RISC-V", 258: "LoongArch",
  ]

  /// Whether `bytes` start with the ELF magic.
  public static func hasMagic(_ bytes: [UInt8]) -> Bool {
    bytes.count >= 4 && bytes[0] == 0x7f && bytes[1] == 0x45 && bytes[2] == 0x4c && bytes[3] == 0x46
  }

  public init(_ bytes: [UInt8]) throws(ImageError) {
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
    let type = r.u16(16)!
    let machine = r.u16(18)!
    let expected: UInt16 = is64 ? 62 : 3
    guard machine == expected else {
      let name = Self.machineNames[machine].map { "\($0) (machine \(machine))" } ?? "machine \(machine)"
      throw .wrongMachine(
        "ELF\(is64 ? 64 : 32) for \(name), but Hyperstep boots \(is64 ? "x86-64" : "i386") \(is64 ? "ELF64" : "ELF32") images"
      )
    }
    guard type == 2 else {
      throw type == 3
        ? .unsupported("position-independent ELF (ET_DYN); link the kernel at a fixed address")
        : .unsupported("ELF type \(type) is not an executable (ET_EXEC)")
    }
    entry = is64 ? r.u64(24)! : UInt64(r.u32(24)!)
    let programOffset = is64 ? r.u64(32)! : UInt64(r.u32(28)!)
    let programEntrySize = Int(r.u16(is64 ? 54 : 42)!)
    let programCount = Int(r.u16(is64 ? 56 : 44)!)
    let sectionOffset = is64 ? r.u64(40)! : UInt64(r.u32(32)!)
    let sectionEntrySize = Int(r.u16(is64 ? 58 : 46)!)
    let sectionCount = Int(r.u16(is64 ? 60 : 48)!)
    guard programEntrySize >= (is64 ? 56 : 32) || programCount == 0 else {
      throw .malformed("program header entries are \(programEntrySize) bytes")
    }
    guard r.has(programOffset, UInt64(programCount) * UInt64(programEntrySize)) else {
      throw .truncated(
        "the program header table (\(programCount) entries at 0x\(hex(programOffset))) runs past the end")
    }
    var segments: [LoadSegment] = []
    for index in 0..<programCount {
      let base = Int(programOffset) + index * programEntrySize
      guard r.u32(base)! == 1 else { continue }  // PT_LOAD only
      let segment =
        is64
        ? LoadSegment(
          physicalAddress: r.u64(base + 24)!, virtualAddress: r.u64(base + 16)!, fileOffset: r.u64(base + 8)!,
          fileSize: r.u64(base + 32)!, memorySize: r.u64(base + 40)!)
        : LoadSegment(
          physicalAddress: UInt64(r.u32(base + 12)!), virtualAddress: UInt64(r.u32(base + 8)!),
          fileOffset: UInt64(r.u32(base + 4)!), fileSize: UInt64(r.u32(base + 16)!),
          memorySize: UInt64(r.u32(base + 20)!))
      guard segment.fileSize <= segment.memorySize else {
        throw .malformed("segment at 0x\(hex(segment.physicalAddress)) has more file bytes than memory bytes")
      }
      guard r.has(segment.fileOffset, segment.fileSize) else {
        throw .truncated(
          "segment at 0x\(hex(segment.physicalAddress)) needs file bytes 0x\(hex(segment.fileOffset))+0x\(hex(segment.fileSize))"
        )
      }
      if segment.memorySize > 0 { segments.append(segment) }
    }
    guard !segments.isEmpty else { throw .malformed("no loadable (PT_LOAD) segments") }
    self.segments = segments
    self.reader = r
    let tableFits =
      sectionEntrySize >= (is64 ? 64 : 40) && r.has(sectionOffset, UInt64(sectionCount) * UInt64(sectionEntrySize))
    sectionTable = tableFits ? (sectionOffset, sectionEntrySize, sectionCount) : (0, 0, 0)
  }

  /// The bytes of a segment that come from the file.
  public func fileBytes(of segment: LoadSegment) -> ArraySlice<UInt8> {
    reader.bytes[Int(segment.fileOffset)..<Int(segment.fileOffset + segment.fileSize)]
  }

  /// Where `virtualAddress` is loaded physically, through the segment that covers it.
  public func physicalAddress(ofVirtual virtualAddress: UInt64) -> UInt64? {
    for segment in segments
    where virtualAddress >= segment.virtualAddress && virtualAddress - segment.virtualAddress < segment.memorySize {
      return segment.physicalAddress + (virtualAddress - segment.virtualAddress)
    }
    return nil
  }

  /// Symbols from the static symbol table (SHT_SYMTAB), skipping section and file symbols.
  /// Returns an empty list for stripped files or unreadable tables.
  public func symbols() -> [Symbol] {
    let is64 = elfClass == .elf64
    let r = reader
    var result: [Symbol] = []
    for index in 0..<sectionTable.count {
      let header = Int(sectionTable.offset) + index * sectionTable.entrySize
      guard r.u32(header + 4) == 2 else { continue }  // SHT_SYMTAB
      let offset = is64 ? r.u64(header + 24)! : UInt64(r.u32(header + 16)!)
      let size = is64 ? r.u64(header + 32)! : UInt64(r.u32(header + 20)!)
      let link = Int(r.u32(is64 ? header + 40 : header + 24)!)
      let entrySize = Int(is64 ? r.u64(header + 56)! : UInt64(r.u32(header + 36)!))
      guard link < sectionTable.count, entrySize >= (is64 ? 24 : 16), r.has(offset, size) else { continue }
      let stringsHeader = Int(sectionTable.offset) + link * sectionTable.entrySize
      let stringsOffset = Int(is64 ? r.u64(stringsHeader + 24)! : UInt64(r.u32(stringsHeader + 16)!))
      for entry in stride(from: Int(offset), to: Int(offset + size) - entrySize + 1, by: entrySize) {
        let nameOffset = Int(r.u32(entry)!)
        let info = is64 ? r.u8(entry + 4)! : r.u8(entry + 12)!
        let value = is64 ? r.u64(entry + 8)! : UInt64(r.u32(entry + 4)!)
        let symbolSize = is64 ? r.u64(entry + 16)! : UInt64(r.u32(entry + 8)!)
        let kind = info & 0xf
        let section = r.u16(entry + (is64 ? 6 : 14))!
        guard nameOffset != 0, kind != 3, kind != 4,  // STT_SECTION, STT_FILE
          section != 0, section != 0xfff1,  // undefined and absolute (linker-script constants)
          let name = r.cString(stringsOffset + nameOffset), !name.isEmpty
        else { continue }
        result.append(Symbol(name: name, address: value, size: symbolSize, isFunction: kind == 2))
      }
    }
    return result
  }
}
