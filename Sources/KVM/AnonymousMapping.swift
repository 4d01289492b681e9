#if canImport(Glibc)
  import Glibc
#endif

/// Zero-filled private host memory, unmapped when dropped. Guest RAM is made of these.
@safe public final class AnonymousMapping: @unchecked Sendable {
  /// The first byte of the mapping. Valid for `size` bytes for the lifetime of this object.
  public let pointer: UnsafeMutableRawPointer
  public let size: Int

  /// Reserves `size` bytes without committing them: pages are only backed when first touched,
  /// so a large guest costs nothing until it uses its memory.
  public init(size: Int) throws(KVMError) {
    self.size = size
    // SAFETY: a fresh anonymous mapping owned by this object alone.
    unsafe pointer = try Syscall.mmap(
      length: size, protection: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, fd: -1,
      name: "mmap guest memory")
  }

  // SAFETY: the mapping is unmapped once, when its only owner goes away.
  deinit { unsafe Syscall.munmap(pointer, length: size) }
}
