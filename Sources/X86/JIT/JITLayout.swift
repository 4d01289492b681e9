/// Byte offsets of the context buffer that translated code works on (`HostCode.JITContext`),
/// and the exit reasons its stubs return. Generated code addresses every field as
/// [rbx + offset]; RBX holds the buffer's address, R14 the instruction budget, R12 the
/// constant 12 (SHRX's count for page numbers) while translated code runs.
enum JITLayout {
  /// The 16 guest GPRs, 8 bytes each, in the interpreter's order.
  static let gpr = 0
  /// RIP at an exit: the next instruction to run (translated or not).
  static let rip = 128
  /// The six status flags: OF (0 or 1) in the low byte, LAHF's image in the next.
  static let flags = 136
  /// Instructions the run may still retire (R14 while inside).
  static let budget = 144
  /// The linear address of the access whose TLB probe missed (the slot to fill afterwards).
  static let missAddress = 160
  /// The code offset of the rel32 field a chain exit came from (to patch it).
  static let patchField = 168
  /// FS's and GS's bases, for FS:/GS: operands in 64-bit mode (copied in at each entry: no
  /// translated instruction changes them).
  static let fsBase = 176
  static let gsBase = 184

  /// The data TLB: `tlbSlots` rows of a read tag, read delta, write tag and write delta. A tag
  /// is a linear page number (address >> 12) whose accesses may go straight to host memory at
  /// linear + delta; `emptyTag` matches no page.
  static let tlbSlots = 256
  static let readTags = 256
  static let readDeltas = readTags + 8 * tlbSlots
  static let writeTags = readDeltas + 8 * tlbSlots
  static let writeDeltas = writeTags + 8 * tlbSlots
  static let emptyTag = UInt64.max

  /// The jump cache for indirect transfers (RET): `jumpSlots` pairs of guest linear RIP and
  /// host code address, indexed by the low bits of RIP.
  static let jumpSlots = 1024
  static let jumpCache = writeDeltas + 8 * tlbSlots
  static let byteCount = jumpCache + 16 * jumpSlots

  @inline(__always) static func jumpSlot(_ rip: UInt64) -> Int { Int(truncatingIfNeeded: rip & UInt64(jumpSlots - 1)) }
}

/// Why translated code returned to Swift (the value in RAX).
enum JITExit: UInt64 {
  /// The instruction at RIP is not translated, or its memory access missed the TLB: the
  /// interpreter runs it. Nothing of it happened.
  case interpretOne = 1
  /// Fewer instructions remain in the budget than the block at RIP holds.
  case budget = 2
  /// A direct branch to RIP whose target was not translated when its block was: translate
  /// it and patch the jump (`JITLayout.patchField`).
  case chain = 3
  /// An indirect branch (RET) to RIP missed the jump cache.
  case indirect = 4
}
