/// A Linux bzImage, read through its setup header (Documentation/arch/x86/boot.rst, "The
/// real-mode kernel header"). Hyperstep uses the 64-bit boot protocol: no real-mode setup
/// code runs, the VMM fills the zero page and enters the kernel at its 64-bit entry.
public struct LinuxKernel: Sendable, Equatable {
  /// The header fields, from byte 0x1f1 of the file to the header's end.
  public let header: [UInt8]
  public let protocolVersion: UInt16
  /// The protected-mode kernel: everything after the setup sectors.
  public let payloadOffset: Int
  public let loadAddress: UInt64
  /// Memory the kernel needs from its load address while it decompresses and starts.
  public let initSize: UInt64
  public let commandLineMaximum: Int
  public let initrdAddressMaximum: UInt64
  /// The compressed vmlinux inside the file (payload_offset and payload_length, protocol
  /// 2.08+, counted from the protected-mode kernel's start), empty when the header has none.
  public let payloadRange: Range<Int>

  /// The 64-bit entry point is 0x200 bytes into the protected-mode kernel.
  public var entry: UInt64 { loadAddress + 0x200 }

  static let headerStart = 0x1f1

  public static func hasMagic(_ bytes: [UInt8]) -> Bool {
    bytes.count >= 0x206 && bytes[0x202..<0x206].elementsEqual("HdrS".utf8)
  }

  public init(_ bytes: [UInt8]) throws(ImageError) {
    let r = ByteReader(bytes: bytes)
    guard Self.hasMagic(bytes) else { throw .unrecognized(firstBytes: Array(bytes.prefix(4))) }
    guard r.u16(0x1fe) == 0xaa55 else { throw .malformed("bzImage boot sector signature 0xaa55 is missing") }
    guard let version = r.u16(0x206), let setupSize = r.u8(0x201), let setupSectorsField = r.u8(0x1f1) else {
      throw .truncated("the setup header runs past the end")
    }
    // 2.12 brought xloadflags, and with them the 64-bit entry point.
    guard version >= 0x20c, let xloadflags = r.u16(0x236), xloadflags & 1 != 0 else {
      throw .unsupported(
        "Linux boot protocol \(version >> 8).\(version & 0xff) has no 64-bit entry point (needs 2.12 or later with XLF_KERNEL_64)"
      )
    }
    protocolVersion = version
    let headerEnd = 0x202 + Int(setupSize)
    guard headerEnd <= bytes.count else { throw .truncated("the setup header runs past the end") }
    header = Array(bytes[Self.headerStart..<headerEnd])
    var setupSectors = Int(setupSectorsField)
    if setupSectors == 0 { setupSectors = 4 }
    payloadOffset = (setupSectors + 1) * 512
    guard payloadOffset < bytes.count else {
      throw .truncated("no protected-mode kernel after \(setupSectors) setup sectors")
    }
    let preferred = r.u64(0x258) ?? 0
    loadAddress = preferred >= 0x10_0000 ? preferred : 0x10_0000
    // The image and its entry point must fit in the address space (checked against RAM later).
    guard loadAddress <= UInt64.max - 0x200 - UInt64(bytes.count - payloadOffset) else {
      throw .malformed("pref_address 0x\(hex(preferred)) leaves no room for the kernel in the address space")
    }
    initSize = UInt64(r.u32(0x260) ?? 0)
    commandLineMaximum = Int(r.u32(0x238) ?? 255)
    initrdAddressMaximum = UInt64(r.u32(0x22c) ?? 0x37ff_ffff)
    let start = payloadOffset + Int(r.u32(0x248) ?? 0)
    let length = Int(r.u32(0x24c) ?? 0)
    payloadRange = start + length <= bytes.count && length > 0 ? start..<(start + length) : 0..<0
  }

  /// A kernel with a header of Hyperstep's making, for a vmlinux ELF (which carries none):
  /// the fields the kernel reads from the zero page's setup header, as a boot loader
  /// following protocol 2.15 would leave them, for a kernel at `loadAddress` that needs
  /// `initSize` bytes from there.
  init(synthesizedFor loadAddress: UInt64, initSize: UInt64) {
    var bytes = [UInt8](repeating: 0, count: 0x268)
    func put(_ value: UInt64, at offset: Int, size: Int) {
      for index in 0..<size { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * index)) }
    }
    put(0xaa55, at: 0x1fe, size: 2)
    put(UInt64(0x268 - 0x202), at: 0x201, size: 1)  // the header's length past 0x202
    bytes.replaceSubrange(0x202..<0x206, with: Array("HdrS".utf8))
    put(0x020f, at: 0x206, size: 2)
    put(0x7fff_ffff, at: 0x22c, size: 4)  // initrd_addr_max
    put(0x20_0000, at: 0x230, size: 4)  // kernel_alignment
    put(1, at: 0x236, size: 2)  // xloadflags: XLF_KERNEL_64
    put(2047, at: 0x238, size: 4)  // cmdline_size
    put(loadAddress, at: 0x258, size: 8)  // pref_address
    put(initSize, at: 0x260, size: 4)
    header = Array(bytes[Self.headerStart...])
    protocolVersion = 0x020f
    payloadOffset = 0
    self.loadAddress = loadAddress
    self.initSize = initSize
    commandLineMaximum = 2047
    initrdAddressMaximum = 0x7fff_ffff
    payloadRange = 0..<0
  }
}
