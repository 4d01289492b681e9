/// The Multiboot v1 header a kernel embeds in its first 8 KiB.
public struct MultibootHeader: Sendable, Equatable {
  public static let magic: UInt32 = 0x1BAD_B002
  /// What a Multiboot loader leaves in EAX.
  public static let bootloaderMagic: UInt32 = 0x2BAD_B002
  /// The header must be 32-bit aligned and wholly inside the first 8192 bytes.
  static let searchLimit = 8192

  /// Requirement flags the loader must honour (bits 0-15) and optional ones (bits 16-31).
  public enum Flag {
    public static let pageAlignModules: UInt32 = 1 << 0
    public static let memoryInformation: UInt32 = 1 << 1
    public static let videoMode: UInt32 = 1 << 2
    public static let addressFields: UInt32 = 1 << 16
  }

  /// The load addresses of the a.out kludge (flag 16).
  public struct Addresses: Sendable, Equatable {
    public var header: UInt32
    public var load: UInt32
    public var loadEnd: UInt32
    public var bssEnd: UInt32
    public var entry: UInt32
  }

  /// Byte offset of the header in the file.
  public let offset: Int
  public let flags: UInt32
  public let addresses: Addresses?

  /// Finds and validates the header. Returns nil when the file carries none.
  public static func find(in bytes: [UInt8]) throws(ImageError) -> MultibootHeader? {
    let r = ByteReader(bytes: bytes)
    for offset in stride(from: 0, to: min(bytes.count, searchLimit) - 11, by: 4) {
      guard r.u32(offset) == magic, let flags = r.u32(offset + 4), let checksum = r.u32(offset + 8),
        magic &+ flags &+ checksum == 0  // else a stray magic number, not a header
      else { continue }
      return try MultibootHeader(reader: r, offset: offset, flags: flags)
    }
    return nil
  }

  private init(reader r: ByteReader, offset: Int, flags: UInt32) throws(ImageError) {
    self.offset = offset
    self.flags = flags
    let known = Flag.pageAlignModules | Flag.memoryInformation | Flag.videoMode
    let unknownRequired = flags & 0xffff & ~known
    guard unknownRequired == 0 else {
      throw .unsupported("Multiboot header requires features 0x\(hex(unknownRequired)) that Hyperstep does not provide")
    }
    if flags & Flag.addressFields != 0 {
      guard let header = r.u32(offset + 12), let load = r.u32(offset + 16), let loadEnd = r.u32(offset + 20),
        let bssEnd = r.u32(offset + 24), let entry = r.u32(offset + 28)
      else { throw .truncated("Multiboot address fields run past the end") }
      addresses = Addresses(header: header, load: load, loadEnd: loadEnd, bssEnd: bssEnd, entry: entry)
    } else {
      addresses = nil
    }
  }
}
