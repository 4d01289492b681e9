#if canImport(Glibc)
  import Glibc
#endif

/// One mapping of host memory that holds machine code the x86 translator wrote (the JIT tier,
/// docs/ARCHITECTURE.md "Translated blocks"), readable, writable and executable at once: the
/// translator appends blocks and patches their jumps while earlier blocks run, and flipping
/// protections per block (W^X) would cost two system calls per translation. Everything here
/// takes offsets into the mapping and checks them, so callers above never see a pointer.
@safe public final class ExecutableMemory {
  public let size: Int
  private let base: UnsafeMutableRawPointer

  /// nil when the host refuses an executable mapping (a hardened kernel, SELinux's execmem):
  /// the caller then runs without translated code.
  public init?(size: Int) {
    self.size = size
    // SAFETY: a fresh anonymous mapping owned by this object alone; MAP_FAILED is checked.
    let pointer = unsafe mmap(
      nil, size, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
    guard let pointer = unsafe pointer, unsafe pointer != MAP_FAILED else { return nil }
    unsafe base = pointer
  }

  // SAFETY: unmapped once, when the only owner goes away; no translated code runs then (the
  // owner is not inside `JITContext.enter` while being released).
  deinit { unsafe _ = munmap(base, size) }

  /// The host address of `offset`, as a number (what a jump or a table entry holds).
  public func address(_ offset: Int) -> UInt64 {
    precondition(offset >= 0 && offset <= size, "offset outside the code mapping")
    // SAFETY: only the integer value of an address inside the mapping is taken.
    return UInt64(UInt(bitPattern: unsafe base + offset))
  }

  /// Copies `bytes` to `offset`; traps (a broken invariant of the translator) outside the mapping.
  public func write(_ bytes: [UInt8], at offset: Int) {
    precondition(offset >= 0 && bytes.count <= size - offset, "code write outside the mapping")
    // SAFETY: the precondition proves the whole range lies inside the live mapping.
    unsafe bytes.withUnsafeBytes { source in
      unsafe (base + offset).copyMemory(from: source.baseAddress!, byteCount: source.count)
    }
  }

  /// Rewrites the 32-bit little-endian field at `offset` (a jump's displacement when chaining).
  public func patch32(_ value: UInt32, at offset: Int) {
    precondition(offset >= 0 && offset <= size - 4, "patch outside the mapping")
    // SAFETY: inside the live mapping (checked above); an aligned-or-not 4-byte store.
    unsafe (base + offset).storeBytes(of: value.littleEndian, as: UInt32.self)
  }
}
