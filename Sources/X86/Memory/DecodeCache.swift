/// Decoded instructions by physical address, so a loop decodes each instruction once.
///
/// Direct-mapped on the low bits of the physical address; the tag also holds the code mode,
/// because the same bytes mean different instructions in 16-, 32- and 64-bit code.
/// Self-modifying code: every page an entry was decoded from is marked in `codePages`, and a
/// store into a marked page drops the entries whose bytes it may have overwritten (those that
/// start up to 14 bytes before it). Instructions that cross a page are never cached, so an
/// entry's bytes all lie in its own page.
struct DecodeCache {
  static let entryCount = 1 << 14
  static let emptyTag = UInt64.max

  /// Tag and instruction side by side: one buffer, one bounds check, one cache line per lookup.
  struct Slot {
    var tag: UInt64 = DecodeCache.emptyTag
    var instruction = DecodedInstruction()
  }

  var slots: [Slot] = Array(repeating: Slot(), count: entryCount)
  /// One byte per physical page below `pageLimit`: nonzero once code has been decoded there.
  var codePages: [UInt8]
  /// Per physical page: bumped by every store into a code page, so blocks built from the page
  /// before the store are seen to be stale (`BlockCache`).
  var pageVersions: [UInt32]
  /// The number of pages both arrays cover, stored: `Array.count` was an out-of-line call in
  /// the block loop's profile.
  let pageCount: Int
  /// Set by a store into a code page: a running block stops after the storing instruction.
  var codeWritten = false
  /// Bumped by every store into a code page and every flush: the JIT tier drops all its
  /// translations when this differs from what it last saw (X86JIT.swift).
  var generation: UInt64 = 0
  var blocks = BlockCache()

  init(physicalLimit: UInt64) {
    // Pages past the limit (MMIO, ROM above RAM) are simply never cached.
    codePages = Array(repeating: 0, count: Int(min(physicalLimit, 1 << 36) >> 12))
    pageVersions = Array(repeating: 0, count: codePages.count)
    pageCount = codePages.count
  }

  @inline(__always) static func slot(_ physical: UInt64) -> Int {
    Int(truncatingIfNeeded: physical & UInt64(entryCount - 1))
  }

  @inline(__always) static func tag(_ physical: UInt64, _ mode: CodeMode) -> UInt64 {
    physical | UInt64(mode.rawValue) << 56
  }

  @inline(__always)
  mutating func lookup(_ physical: UInt64, _ mode: CodeMode) -> DecodedInstruction? {
    let slot = slots[DecodeCache.slot(physical)]
    return slot.tag == DecodeCache.tag(physical, mode) ? slot.instruction : nil
  }

  /// The caller marks the page as code first (`X86Core.noteCodePage`, which also tells the
  /// data-page cache).
  mutating func insert(_ instruction: DecodedInstruction, at physical: UInt64, _ mode: CodeMode) {
    let page = Int(truncatingIfNeeded: physical >> 12)
    guard page < pageCount else { return }
    slots[DecodeCache.slot(physical)] = Slot(tag: DecodeCache.tag(physical, mode), instruction: instruction)
  }

  @inline(__always)
  mutating func noteWrite(_ physical: UInt64, size: UInt8) {
    let page = Int(truncatingIfNeeded: physical >> 12)
    let lastPage = Int(truncatingIfNeeded: (physical &+ UInt64(size) &- 1) >> 12)
    if page < pageCount && codePages[page] != 0 || lastPage != page && lastPage < pageCount && codePages[lastPage] != 0
    {
      invalidate(physical, size: size)
    }
  }

  private mutating func invalidate(_ physical: UInt64, size: UInt8) {
    codeWritten = true
    generation &+= 1
    let page = Int(truncatingIfNeeded: physical >> 12)
    let lastPage = Int(truncatingIfNeeded: (physical &+ UInt64(size) &- 1) >> 12)
    if page < pageCount { pageVersions[page] &+= 1 }
    if lastPage != page && lastPage < pageCount { pageVersions[lastPage] &+= 1 }
    let first = physical >= UInt64(maximumInstructionLength - 1) ? physical - UInt64(maximumInstructionLength - 1) : 0
    var address = first
    while address < physical &+ UInt64(size) {
      let slot = DecodeCache.slot(address)
      if slots[slot].tag != DecodeCache.emptyTag && slots[slot].tag & ((1 << 56) - 1) == address {
        slots[slot].tag = DecodeCache.emptyTag
      }
      address &+= 1
    }
  }

  mutating func flush() {
    generation &+= 1
    for slot in 0..<DecodeCache.entryCount { slots[slot].tag = DecodeCache.emptyTag }
    blocks.flush()
  }
}
