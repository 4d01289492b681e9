/// Decoded instructions by physical address, so that a loop decodes each instruction once.
///
/// Self-modifying code (and a kernel loading programs): each 4 KiB page has a version, and a
/// slot remembers the version of its page when it was decoded; a store into a page that
/// holds decoded code (one bit per page says so) bumps the page's version, which makes all
/// of that page's slots stale at once, in O(1).
struct A64DecodeCache {
  static let entryCount = 1 << 14
  static let emptyTag = UInt64.max

  struct Slot {
    var tag = A64DecodeCache.emptyTag
    var version: UInt32 = 0
    var instruction = A64Instruction()
  }
  var slots: [Slot] = Array(repeating: Slot(), count: entryCount)
  /// Pages (physical page number) with at least one cached instruction, one bit each, and
  /// each page's version; both grow on demand (RAM on QEMU virt starts at 1 GiB).
  var codePages: [UInt64] = []
  var pageVersions: [UInt32] = []

  @inline(__always) static func slot(_ physical: UInt64) -> Int {
    Int(truncatingIfNeeded: (physical >> 2) & UInt64(entryCount - 1))
  }

  @inline(__always) func version(of page: Int) -> UInt32 { page < pageVersions.count ? pageVersions[page] : 0 }

  /// Whether slot `slot` holds the current decoding of the instruction at `physical`.
  @inline(__always) func holds(_ slot: Int, _ physical: UInt64) -> Bool {
    slots[slot].tag == physical && slots[slot].version == version(of: Int(truncatingIfNeeded: physical >> 12))
  }

  mutating func insert(_ instruction: A64Instruction, at physical: UInt64) {
    let page = Int(truncatingIfNeeded: physical >> 12)
    if page >> 6 >= codePages.count { codePages += Array(repeating: 0, count: (page >> 6) + 1 - codePages.count) }
    if page >= pageVersions.count { pageVersions += Array(repeating: 0, count: page + 1 - pageVersions.count) }
    codePages[page >> 6] |= 1 << UInt64(page & 63)
    slots[A64DecodeCache.slot(physical)] = Slot(tag: physical, version: pageVersions[page], instruction: instruction)
  }

  /// Whether a store of `size` bytes at `physical` touches a page with decoded code.
  @inline(__always) func holdsCode(_ physical: UInt64, size: Int) -> Bool {
    let first = Int(truncatingIfNeeded: physical >> 12)
    let last = Int(truncatingIfNeeded: (physical &+ UInt64(size) &- 1) >> 12)
    for page in first...last where page >> 6 < codePages.count && codePages[page >> 6] & (1 << UInt64(page & 63)) != 0 {
      return true
    }
    return false
  }

  /// Makes the decoded instructions of the pages `size` bytes at `physical` touch stale.
  mutating func invalidate(_ physical: UInt64, size: Int) {
    let first = Int(truncatingIfNeeded: physical >> 12)
    let last = Int(truncatingIfNeeded: (physical &+ UInt64(size) &- 1) >> 12)
    for page in first...last where page < pageVersions.count {
      pageVersions[page] &+= 1
      codePages[page >> 6] &= ~(1 << UInt64(page & 63))
    }
  }

  mutating func flush() {
    for slot in 0..<A64DecodeCache.entryCount { slots[slot].tag = A64DecodeCache.emptyTag }
    codePages = []
  }
}
