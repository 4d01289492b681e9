/// Decoded instructions by physical address, so that a loop decodes each instruction once.
/// A store into a page that holds decoded code drops that page's entries (self-modifying
/// code, and a kernel loading programs), found through one bit per 4 KiB page.
struct A64DecodeCache {
  static let entryCount = 1 << 14
  static let emptyTag = UInt64.max

  struct Slot {
    var tag = A64DecodeCache.emptyTag
    var instruction = A64Instruction()
  }
  var slots: [Slot] = Array(repeating: Slot(), count: entryCount)
  /// Pages (physical page number) with at least one cached instruction, one bit each,
  /// growing on demand (RAM on QEMU virt starts at 1 GiB).
  var codePages: [UInt64] = []

  @inline(__always) static func slot(_ physical: UInt64) -> Int {
    Int(truncatingIfNeeded: (physical >> 2) & UInt64(entryCount - 1))
  }

  @inline(__always) func lookup(_ physical: UInt64) -> A64Instruction? {
    let slot = slots[A64DecodeCache.slot(physical)]
    return slot.tag == physical ? slot.instruction : nil
  }

  mutating func insert(_ instruction: A64Instruction, at physical: UInt64) {
    slots[A64DecodeCache.slot(physical)] = Slot(tag: physical, instruction: instruction)
    let page = Int(truncatingIfNeeded: physical >> 12)
    if page >> 6 >= codePages.count { codePages += Array(repeating: 0, count: (page >> 6) + 1 - codePages.count) }
    codePages[page >> 6] |= 1 << UInt64(page & 63)
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

  /// Drops the decoded instructions of the pages `size` bytes at `physical` touch.
  mutating func invalidate(_ physical: UInt64, size: Int) {
    let first = physical >> 12
    let last = (physical &+ UInt64(size) &- 1) >> 12
    for page in first...last {
      let index = Int(truncatingIfNeeded: page)
      guard index >> 6 < codePages.count else { continue }
      codePages[index >> 6] &= ~(1 << UInt64(index & 63))
      for offset in stride(from: UInt64(0), to: 4096, by: 4) {
        let address = page << 12 | offset
        let slot = A64DecodeCache.slot(address)
        if slots[slot].tag == address { slots[slot].tag = A64DecodeCache.emptyTag }
      }
    }
  }

  mutating func flush() {
    for slot in 0..<A64DecodeCache.entryCount { slots[slot].tag = A64DecodeCache.emptyTag }
    codePages = []
  }
}
