/// Why a kernel image cannot be booted. Descriptions are one sentence without the file
/// name; the caller puts the file in front.
public enum ImageError: Error, Equatable, CustomStringConvertible {
  case empty
  case unrecognized(firstBytes: [UInt8])
  case truncated(String)
  case malformed(String)
  case unsupported(String)
  case wrongMachine(String)
  case segmentOutsideRAM(start: UInt64, end: UInt64, ramEnd: UInt64)
  case segmentsOverlap(UInt64, UInt64)
  case overlapsBootData(start: UInt64, end: UInt64, what: String)
  case entryOutsideRAM(UInt64)
  case commandLineTooLong(length: Int, maximum: Int)

  public var description: String {
    switch self {
    case .empty:
      return "file is empty"
    case .unrecognized(let bytes):
      let magic = bytes.prefix(4).map { hex2($0) }.joined(separator: " ")
      return "not an ELF, Multiboot or Linux kernel image (bad magic: \(magic)); "
        + "for a raw binary pass --kernel-format flat-real or flat-protected"
    case .truncated(let what):
      return "file is truncated: \(what)"
    case .malformed(let what):
      return "malformed image: \(what)"
    case .unsupported(let what):
      return "unsupported image: \(what)"
    case .wrongMachine(let what):
      return what
    case .segmentOutsideRAM(let start, let end, let ramEnd):
      return "segment 0x\(hex(start))-0x\(hex(end)) lies outside guest RAM (0x0-0x\(hex(ramEnd))); "
        + "raise --memory or relink the image"
    case .segmentsOverlap(let first, let second):
      return "segments at 0x\(hex(first)) and 0x\(hex(second)) overlap"
    case .overlapsBootData(let start, let end, let what):
      return "segment 0x\(hex(start))-0x\(hex(end)) overlaps the \(what) Hyperstep places there"
    case .entryOutsideRAM(let entry):
      return "entry point 0x\(hex(entry)) is outside guest RAM"
    case .commandLineTooLong(let length, let maximum):
      return "command line is \(length) bytes; at most \(maximum) fit"
    }
  }
}

func hex<T: BinaryInteger>(_ value: T) -> String { String(value, radix: 16) }
private func hex2(_ byte: UInt8) -> String { byte < 16 ? "0" + hex(byte) : hex(byte) }
