/// The loader fuzzer's stand-in for HostLibraries' `PayloadDecompressor` (the fuzzer builds
/// the loaders alone, without the package's C modules): the same format detection, and an
/// unpacking that always fails, so the fuzzer drives every header check on the way to it.
enum PayloadDecompressor {
  enum Format: CustomStringConvertible {
    case xz, gzip, zstd

    static func detect(_ bytes: some Collection<UInt8>) -> Format? {
      let head = Array(bytes.prefix(6))
      if head.starts(with: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) { return .xz }
      if head.starts(with: [0x1f, 0x8b]) { return .gzip }
      if head.starts(with: [0x28, 0xb5, 0x2f, 0xfd]) { return .zstd }
      return nil
    }

    var description: String {
      switch self {
      case .xz: "XZ"
      case .gzip: "gzip"
      case .zstd: "zstd"
      }
    }
  }

  struct Failure: Error, CustomStringConvertible {
    let description: String
  }

  static func decompress(_ input: [UInt8], format: Format, size: Int) throws(Failure) -> [UInt8] {
    throw Failure(description: "not unpacked in the fuzzer")
  }
}
