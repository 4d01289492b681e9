/// The paging state that decides how a linear address becomes a physical one.
public struct PagingMode: Sendable, Equatable {
  public var cr0: UInt64
  public var cr3: UInt64
  public var cr4: UInt64
  public var efer: UInt64

  public init(cr0: UInt64, cr3: UInt64, cr4: UInt64, efer: UInt64) {
    self.cr0 = cr0
    self.cr3 = cr3
    self.cr4 = cr4
    self.efer = efer
  }

  var pagingEnabled: Bool { cr0 & (1 << 31) != 0 && cr0 & 1 != 0 }
  var pae: Bool { cr4 & (1 << 5) != 0 }
  var longMode: Bool { efer & (1 << 10) != 0 }
  var fiveLevel: Bool { cr4 & (1 << 12) != 0 }
  var pse: Bool { cr4 & (1 << 4) != 0 }
}

/// Why a linear address has no physical address.
public enum TranslationError: Error, Equatable, CustomStringConvertible {
  /// A paging-structure entry on the way is not present.
  case notMapped(linear: UInt64, level: Int)
  /// A paging structure itself lies outside guest RAM.
  case tableOutsideRAM(linear: UInt64, table: UInt64)
  /// A 48- or 57-bit address whose upper bits are not a sign extension.
  case nonCanonical(UInt64)

  public var description: String {
    switch self {
    case .notMapped(let linear, let level):
      "0x\(String(linear, radix: 16)) is not mapped (level \(level) entry not present)"
    case .tableOutsideRAM(let linear, let table):
      "0x\(String(linear, radix: 16)): page table at 0x\(String(table, radix: 16)) is outside guest RAM"
    case .nonCanonical(let linear): "0x\(String(linear, radix: 16)) is not canonical"
    }
  }
}

/// A page of the guest's linear address space as its page tables describe it.
public struct GuestPage: Sendable, Equatable {
  /// The linear address of its first byte, and its size: 4 KiB, 2 or 4 MiB or 1 GiB; 4 GiB
  /// with paging off; for an unmapped address, what the missing entry would have mapped.
  public var start: UInt64
  public var size: UInt64
  public var mapped: Bool
  public var writable: Bool
  public var executable: Bool

  public init(start: UInt64, size: UInt64, mapped: Bool, writable: Bool, executable: Bool) {
    self.start = start
    self.size = size
    self.mapped = mapped
    self.writable = writable
    self.executable = executable
  }
}

/// Walks the guest's own page tables, as the MMU would: no paging, 32-bit (with 4 MiB
/// pages under PSE), PAE, and 4- or 5-level long-mode paging. Access rights are not
/// checked: a debugger may read what the guest could not.
public struct PageWalker {
  public let memory: GuestRAM
  public let mode: PagingMode

  public init(memory: GuestRAM, mode: PagingMode) {
    self.memory = memory
    self.mode = mode
  }

  public func translate(_ linear: UInt64) throws(TranslationError) -> GuestAddress {
    try walk(linear).physical
  }

  /// The guest-physical pages (page numbers) of the table entries a translation of `linear`
  /// reads, root first, as far as the walk gets (an unmapped address gives the tables up to
  /// the missing entry): a write to any of them may change where `linear` goes.
  public func tablePages(for linear: UInt64) -> [UInt64] {
    var tables: [UInt64]? = []
    _ = try? walk(linear, tables: &tables)
    return tables ?? []
  }

  /// The page `linear` lies in and what the guest's tables allow there: the unit a
  /// debugger's memory map shows (LLDB's qMemoryRegionInfo). An address the tables do not
  /// map gives the span the missing entry would have mapped (the non-canonical hole, in
  /// long mode), not an error; only a table outside RAM is one.
  public func page(containing linear: UInt64) throws(TranslationError) -> GuestPage {
    do {
      let found = try walk(linear)
      let size = UInt64(1) << found.pageShift
      let address = mode.pagingEnabled && !mode.longMode ? linear & 0xffff_ffff : linear
      return GuestPage(
        start: address & ~(size - 1), size: size, mapped: true, writable: found.writable,
        executable: !found.executeDisabled)
    } catch .notMapped(let address, let level) {
      // Each level's index has 9 bits (8-byte entries) or 10 (4-byte): the entry at `level`
      // maps 2^(12 + bits * (level - 1)) bytes (the PAE PDPTE, level 3, 1 GiB).
      let indexBits: UInt64 = mode.pae || mode.longMode ? 9 : 10
      let size = UInt64(1) << (12 + indexBits * UInt64(level - 1))
      return GuestPage(start: address & ~(size - 1), size: size, mapped: false, writable: false, executable: false)
    } catch .nonCanonical {
      let bits: UInt64 = mode.fiveLevel ? 57 : 48
      let hole = UInt64(1) << (bits - 1)  // up to the sign-extended upper half
      return GuestPage(start: hole, size: 0 &- (hole << 1), mapped: false, writable: false, executable: false)
    }
  }

  /// A translation and what the entries on the way allow (SDM vol. 3, 4.6: writes need R/W in
  /// every entry; with EFER.NXE, XD in any entry forbids fetches).
  private struct Walk {
    var physical: GuestAddress
    var pageShift: UInt64
    var writable = true
    var executeDisabled = false
  }

  private func walk(_ linear: UInt64) throws(TranslationError) -> Walk {
    // No list kept: translations are frequent, and appending would allocate.
    var none: [UInt64]? = nil
    return try walk(linear, tables: &none)
  }

  private func walk(_ linear: UInt64, tables: inout [UInt64]?) throws(TranslationError) -> Walk {
    guard mode.pagingEnabled else { return Walk(physical: GuestAddress(linear & 0xffff_ffff), pageShift: 32) }
    if mode.longMode {
      let bits: UInt64 = mode.fiveLevel ? 57 : 48
      let upper = linear >> (bits - 1)
      guard upper == 0 || upper == (UInt64.max >> (bits - 1)) else { throw .nonCanonical(linear) }
      return try walk(
        linear, levels: mode.fiveLevel ? 5 : 4, entryBytes: 8, root: mode.cr3 & 0x000f_ffff_ffff_f000, tables: &tables)
    }
    let address = linear & 0xffff_ffff
    if mode.pae {
      // The 4-entry PDPT is 32-byte aligned and indexed by bits 31:30.
      let pdpteAddress = (mode.cr3 & 0xffff_ffe0) + ((address >> 30) & 3) * 8
      tables?.append(pdpteAddress >> 12)
      let pdpte = try entry(at: pdpteAddress, linear: address)
      guard pdpte & 1 != 0 else { throw .notMapped(linear: address, level: 3) }
      return try walk(address, levels: 2, entryBytes: 8, root: pdpte & 0x000f_ffff_ffff_f000, tables: &tables)
    }
    return try walk(address, levels: 2, entryBytes: 4, root: mode.cr3 & 0xffff_f000, tables: &tables)
  }

  /// Descends `levels` tables; each index has 9 bits (8-byte entries) or 10 (4-byte).
  private func walk(_ linear: UInt64, levels: Int, entryBytes: UInt64, root: UInt64, tables: inout [UInt64]?)
    throws(TranslationError) -> Walk
  {
    let indexBits: UInt64 = entryBytes == 8 ? 9 : 10
    let noExecute = entryBytes == 8 && mode.efer & (1 << 11) != 0
    var table = root
    var found = Walk(physical: 0, pageShift: 12)
    for level in stride(from: levels, through: 1, by: -1) {
      let shift = 12 + indexBits * UInt64(level - 1)
      let index = (linear >> shift) & ((1 << indexBits) - 1)
      tables?.append((table + index * entryBytes) >> 12)
      let value = try entry(at: table + index * entryBytes, linear: linear, fourBytes: entryBytes == 4)
      guard value & 1 != 0 else { throw .notMapped(linear: linear, level: level) }
      found.writable = found.writable && value & 2 != 0
      found.executeDisabled = found.executeDisabled || (noExecute && value & (1 << 63) != 0)
      let addressMask: UInt64 = entryBytes == 8 ? 0x000f_ffff_ffff_f000 : 0xffff_f000
      let large = value & (1 << 7) != 0 && level > 1 && (entryBytes == 8 || mode.pse)
      if large {
        let pageMask = (UInt64(1) << shift) - 1
        found.pageShift = shift
        if entryBytes == 4 {
          // PSE-36: bits 20:13 of a 4 MiB PDE hold physical-address bits 39:32.
          let high = ((value >> 13) & 0xff) << 32
          found.physical = GuestAddress((value & 0xffc0_0000) | high | (linear & pageMask))
        } else {
          found.physical = GuestAddress((value & addressMask & ~pageMask) | (linear & pageMask))
        }
        return found
      }
      table = value & addressMask
    }
    found.physical = GuestAddress(table | (linear & 0xfff))
    return found
  }

  private func entry(at address: UInt64, linear: UInt64, fourBytes: Bool = false) throws(TranslationError) -> UInt64 {
    do {
      return fourBytes
        ? UInt64(try memory.load(UInt32.self, at: GuestAddress(address)))
        : try memory.load(UInt64.self, at: GuestAddress(address))
    } catch {
      throw .tableOutsideRAM(linear: linear, table: address)
    }
  }

  /// Calls `body` for each piece of [linear, linear + count) that lies in one page, with the
  /// piece's guest-physical address and its offsets within the whole range.
  public func forEachPage(linear: UInt64, count: Int, _ body: (GuestAddress, Range<Int>) throws -> Void) throws {
    var done = 0
    var cursor = linear
    while done < count {
      let inPage = min(count - done, Int(0x1000 - (cursor & 0xfff)))
      try body(try translate(cursor), done..<done + inPage)
      done += inPage
      cursor &+= UInt64(inPage)
    }
  }

  /// Reads `count` bytes at a linear address, page by page.
  public func read(linear: UInt64, count: Int) throws -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(count)
    try forEachPage(linear: linear, count: count) { physical, piece in
      bytes += try memory.read(at: physical, count: piece.count)
    }
    return bytes
  }

  /// Writes bytes at a linear address, page by page.
  public func write(_ bytes: [UInt8], linear: UInt64) throws {
    try forEachPage(linear: linear, count: bytes.count) { physical, piece in
      try memory.write(bytes[piece], at: physical)
    }
  }
}
