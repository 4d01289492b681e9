/// Linear → physical translation (SDM Vol. 3, chapter 4): no paging, 32-bit paging (4.3),
/// PAE paging (4.4) and 4-level paging (4.5). The walks live in PagingWalks.swift; this file
/// has what they share: the TLB fast path, access rights (4.6), the #PF error code and CR2
/// (4.7), accessed and dirty bits (4.8) and the TLB fill.
extension X86Core {
  /// MAXPHYADDR of the model (CPUID 8000_0008h EAX[7:0]): entry bits above it are reserved.
  static let physicalAddressBits: UInt64 = 46
  static let physicalAddressMask: UInt64 = ((1 << physicalAddressBits) - 1) & ~0xfff

  /// Translates one linear address for an access of `kind`, raising #PF as the SDM defines.
  @inline(__always)
  mutating func translate(_ linear: UInt64, _ kind: AccessKind) throws(X86Exception) -> UInt64 {
    if !pagingEnabled { return linear }
    let user = privilegeLevel == 3
    if let physical = tlb.lookup(linear, permission: TLB.permissionBit(kind, user: user)) { return physical }
    return try walk(linear, kind, user: user)
  }

  /// Translation for an implicit supervisor-mode access (the GDT, LDT, IDT or TSS read while
  /// delivering an event or loading a segment): a supervisor access whatever the CPL, so the
  /// #PF error code has U/S = 0, and SMAP blocks user pages even when RFLAGS.AC is set
  /// (SDM Vol. 3, 4.6 and 4.6.1).
  mutating func translateImplicitSupervisor(_ linear: UInt64, _ kind: AccessKind) throws(X86Exception) -> UInt64 {
    if !pagingEnabled { return linear }
    if let physical = tlb.lookup(linear, permission: TLB.permissionBit(kind, user: false)) { return physical }
    return try walk(linear, kind, user: false, implicit: true)
  }

  var pagingEnabled: Bool { mutating get { state.cr0 & ControlBit.cr0PG != 0 } }

  /// The paging mode CR0.PG, CR4.PAE and EFER.LMA select (SDM Vol. 3, 4.1.1, table 4-1).
  var pagingMode: PagingMode {
    mutating get {
      if state.cr0 & ControlBit.cr0PG == 0 { return .none }
      if state.efer & ControlBit.eferLMA != 0 { return .fourLevel }
      return state.cr4 & ControlBit.cr4PAE != 0 ? .pae : .bits32
    }
  }

  /// Walks the tables of the current paging mode, checks rights, sets accessed/dirty bits and
  /// fills the TLB.
  mutating func walk(
    _ linear: UInt64, _ kind: AccessKind, user: Bool, implicit: Bool = false
  ) throws(X86Exception) -> UInt64 {
    let noExecuteEnabled = state.efer & ControlBit.eferNXE != 0
    let smep = state.cr4 & ControlBit.cr4SMEP != 0
    var faultCode: UInt32 = (kind == .write ? PageFaultCode.write : 0) | (user ? PageFaultCode.user : 0)
    let mode = pagingMode
    // I/D is reported only when fetches have rights of their own: SMEP, or NX with CR4.PAE
    // (PAE or 4-level paging) (SDM Vol. 3, 4.7).
    if kind == .execute && (smep || noExecuteEnabled && mode != .bits32) {
      faultCode |= PageFaultCode.instructionFetch
    }
    var found = PageWalk()
    switch mode {
    case .fourLevel: try walkFourLevel(linear, faultCode, noExecuteEnabled, &found)
    case .pae: try walkPAE(linear, faultCode, noExecuteEnabled, &found)
    default: try walk32Bit(linear, faultCode, &found)
    }
    return try completeWalk(linear, kind, user: user, implicit: implicit, faultCode, found)
  }

  /// Checks the rights the walk gathered, sets A and D, and caches the translation.
  private mutating func completeWalk(
    _ linear: UInt64, _ kind: AccessKind, user: Bool, implicit: Bool, _ faultCode: UInt32, _ found: PageWalk
  ) throws(X86Exception) -> UInt64 {
    let writeProtect = state.cr0 & ControlBit.cr0WP != 0
    let smep = state.cr4 & ControlBit.cr4SMEP != 0
    let smap = state.cr4 & ControlBit.cr4SMAP != 0
    // SDM Vol. 3, 4.6.1. Supervisor data accesses to user pages: SMAP forbids them unless
    // RFLAGS.AC is set and the access is explicit (implicit ones, such as descriptor-table
    // reads, ignore AC). Supervisor writes honour R/W only with CR0.WP. Supervisor fetches
    // from user pages: SMEP forbids them.
    let supervisorWrite = found.writable || !writeProtect
    let smapBlocks = found.userAllowed && smap
    let acOverride = !implicit && state.flagBits & RFlagsBit.alignmentCheck != 0
    let allowed: Bool =
      switch (kind, user) {
      case (.read, false): !smapBlocks || acOverride
      case (.write, false): supervisorWrite && (!smapBlocks || acOverride)
      case (.execute, false): found.executable && !(found.userAllowed && smep)
      case (.read, true): found.userAllowed
      case (.write, true): found.userAllowed && found.writable
      case (.execute, true): found.userAllowed && found.executable
      }
    if !allowed { try pageFault(linear, faultCode | PageFaultCode.present) }

    // The translation stands: set A in every entry used, and D in the leaf for a write.
    // (On a fault none are set; the SDM leaves that to the implementation.) The stores go
    // through the decode cache's write check, so code sharing a page with tables stays right.
    var dirty = false
    for index in 0..<found.count {
      let address = found.entryAddresses[index]
      let leaf = index == found.count - 1
      if found.entrySize == 8 {
        guard let entry = ram.loadPhysical(UInt64.self, at: address) else { continue }
        let updated = entry | 0x20 | (leaf && kind == .write ? 0x40 : 0)
        if leaf { dirty = updated & 0x40 != 0 }
        if updated != entry {
          _ = ram.storePhysical(updated, at: address)
          decodeCache.noteWrite(address, size: 8)
        }
      } else {
        guard let entry = ram.loadPhysical(UInt32.self, at: address) else { continue }
        let updated = entry | 0x20 | (leaf && kind == .write ? 0x40 : 0)
        if leaf { dirty = updated & 0x40 != 0 }
        if updated != entry {
          _ = ram.storePhysical(updated, at: address)
          decodeCache.noteWrite(address, size: 4)
        }
      }
    }
    // Writes are cached only once D is set, so the first write to a clean page walks. With
    // SMAP, supervisor data accesses to user pages are never cached: their right depends on
    // RFLAGS.AC, which changes without a TLB flush.
    var bits: UInt8 = 0
    if !smapBlocks {
      bits |= TLB.permissionBit(.read, user: false)
      if supervisorWrite && dirty { bits |= TLB.permissionBit(.write, user: false) }
    }
    if found.executable && !(found.userAllowed && smep) { bits |= TLB.permissionBit(.execute, user: false) }
    if found.userAllowed {
      bits |= TLB.permissionBit(.read, user: true)
      if found.writable && dirty { bits |= TLB.permissionBit(.write, user: true) }
      if found.executable { bits |= TLB.permissionBit(.execute, user: true) }
    }
    // G counts only with CR4.PGE (SDM Vol. 3, 4.10.2.4).
    if found.global && state.cr4 & ControlBit.cr4PGE != 0 { bits |= TLB.globalBit }
    if found.large { bits |= TLB.largePageBit }
    tlb.fill(linear, physicalPage: found.physicalPage, allowed: bits)
    return found.physicalPage | (linear & 0xfff)
  }

  mutating func pageFault(_ linear: UInt64, _ code: UInt32) throws(X86Exception) -> Never {
    state.cr2 = linear
    throw X86Exception.pageFault(code)
  }
}

/// The four paging modes (SDM Vol. 3, 4.1.1); 5-level paging is not modelled.
enum PagingMode: UInt8 {
  case none, bits32, pae, fourLevel
}

/// What a walk found before rights are checked: the entries it used (for the A and D bits),
/// the rights all levels allow together, and the 4 KiB physical frame of the linear page.
struct PageWalk {
  var entryAddresses: InlineArray<4, UInt64> = .init(repeating: 0)
  var count = 0
  /// 8 (PAE and 4-level entries) or 4 (32-bit paging).
  var entrySize = 8
  var writable = true
  var userAllowed = true
  var executable = true
  /// The leaf's G bit (honoured only with CR4.PGE).
  var global = false
  /// The page is larger than 4 KiB (INVLPG must then drop every TLB slot it fills).
  var large = false
  var physicalPage: UInt64 = 0

  mutating func use(_ address: UInt64) {
    entryAddresses[count] = address
    count += 1
  }

  /// Folds one entry's R/W and U/S bits into the rights (SDM Vol. 3, 4.6: every level counts).
  mutating func restrict(_ entry: UInt64) {
    writable = writable && entry & 2 != 0
    userAllowed = userAllowed && entry & 4 != 0
  }
}
