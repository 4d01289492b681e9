/// A bzImage as the boot protocol lays it out (Documentation/arch/x86/boot.rst): boot
/// sector signature at 0x1fe, "HdrS" at 0x202, the header's length in the jump at 0x200.
public func syntheticBzImage(
  version: UInt16 = 0x20f, xloadflags: UInt16 = 0x1, setupSectors: UInt8 = 4, payload: Int = 0x1000
)
  -> [UInt8]
{
  let sectors = setupSectors == 0 ? 4 : Int(setupSectors)  // 0 means 4, as the protocol says
  var bytes = [UInt8](repeating: 0, count: (sectors + 1) * 512 + payload)
  func put(_ value: UInt64, _ offset: Int, _ size: Int) {
    for index in 0..<size { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * index)) }
  }
  bytes[0x1f1] = setupSectors
  put(0xaa55, 0x1fe, 2)
  bytes[0x200] = 0xeb
  bytes[0x201] = 0x6a  // header runs to 0x26c
  bytes.replaceSubrange(0x202..<0x206, with: Array("HdrS".utf8))
  put(UInt64(version), 0x206, 2)
  put(0x7fff_ffff, 0x22c, 4)  // initrd_addr_max
  put(UInt64(xloadflags), 0x236, 2)
  put(2047, 0x238, 4)  // cmdline_size
  put(0x100_0000, 0x258, 8)  // pref_address
  put(0x40_0000, 0x260, 4)  // init_size
  for index in 0..<payload { bytes[(sectors + 1) * 512 + index] = UInt8(truncatingIfNeeded: index) }
  return bytes
}
