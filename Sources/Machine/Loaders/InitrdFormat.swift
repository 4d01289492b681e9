/// What a Linux initrd may be: a cpio archive in the "newc" format (or the old ASCII one),
/// or one compressed with a method the kernel can unpack (init/initramfs.c hands the data
/// to the decompressor its magic names, lib/decompress.c). Anything else the kernel would
/// report as "junk in compressed archive" and then panic without a root file system, so
/// Hyperstep refuses it before booting.
enum InitrdFormat {
  static let magics: [[UInt8]] = [
    Array("070701".utf8), Array("070702".utf8), Array("070707".utf8),  // cpio newc, newc+crc, odc
    [0x1f, 0x8b],  // gzip
    [0x1f, 0x9e],  // old gzip
    [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00],  // XZ
    [0x28, 0xb5, 0x2f, 0xfd],  // zstd
    Array("BZh".utf8),  // bzip2
    [0x5d, 0x00, 0x00],  // LZMA
    [0x89, 0x4c, 0x5a, 0x4f],  // LZO
    [0x02, 0x21, 0x4c, 0x18],  // LZ4 legacy frame
  ]

  static func isRecognized(_ bytes: [UInt8]) -> Bool {
    magics.contains { bytes.starts(with: $0) }
  }
}
