// libFuzzer entry point for the kernel loaders: the input is a kernel file. It is parsed as
// every format Hyperstep accepts (automatic detection, ELF, Multiboot, flat real and protected
// mode at load addresses taken from the input), and each image that parses is placed in guest
// RAM of several sizes and its symbols read, as `hyperstep run` and `trace` do. Any trap
// (overflow, out-of-range index, force unwrap) is a crash for libFuzzer to report.
// Built and run by scripts/fuzz-loaders.sh; not part of the package build.

/// Load addresses to try for flat binaries: the defaults, the edges of the address space,
/// and one taken from the input's last eight bytes so the fuzzer can steer it.
func loadAddresses(_ bytes: [UInt8]) -> [UInt64?] {
  var fromInput: UInt64 = 0
  for byte in bytes.suffix(8) { fromInput = fromInput << 8 | UInt64(byte) }
  return [nil, 0, 0xffff_ffff_ffff_ffff, 0xffff_ffff_ffff_f000, 0xffff_ffff, 0xf_fff0, fromInput]
}

let ramSizes: [UInt64] = [2 << 20, 64 << 20, 4 << 30]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
  let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
  for format in ImageFormat.allCases {
    for address in loadAddresses(bytes) {
      guard let image = try? BootImage.parse(bytes, format: format, loadAddress: address) else { continue }
      for size in ramSizes {
        _ = try? image.checkPlacement(ram: BootLayout.ramRegions(memorySize: size), commandLineLength: 4000)
      }
      if format != .flatReal && format != .flatProtected { break }  // the address only matters there
    }
  }
  if let elf = try? ELFFile(bytes) {
    _ = elf.symbols()
  }
  return 0
}
