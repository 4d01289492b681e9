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
/// Flushed whole when CR3, CR0, CR4 or EFER change (through `X86CPU.state`); INVLPG will
/// drop one entry.
struct TLB {
  static let entryCount = 1024

  // Inline storage (17 KiB inside the core, which is never copied): no buffer indirection, and
  // the masked slot lets the optimiser drop bounds checks.
  /// Linear page number + 1 (0: empty), per slot.
  var tags: InlineArray<1024, UInt64> = .init(repeating: 0)
  var physicalPages: InlineArray<1024, UInt64> = .init(repeating: 0)
  /// Bit (kind + 3 * user): the access is allowed without a walk.
  var allowed: InlineArray<1024, UInt8> = .init(repeating: 0)

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
  }

  mutating func flush() {
    for slot in 0..<TLB.entryCount { tags[slot] = 0 }
  }
}
