/// Little-endian field access into a file's bytes, with every read bounds-checked so that a
/// truncated or hostile file produces an error instead of a trap.
struct ByteReader {
  let bytes: [UInt8]

  func has(_ offset: UInt64, _ count: UInt64) -> Bool {
    let (end, overflow) = offset.addingReportingOverflow(count)
    return !overflow && end <= UInt64(bytes.count)
  }

  func u8(_ offset: Int) -> UInt8? { offset >= 0 && offset < bytes.count ? bytes[offset] : nil }

  func u16(_ offset: Int) -> UInt16? { value(offset, 2).map { UInt16(truncatingIfNeeded: $0) } }

  func u32(_ offset: Int) -> UInt32? { value(offset, 4).map { UInt32(truncatingIfNeeded: $0) } }

  func u64(_ offset: Int) -> UInt64? { value(offset, 8) }

  /// A 32- or 64-bit field, widened: ELF32 and ELF64 structures differ mainly in this.
  func word(_ offset: Int, wide: Bool) -> UInt64? { wide ? u64(offset) : u32(offset).map(UInt64.init) }

  /// Fields a format requires: a read past the end is a truncated file, named by `what`.
  func require(_ field: UInt64?, _ what: @autoclosure () -> String) throws(ImageError) -> UInt64 {
    guard let field else { throw .truncated("\(what()) runs past the end of the file") }
    return field
  }

  /// A file offset or size as an index into `bytes`: nil unless it is at most the file's size,
  /// so later `Int` arithmetic on it cannot overflow.
  func index(_ value: UInt64) -> Int? { value <= UInt64(bytes.count) ? Int(value) : nil }

  private func value(_ offset: Int, _ size: Int) -> UInt64? {
    guard offset >= 0, has(UInt64(offset), UInt64(size)) else { return nil }
    var result: UInt64 = 0
    for index in 0..<size { result |= UInt64(bytes[offset + index]) << (8 * index) }
    return result
  }

  /// A NUL-terminated string starting at `offset` (up to the end of the data if unterminated).
  func cString(_ offset: Int) -> String? {
    guard offset >= 0, offset < bytes.count else { return nil }
    let end = bytes[offset...].firstIndex(of: 0) ?? bytes.count
    return String(decoding: bytes[offset..<end], as: UTF8.self)
  }
}
