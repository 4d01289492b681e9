/// Linear → physical translation: no paging, and 4-level paging (SDM Vol. 3, 4.5).
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

  var pagingEnabled: Bool { mutating get { state.cr0 & ControlBit.cr0PG != 0 } }

  /// Walks the four levels, checks rights, sets accessed/dirty bits, fills the TLB.
  mutating func walk(_ linear: UInt64, _ kind: AccessKind, user: Bool) throws(X86Exception) -> UInt64 {
    guard state.longModeActive else {
      unsupported = .legacyPaging
      throw X86Exception(vector: X86Exception.Vector.generalProtection, errorCode: 0)
    }
    let noExecuteEnabled = state.efer & ControlBit.eferNXE != 0
    // Reserved bits: above MAXPHYADDR (51:M), and XD when NXE is clear (SDM Vol. 3, 4.5.4).
    var reserved: UInt64 = 0x000f_ffff_ffff_f000 & ~X86Core.physicalAddressMask
    if !noExecuteEnabled { reserved |= 1 << 63 }
    var faultCode: UInt32 = (kind == .write ? PageFaultCode.write : 0) | (user ? PageFaultCode.user : 0)
    // I/D is reported only when NX (or SMEP) gives fetches their own rights (SDM Vol. 3, 4.7).
    if kind == .execute && noExecuteEnabled { faultCode |= PageFaultCode.instructionFetch }

    var entryAddresses: InlineArray<4, UInt64> = .init(repeating: 0)
    var table = state.cr3 & X86Core.physicalAddressMask
    var writable = true
    var userAllowed = true
    var executable = true
    var level = 4
    var physicalPage: UInt64 = 0
    while true {
      let shift = UInt64(12 + 9 * (level - 1))
      let entryAddress = table | ((linear >> shift) & 0x1ff) << 3
      let entry = ram.loadPhysical(UInt64.self, at: entryAddress) ?? 0
      entryAddresses[4 - level] = entryAddress
      if entry & 1 == 0 { return try pageFault(linear, faultCode) }
      var levelReserved = reserved
      let isLarge = entry & 0x80 != 0 && (level == 2 || level == 3)
      if level == 4 { levelReserved |= 0x80 }  // PS is reserved in a PML4E
      if isLarge { levelReserved |= level == 3 ? 0x3fff_e000 : 0x1f_e000 }  // between PAT (bit 12) and the frame
      if entry & levelReserved != 0 {
        return try pageFault(linear, faultCode | PageFaultCode.present | PageFaultCode.reservedBit)
      }
      writable = writable && entry & 2 != 0
      userAllowed = userAllowed && entry & 4 != 0
      executable = executable && !(noExecuteEnabled && entry & (1 << 63) != 0)
      if level == 1 || isLarge {
        let frameMask = X86Core.physicalAddressMask & ~((1 << shift) - 1)
        physicalPage = (entry & frameMask) | (linear & ((1 << shift) - 1) & ~0xfff)
        break
      }
      table = entry & X86Core.physicalAddressMask
      level -= 1
    }
    let supervisorWriteAllowed = writable || state.cr0 & ControlBit.cr0WP == 0
    let allowed: Bool =
      switch kind {
      case .read: !user || userAllowed
      case .write: user ? userAllowed && writable : supervisorWriteAllowed
      case .execute: executable && (!user || userAllowed)
      }
    if !allowed { return try pageFault(linear, faultCode | PageFaultCode.present) }

    // The translation stands: set A in every entry used, and D in the leaf for a write.
    // (On a fault none are set here; the SDM leaves that to the implementation.)
    let leafIndex = 4 - level
    var dirty = false
    for index in 0...leafIndex {
      let address = entryAddresses[index]
      guard let entry = ram.loadPhysical(UInt64.self, at: address) else { continue }
      var updated = entry | 0x20
      if index == leafIndex {
        if kind == .write { updated |= 0x40 }
        dirty = updated & 0x40 != 0
      }
      if updated != entry { _ = ram.storePhysical(updated, at: address) }
    }
    // Writes are cached only once D is set, so the first write to a clean page walks.
    var bits: UInt8 = TLB.permissionBit(.read, user: false)
    if supervisorWriteAllowed && dirty { bits |= TLB.permissionBit(.write, user: false) }
    if executable { bits |= TLB.permissionBit(.execute, user: false) }
    if userAllowed {
      bits |= TLB.permissionBit(.read, user: true)
      if writable && dirty { bits |= TLB.permissionBit(.write, user: true) }
      if executable { bits |= TLB.permissionBit(.execute, user: true) }
    }
    tlb.fill(linear, physicalPage: physicalPage, allowed: bits)
    return physicalPage | (linear & 0xfff)
  }

  private mutating func pageFault(_ linear: UInt64, _ code: UInt32) throws(X86Exception) -> UInt64 {
    state.cr2 = linear
    throw X86Exception.pageFault(code)
  }
}
