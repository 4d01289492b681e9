/// The table walks of the three paging modes (SDM Vol. 3, 4.3, 4.4 and 4.5) and the PAE
/// PDPTE registers. Each walk records the entries it used and the rights they grant in a
/// `PageWalk`; Paging.swift checks the rights and sets the A/D bits.
extension X86Core {
  /// 4-level paging (SDM Vol. 3, 4.5): PML4E, PDPTE (1 GiB page with PS), PDE (2 MiB page
  /// with PS), PTE. Reserved: bits 51:MAXPHYADDR, XD without EFER.NXE, PS in a PML4E, and
  /// the bits between PAT (12) and the frame of a large page (tables 4-15 to 4-20).
  mutating func walkFourLevel(
    _ linear: UInt64, _ faultCode: UInt32, _ noExecuteEnabled: Bool, _ found: inout PageWalk
  ) throws(X86Exception) {
    var reserved: UInt64 = 0x000f_ffff_ffff_f000 & ~X86Core.physicalAddressMask
    if !noExecuteEnabled { reserved |= 1 << 63 }
    var table = state.cr3 & X86Core.physicalAddressMask
    var level = 4
    while true {
      let shift = UInt64(12 + 9 * (level - 1))
      let address = table | ((linear >> shift) & 0x1ff) << 3
      let entry = ram.loadPhysical(UInt64.self, at: address) ?? 0
      found.use(address)
      if entry & 1 == 0 { try pageFault(linear, faultCode) }
      let isLarge = entry & 0x80 != 0 && (level == 2 || level == 3)
      var levelReserved = reserved
      if level == 4 { levelReserved |= 0x80 }
      if isLarge { levelReserved |= level == 3 ? 0x3fff_e000 : 0x1f_e000 }
      if entry & levelReserved != 0 {
        try pageFault(linear, faultCode | PageFaultCode.present | PageFaultCode.reservedBit)
      }
      found.restrict(entry)
      if noExecuteEnabled && entry & (1 << 63) != 0 { found.executable = false }
      if level == 1 || isLarge {
        let offsetMask: UInt64 = (1 << shift) - 1
        found.physicalPage = (entry & X86Core.physicalAddressMask & ~offsetMask) | (linear & offsetMask & ~0xfff)
        found.global = entry & 0x100 != 0
        found.large = isLarge
        return
      }
      table = entry & X86Core.physicalAddressMask
      level -= 1
    }
  }

  /// PAE paging (SDM Vol. 3, 4.4): a PDPTE register chosen by bits 31:30, then a PDE (2 MiB
  /// page with PS) and a PTE. PDPTEs carry no rights. Reserved in PDEs and PTEs: bits
  /// 62:MAXPHYADDR, XD without EFER.NXE, and bits 20:13 of a 2 MiB PDE (tables 4-8 to 4-11).
  mutating func walkPAE(
    _ linear: UInt64, _ faultCode: UInt32, _ noExecuteEnabled: Bool, _ found: inout PageWalk
  ) throws(X86Exception) {
    let pdpte = pdptes[Int(truncatingIfNeeded: (linear >> 30) & 3)]
    if pdpte & 1 == 0 { try pageFault(linear, faultCode) }
    var reserved: UInt64 = 0x7fff_ffff_ffff_f000 & ~X86Core.physicalAddressMask
    if !noExecuteEnabled { reserved |= 1 << 63 }
    let directoryEntry = (pdpte & X86Core.physicalAddressMask) | ((linear >> 21) & 0x1ff) << 3
    let pde = ram.loadPhysical(UInt64.self, at: directoryEntry) ?? 0
    found.use(directoryEntry)
    if pde & 1 == 0 { try pageFault(linear, faultCode) }
    let isLarge = pde & 0x80 != 0
    if pde & (reserved | (isLarge ? 0x1f_e000 : 0)) != 0 {
      try pageFault(linear, faultCode | PageFaultCode.present | PageFaultCode.reservedBit)
    }
    found.restrict(pde)
    if noExecuteEnabled && pde & (1 << 63) != 0 { found.executable = false }
    if isLarge {
      found.physicalPage = (pde & X86Core.physicalAddressMask & ~0x1f_ffff) | (linear & 0x1f_f000)
      found.global = pde & 0x100 != 0
      found.large = true
      return
    }
    let tableEntry = (pde & X86Core.physicalAddressMask) | ((linear >> 12) & 0x1ff) << 3
    let pte = ram.loadPhysical(UInt64.self, at: tableEntry) ?? 0
    found.use(tableEntry)
    if pte & 1 == 0 { try pageFault(linear, faultCode) }
    if pte & reserved != 0 { try pageFault(linear, faultCode | PageFaultCode.present | PageFaultCode.reservedBit) }
    found.restrict(pte)
    if noExecuteEnabled && pte & (1 << 63) != 0 { found.executable = false }
    found.physicalPage = pte & X86Core.physicalAddressMask
    found.global = pte & 0x100 != 0
  }

  /// 32-bit paging (SDM Vol. 3, 4.3): 4-byte entries, a PDE chosen by bits 31:22 and a PTE by
  /// bits 21:12, or a 4 MiB page when the PDE has PS and CR4.PSE is set. PSE-36: a 4 MiB PDE's
  /// bits 20:13 are physical bits 39:32 (M = min(MAXPHYADDR, 40) = 40), and bit 21 is
  /// reserved (table 4-4). Nothing else is reserved, and there is no execute-disable.
  mutating func walk32Bit(_ linear: UInt64, _ faultCode: UInt32, _ found: inout PageWalk) throws(X86Exception) {
    found.entrySize = 4
    let directoryEntry = (state.cr3 & 0xffff_f000) | ((linear >> 22) & 0x3ff) << 2
    let pde = UInt64(ram.loadPhysical(UInt32.self, at: directoryEntry) ?? 0)
    found.use(directoryEntry)
    if pde & 1 == 0 { try pageFault(linear, faultCode) }
    found.restrict(pde)
    if pde & 0x80 != 0 && state.cr4 & ControlBit.cr4PSE != 0 {
      if pde & (1 << 21) != 0 { try pageFault(linear, faultCode | PageFaultCode.present | PageFaultCode.reservedBit) }
      found.physicalPage = (pde & 0xffc0_0000) | ((pde >> 13) & 0xff) << 32 | (linear & 0x3f_f000)
      found.global = pde & 0x100 != 0
      found.large = true
      return
    }
    let tableEntry = (pde & 0xffff_f000) | ((linear >> 12) & 0x3ff) << 2
    let pte = UInt64(ram.loadPhysical(UInt32.self, at: tableEntry) ?? 0)
    found.use(tableEntry)
    if pte & 1 == 0 { try pageFault(linear, faultCode) }
    found.restrict(pte)
    found.physicalPage = pte & 0xffff_f000
    found.global = pte & 0x100 != 0
  }

  // MARK: PAE PDPTE registers

  /// Reserved bits of a present PDPTE: 2:1, 8:5 and 63:MAXPHYADDR (SDM Vol. 3, table 4-8).
  static let pdpteReserved: UInt64 = 0x1e6 | ~((1 << physicalAddressBits) - 1)

  /// Loads the four PDPTEs from the 32-byte table at CR3[31:5] (SDM Vol. 3, 4.4.1): done by
  /// MOV to CR3 under PAE paging, and by MOV to CR0/CR4 when it enables or changes PAE
  /// paging. A present entry with a reserved bit set is #GP(0), and nothing is loaded.
  mutating func loadPDPTEs(from cr3: UInt64) throws(X86Exception) {
    let table = cr3 & 0xffff_ffe0
    var loaded: InlineArray<4, UInt64> = .init(repeating: 0)
    for index in 0..<4 {
      let entry = ram.loadPhysical(UInt64.self, at: table &+ UInt64(index * 8)) ?? 0
      if entry & 1 != 0 && entry & X86Core.pdpteReserved != 0 { throw .generalProtection(0) }
      loaded[index] = entry
    }
    pdptes = loaded
  }

  /// The same load without the check, for state written from outside (an engine boundary or a
  /// test), which arrives without a MOV to CR3 to validate it (KVM's set_sregs does likewise).
  mutating func reloadPDPTEsUnchecked() {
    let table = state.cr3 & 0xffff_ffe0
    for index in 0..<4 { pdptes[index] = ram.loadPhysical(UInt64.self, at: table &+ UInt64(index * 8)) ?? 0 }
  }

  /// Forgets every cached translation, global ones included, and the fetch page.
  mutating func flushAllTranslations() {
    tlb.flush()
    fetchPageTag = 0
  }

  /// Forgets the non-global translations (MOV to CR3, SDM Vol. 3, 4.10.4.1).
  mutating func flushNonGlobalTranslations() {
    tlb.flushNonGlobal()
    fetchPageTag = 0
  }
}

extension ControlBit {
  /// CR4.PSE: 4 MiB pages under 32-bit paging.
  public static let cr4PSE: UInt64 = 1 << 4
}
