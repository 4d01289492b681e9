// The loader fuzzer (scripts/fuzz-loaders.sh) compiles the loaders without the package's
// modules and brings a stand-in for the decompressor (Fuzz/PayloadDecompressorStandIn.swift).
#if canImport(HostLibraries)
  import HostLibraries
#endif

/// Who unpacks a Linux bzImage's compressed kernel.
///
/// `host` (the default): Hyperstep unpacks the payload with the system library its header
/// names (XZ, gzip, zstd) and loads the resulting vmlinux ELF where it was linked, entering
/// its 64-bit `startup_64` with the zero page in RSI, the way Firecracker and PVH boots take
/// a vmlinux. A stock kernel's XZ decompressor costs about 4.5 billion guest instructions,
/// which the interpreter would spend before the kernel proper starts; as with any direct
/// vmlinux boot there is no KASLR (the kernel runs at its link address, so its symbols hold).
/// `guest`: the bzImage's own decompressor runs in the guest (its 64-bit entry), as a boot
/// loader would leave it.
public enum LinuxDecompressor: String, Sendable, CaseIterable {
  case host
  case guest
}

extension BootImage {
  /// A bzImage whose payload Hyperstep unpacks: the vmlinux inside, with the bzImage's own
  /// setup header for the zero page.
  static func unpackedLinux(_ bytes: [UInt8], kernel: LinuxKernel) throws(ImageError) -> BootImage {
    guard !kernel.payloadRange.isEmpty else {
      throw .unsupported(
        "the bzImage header records no payload (boot protocol 2.08+); boot it with --linux-decompressor guest")
    }
    let payload = Array(bytes[kernel.payloadRange])
    guard let format = PayloadDecompressor.Format.detect(payload) else {
      let head = payload.prefix(4).map { hex(UInt64($0)) }.joined(separator: " ")
      throw .unsupported(
        "the kernel's payload is not XZ, gzip or zstd (first bytes \(head)); boot it with --linux-decompressor guest")
    }
    // The kernel's build appends the unpacked size as a 32-bit little-endian word.
    guard payload.count > 8 else { throw .truncated("the kernel's payload is \(payload.count) bytes") }
    let size = payload.suffix(4).reversed().reduce(0) { $0 << 8 | Int($1) }
    let vmlinux: [UInt8]
    do {
      vmlinux = try PayloadDecompressor.decompress(payload, format: format, size: size)
    } catch {
      throw .malformed("the kernel's \(format) payload: \(error.description)")
    }
    let file = try ELFFile(vmlinux)
    guard file.elfClass == .elf64 else { throw .malformed("the bzImage's payload is not an x86-64 vmlinux") }
    var image = try linuxELF(file, kernel: kernel)
    image.formatName = "Linux bzImage (\(format) payload unpacked by Hyperstep)"
    return image
  }

  /// A vmlinux ELF given directly: loaded where it was linked, with a setup header of
  /// Hyperstep's making (it has none of its own).
  static func vmlinux(_ file: ELFFile) throws(ImageError) -> BootImage {
    let start = file.segments.map(\.physicalAddress).min() ?? 0
    let end = file.segments.map { $0.physicalAddress + $0.memorySize }.max() ?? 0
    var image = try linuxELF(file, kernel: LinuxKernel(synthesizedFor: start, initSize: end - start))
    image.formatName = "Linux vmlinux (ELF64)"
    return image
  }

  /// The segments at their physical addresses, entered at the ELF entry (a physical address:
  /// the kernel's `phys_startup_64`) in 64-bit mode, the zero page built from `kernel`.
  private static func linuxELF(_ file: ELFFile, kernel: LinuxKernel) throws(ImageError) -> BootImage {
    let chunks = file.segments.map {
      Chunk(address: $0.physicalAddress, bytes: file.fileBytes(of: $0), memorySize: $0.memorySize)
    }
    guard chunks.allSatisfy({ $0.address < 1 << 32 }) else {
      throw .unsupported("the vmlinux is linked above 4 GiB physical; Hyperstep loads kernels below")
    }
    var image = BootImage(chunks: chunks, entry: .long64(entry: file.entry), multiboot: false, formatName: "")
    image.linux = kernel
    return image
  }
}
