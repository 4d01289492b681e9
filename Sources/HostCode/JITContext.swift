#if canImport(Glibc)
  import Glibc
#endif

/// The raw block of memory that translated code works on (register file, flags, budget, exit
/// record, data TLB, jump cache), and the one call into translated code. Generated code never
/// calls back into Swift: it leaves through `enter`'s return with the state in this buffer,
/// so the interpreter that owns the CPU is never re-entered while it is borrowed.
///
/// The layout (byte offsets, `JITContext.Offset`) is a contract with the code generator in
/// the X86 module; accessors are `@inlinable` word loads and stores with a bounds check.
@safe public final class JITContext {
  public let byteCount: Int
  @usableFromInline let base: UnsafeMutableRawPointer

  public init(byteCount: Int) {
    precondition(byteCount > 0 && byteCount % 8 == 0)
    self.byteCount = byteCount
    // SAFETY: a fresh, zeroed allocation owned by this object; 64-byte aligned for the TLB rows.
    unsafe base = UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: 64)
    unsafe base.initializeMemory(as: UInt8.self, repeating: 0, count: byteCount)
  }

  // SAFETY: freed once, by the only owner.
  deinit { unsafe base.deallocate() }

  /// The buffer's host address, which the entry code keeps in a register.
  public var address: UInt64 {
    // SAFETY: only the integer value of the address is taken.
    UInt64(UInt(bitPattern: unsafe base))
  }

  @inlinable @inline(__always)
  public subscript(word offset: Int) -> UInt64 {
    get {
      precondition(offset >= 0 && offset <= byteCount - 8 && offset & 7 == 0, "context offset out of range")
      // SAFETY: an aligned 8-byte load inside the live allocation (checked above).
      return unsafe base.load(fromByteOffset: offset, as: UInt64.self)
    }
    set {
      precondition(offset >= 0 && offset <= byteCount - 8 && offset & 7 == 0, "context offset out of range")
      // SAFETY: an aligned 8-byte store inside the live allocation (checked above).
      unsafe base.storeBytes(of: newValue, toByteOffset: offset, as: UInt64.self)
    }
  }

  /// Sets `count` words from `offset` to `value` (emptying the TLB or the jump cache).
  public func fill(words count: Int, at offset: Int, with value: UInt64) {
    precondition(offset >= 0 && count >= 0 && offset + count * 8 <= byteCount && offset & 7 == 0)
    // SAFETY: the range lies inside the live allocation (checked above).
    unsafe (base + offset).bindMemory(to: UInt64.self, capacity: count).update(repeating: value, count: count)
  }

  /// Calls the entry stub at `entry` (code written by the translator into `memory`) with this
  /// buffer's address and `target`, the translated block to run; returns what the exit stub
  /// left in RAX (the exit reason). The stub follows the System V calling convention: it saves
  /// the callee-saved registers it uses and returns normally.
  public func enter(_ memory: ExecutableMemory, entry: Int, target: UInt64) -> UInt64 {
    typealias Entry = @convention(c) (UInt64, UInt64) -> UInt64
    // SAFETY: `entry` is an offset into the live executable mapping (checked by `address`),
    // where the translator wrote a System V function of this type; the code it reaches only
    // touches this buffer (whose address it is passed), guest RAM through TLB entries the
    // interpreter filled from live mappings, and its own stack frame.
    let function = unsafe unsafeBitCast(UInt(memory.address(entry)), to: Entry.self)
    return withExtendedLifetime(memory) { function(address, target) }
  }
}

/// The process environment's value for `name`, for switches such as `HYPERSTEP_JIT` (read
/// here, in a bottom module, so that the pure ISA modules need no Foundation).
public func hostEnvironment(_ name: String) -> String? {
  // SAFETY: getenv returns nil or a NUL-terminated string owned by the environment, copied at once.
  guard let value = unsafe getenv(name) else { return nil }
  return unsafe String(cString: value)
}
