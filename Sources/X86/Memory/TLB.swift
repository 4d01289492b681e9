/// How an access uses memory; each kind needs its own permission (SDM Vol. 3, 4.6).
enum AccessKind: UInt8 {
  case read = 0
  case write = 1
  case execute = 2
}

/// A direct-mapped software TLB (1024 entries): linear page → physical page, with what the walk
/// allowed. A hit costs one tag comparison and one bit test; anything else (a miss, or an
/// access the cached rights do not cover, such as the first write to a clean page) walks
/// the tables again, so faults and accessed/dirty updates are always exactly the walk's.
///
/// Flushed whole when state is written through `X86CPU.state` and by MOV to CR0/CR4 changes
/// that alter translations; MOV to CR3 keeps global entries (CR4.PGE); INVLPG drops one page
/// (SDM Vol. 3, 4.10.4.1).
struct TLB {
  static let entryCount = 1024

  // Inline storage (17 KiB inside the core, which is never copied): no buffer indirection, and
  // the masked slot lets the optimiser drop bounds checks.
  /// Linear page number + 1 (0: empty), per slot.
  var tags: InlineArray<1024, UInt64> = .init(repeating: 0)
  var physicalPages: InlineArray<1024, UInt64> = .init(repeating: 0)
  /// Bit (kind + 3 * user): the access is allowed without a walk; plus `largePageBit` and
  /// `globalBit`, which no permission bit tests.
  var allowed: InlineArray<1024, UInt8> = .init(repeating: 0)
  /// Some slot holds a piece of a large page since the last full flush.
  var holdsLargePages = false
  /// Bumped whenever a translation or a data-page slot may have gone (every flush, INVLPG, a
  /// page turning into code): the JIT tier empties its own data TLB and translations, which
  /// are keyed by linear address, when this differs from what it last saw (X86JIT.swift).
  var generation: UInt64 = 0

  /// The data-page cache: linear pages whose data reads (or writes) need no segment-free
  /// re-derivation at all: the page's translation for the current privilege is in this TLB
  /// (or paging is off), the whole physical page is guest RAM, no data breakpoint or watch
  /// range is armed and, for writes, no decoded code lies in the page (so a store needs no
  /// self-modifying-code check). An aligned access that hits is a tag comparison and a RAM
  /// access (`X86Core.readLinear`, `writeLinear`). Filled by the slow path after an access
  /// succeeded (`X86Core.fillDataPage`); emptied with the TLB (every flush and INVLPG), when a
  /// page turns into code (write tags) and when data checks are armed: never more permissive
  /// than the walk.
  static let dataEntryCount = 256
  /// `dataTag` of the cached page (0: empty), for reads and for writes (a read with write
  /// intent uses the write tag).
  var dataReadTags: InlineArray<256, UInt64> = .init(repeating: 0)
  var dataWriteTags: InlineArray<256, UInt64> = .init(repeating: 0)
  /// The physical page of the slot's linear page, for whichever tags are set.
  var dataPhysicalPages: InlineArray<256, UInt64> = .init(repeating: 0)

  @inline(__always) static func dataSlot(_ linear: UInt64) -> Int {
    let page = linear >> 12
    return Int(truncatingIfNeeded: (page ^ page >> 8) & UInt64(dataEntryCount - 1))
  }

  /// The linear page and the privilege (`X86State.dataTagPrivilege`: 1, or 3 at CPL 3).
  @inline(__always) static func dataTag(_ linear: UInt64, privilege: UInt64) -> UInt64 {
    (linear >> 12) << 2 | privilege
  }

  mutating func flushData() {
    generation &+= 1
    for slot in 0..<TLB.dataEntryCount {
      dataReadTags[slot] = 0
      dataWriteTags[slot] = 0
    }
  }

  /// Drops the write tags of slots mapping `physicalPage` (page address): it now holds code.
  mutating func dropDataWrites(toPhysicalPage physicalPage: UInt64) {
    generation &+= 1
    for slot in 0..<TLB.dataEntryCount where dataPhysicalPages[slot] == physicalPage { dataWriteTags[slot] = 0 }
  }

  /// The translation came from a page larger than 4 KiB: each slot holds one 4 KiB piece.
  static let largePageBit: UInt8 = 1 << 6
  /// The leaf entry had G with CR4.PGE set: survives MOV to CR3.
  static let globalBit: UInt8 = 1 << 7

  /// The page number folded onto itself, so that regions a power-of-two apart (code at 1 MiB,
  /// data at 2 MiB) do not evict each other as they would on the plain low bits.
  @inline(__always) static func slot(_ linear: UInt64) -> Int {
    let page = linear >> 12
    return Int(truncatingIfNeeded: (page ^ page >> 10 ^ page >> 20) & UInt64(entryCount - 1))
  }

  @inline(__always) static func permissionBit(_ kind: AccessKind, user: Bool) -> UInt8 {
    1 << (kind.rawValue &+ (user ? 3 : 0))
  }

  /// The physical address, or nil when the walk must decide. `mutating` only so that the
  /// 17 KiB struct is passed by address: as a plain method the optimiser copied it per lookup.
  @inline(__always)
  mutating func lookup(_ linear: UInt64, permission: UInt8) -> UInt64? {
    let slot = TLB.slot(linear)
    if tags[slot] == (linear >> 12) &+ 1 && allowed[slot] & permission != 0 {
      return physicalPages[slot] | (linear & 0xfff)
    }
    return nil
  }

  mutating func fill(_ linear: UInt64, physicalPage: UInt64, allowed bits: UInt8) {
    let slot = TLB.slot(linear)
    tags[slot] = (linear >> 12) &+ 1
    physicalPages[slot] = physicalPage
    allowed[slot] = bits
    if bits & TLB.largePageBit != 0 { holdsLargePages = true }
  }

  mutating func flush() {
    for slot in 0..<TLB.entryCount { tags[slot] = 0 }
    holdsLargePages = false
    flushData()
  }

  /// Drops every entry not marked global.
  mutating func flushNonGlobal() {
    for slot in 0..<TLB.entryCount where allowed[slot] & TLB.globalBit == 0 { tags[slot] = 0 }
    flushData()
  }

  /// INVLPG: drops the page holding `linear`, global or not. A large page is cached as 4 KiB
  /// pieces whose size is not recorded, so every large-page piece in the 1 GiB-aligned region
  /// holding `linear` goes too: a large page (2 MiB, 4 MiB or 1 GiB, aligned to its size) that
  /// contains `linear` lies wholly in that region, so this drops more than INVLPG must, never
  /// less. (Dropping every large piece, as before, threw away a Linux kernel's text mappings,
  /// and its translated code, at each of the kernel's many INVLPGs elsewhere.)
  mutating func invalidate(_ linear: UInt64) {
    let slot = TLB.slot(linear)
    if tags[slot] == (linear >> 12) &+ 1 { tags[slot] = 0 }
    if holdsLargePages {
      let region = linear >> 30
      for slot in 0..<TLB.entryCount
      where allowed[slot] & TLB.largePageBit != 0 && (tags[slot] &- 1) >> 18 == region {
        tags[slot] = 0
      }
    }
    // The data cache does not record which pages came from large ones.
    flushData()
  }
}
