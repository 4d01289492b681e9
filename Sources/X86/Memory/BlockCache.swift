/// Decoded blocks: straight-line runs of decoded instructions, cached by the physical address
/// of their first byte, so that `run` executes a block's instructions one after another
/// without fetching, translating or looking each one up (Bochs' trace cache idea).
///
/// A block lies in one physical page and ends with the first instruction that may change
/// control flow or anything the fetch depends on (`Operation.continuesBlock`), before an
/// instruction that crosses the page, or at `maximumLength` instructions. Its instructions
/// are exactly those the per-instruction path would fetch: the bytes are sequential in the
/// page, and nothing inside a block changes CS, the code mode or the paging structures'
/// translation of the page (those instructions end it).
///
/// Self-modifying code: a store into a page with decoded code bumps that page's version in
/// `DecodeCache` (which tracks code pages already); a block remembers the version it was built
/// at and is rebuilt when it differs, and the store also tells a running block to stop after
/// the storing instruction, so the next instruction is fetched again.
struct BlockCache {
  static let blockCount = 1 << 12
  static let maximumLength = 16
  static let emptyTag = UInt64.max

  /// What the lookup checks and the loop needs, per block slot: 16 bytes side by side, so a
  /// lookup makes one bounds check and touches one cache line (four arrays cost four of each).
  struct Header {
    /// Physical address of the first byte | code mode << 56.
    var tag = BlockCache.emptyTag
    /// The page's code version the block was built at.
    var version: UInt32 = 0
    /// The block's length in bytes and in instructions.
    var byteLength: UInt16 = 0
    var count: UInt8 = 0
  }
  var headers: [Header] = Array(repeating: Header(), count: blockCount)
  /// One decoded instruction and its `FastForm`: one array, so the loop makes one bounds check.
  struct Entry {
    var instruction = DecodedInstruction()
    var form = FastForm.general
    /// The offset of the next instruction from the block's first byte: RIP after this one is
    /// the block's RIP plus `end`, with no dependence on the RIP the previous one stored.
    var end: UInt16 = 0
  }

  /// `maximumLength` entries per slot.
  var entries: [Entry] = Array(repeating: Entry(), count: blockCount * maximumLength)

  /// Spreads blocks of neighbouring pages over the table (code at 1 MiB and 2 MiB apart).
  @inline(__always) static func slot(_ physical: UInt64) -> Int {
    Int(truncatingIfNeeded: (physical ^ physical >> 12 ^ physical >> 24) & UInt64(blockCount - 1))
  }

  mutating func flush() {
    for slot in 0..<BlockCache.blockCount { headers[slot].tag = BlockCache.emptyTag }
  }
}

extension Operation {
  /// The instruction can be followed by the next one in the same block: it does not branch,
  /// change CS, CPL, the code mode, paging, RFLAGS.IF/TF or the debug registers, halt or do
  /// I/O. Anything else ends its block (and is its last instruction).
  @inline(__always) var continuesBlock: Bool {
    switch self {
    case .aluRmReg, .aluRegRm, .aluRmImm, .testRmReg, .testRmImm, .incRm, .decRm, .notRm, .negRm,
      .mulRm, .imulRm, .divRm, .idivRm, .imulRegRm, .imulRegRmImm, .cbw, .cwd, .shiftRm, .shld,
      .shrd, .btRmReg, .btRmImm, .bsf, .bsr, .bswap, .movRmReg, .movRegRm, .movRmImm, .movzx,
      .movsx, .movsxd, .lea, .xchgRmReg, .xadd, .cmpxchg, .cmpxchgDouble, .setcc, .cmovcc, .xlat,
      .pushRm, .pushImm, .popRm, .leave, .clc, .stc, .cmc, .cld, .std, .lahf, .sahf, .nop:
      true
    default:
      false
    }
  }
}
