import CHostLibraries

/// Unpacks a compressed kernel payload with the host's system libraries (liblzma, zlib,
/// libzstd, opened when first needed; see CHostLibraries.c for why they are not linked).
/// The only place above C that hands those libraries pointers.
public enum PayloadDecompressor {
  public enum Format: Sendable, Equatable, CustomStringConvertible {
    case xz, gzip, zstd

    /// The format a payload's first bytes name, or nil (LZMA, bzip2, LZO and LZ4 kernels:
    /// Hyperstep does not unpack those itself).
    public static func detect(_ bytes: some Collection<UInt8>) -> Format? {
      let head = Array(bytes.prefix(6))
      if head.starts(with: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) { return .xz }
      if head.starts(with: [0x1f, 0x8b]) { return .gzip }
      if head.starts(with: [0x28, 0xb5, 0x2f, 0xfd]) { return .zstd }
      return nil
    }

    public var description: String {
      switch self {
      case .xz: "XZ"
      case .gzip: "gzip"
      case .zstd: "zstd"
      }
    }

    var code: Int32 {
      switch self {
      case .xz: Int32(HS_COMPRESSION_XZ.rawValue)
      case .gzip: Int32(HS_COMPRESSION_GZIP.rawValue)
      case .zstd: Int32(HS_COMPRESSION_ZSTD.rawValue)
      }
    }
  }

  public struct Failure: Error, Sendable, CustomStringConvertible {
    public let description: String
  }

  /// Unpacks `input`, which must unpack to exactly `size` bytes.
  public static func decompress(_ input: [UInt8], format: Format, size: Int) throws(Failure) -> [UInt8] {
    guard size > 0 else { throw Failure(description: "the payload records an unpacked size of 0") }
    // One byte more than recorded, so that a payload longer than its record is caught.
    var output = [UInt8](repeating: 0, count: size + 1)
    var produced = 0
    var message = [CChar](repeating: 0, count: 256)
    let capacity = message.count
    // SAFETY: each pointer is valid for the count passed beside it for the whole call, and
    // the C function writes only within `output` and `message`.
    let status = unsafe input.withUnsafeBufferPointer { source in
      unsafe output.withUnsafeMutableBufferPointer { destination in
        unsafe message.withUnsafeMutableBufferPointer { text in
          unsafe hs_decompress(
            format.code, source.baseAddress, source.count, destination.baseAddress, destination.count, &produced,
            text.baseAddress, capacity)
        }
      }
    }
    guard status == 0 else {
      let bytes = message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
      throw Failure(description: String(decoding: bytes, as: UTF8.self))
    }
    guard produced == size else {
      throw Failure(
        description: "the \(format) payload unpacks to \(produced) bytes, not the \(size) its header records")
    }
    output.removeLast()
    return output
  }
}
