/// Builds small ELF files byte by byte, for tests that need malformed or unusual images
/// that no assembler would produce.
public struct SyntheticELF {
  public struct Segment {
    public var physicalAddress: UInt64
    public var virtualAddress: UInt64
    public var bytes: [UInt8]
    public var memorySize: UInt64

    public init(at address: UInt64, bytes: [UInt8], memorySize: UInt64? = nil, virtualAddress: UInt64? = nil) {
      physicalAddress = address
      self.virtualAddress = virtualAddress ?? address
      self.bytes = bytes
      self.memorySize = memorySize ?? UInt64(bytes.count)
    }
  }

  public var is64 = true
  public var machine: UInt16 = 62
  public var type: UInt16 = 2
  public var entry: UInt64
  public var segments: [Segment]

  public init(is64: Bool = true, entry: UInt64, segments: [Segment]) {
    self.is64 = is64
    self.machine = is64 ? 62 : 3
    self.entry = entry
    self.segments = segments
  }

  /// The file: header, program headers, then each segment's bytes in order.
  public var bytes: [UInt8] {
    var out: [UInt8] = []
    func put(_ value: UInt64, _ size: Int) {
      for index in 0..<size { out.append(UInt8(truncatingIfNeeded: value >> (8 * index))) }
    }
    let headerSize = is64 ? 64 : 52
    let entrySize = is64 ? 56 : 32
    var offset = UInt64(headerSize + entrySize * segments.count)
    out += [0x7f, 0x45, 0x4c, 0x46, is64 ? 2 : 1, 1, 1, 0] + Array(repeating: 0, count: 8)
    put(UInt64(type), 2)
    put(UInt64(machine), 2)
    put(1, 4)  // e_version
    put(entry, is64 ? 8 : 4)
    put(UInt64(headerSize), is64 ? 8 : 4)  // e_phoff
    put(0, is64 ? 8 : 4)  // e_shoff
    put(0, 4)  // e_flags
    put(UInt64(headerSize), 2)
    put(UInt64(entrySize), 2)
    put(UInt64(segments.count), 2)
    put(is64 ? 64 : 40, 2)  // e_shentsize
    put(0, 2)
    put(0, 2)
    for segment in segments {
      put(1, 4)  // PT_LOAD
      if is64 {
        put(7, 4)  // flags RWX
        put(offset, 8)
        put(segment.virtualAddress, 8)
        put(segment.physicalAddress, 8)
        put(UInt64(segment.bytes.count), 8)
        put(segment.memorySize, 8)
        put(0x1000, 8)
      } else {
        put(offset, 4)
        put(segment.virtualAddress, 4)
        put(segment.physicalAddress, 4)
        put(UInt64(segment.bytes.count), 4)
        put(segment.memorySize, 4)
        put(7, 4)
        put(0x1000, 4)
      }
      offset += UInt64(segment.bytes.count)
    }
    for segment in segments { out += segment.bytes }
    return out
  }

  /// A minimal valid ELF64 whose one segment at 1 MiB is `cli; hlt`.
  public static var haltAtOneMiB: SyntheticELF {
    SyntheticELF(entry: 0x10_0000, segments: [Segment(at: 0x10_0000, bytes: [0xfa, 0xf4])])
  }
}
