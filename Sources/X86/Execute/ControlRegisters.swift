/// MOV to/from CR0, CR2, CR3, CR4, CR8; CLTS, LMSW, SMSW; INVLPG, INVD/WBINVD; STAC/CLAC
/// (SDM Vol. 2, those entries; Vol. 3, 2.5 and 4.10.4; mode switching in 9.8).
///
/// Decisions for this model:
/// - LOCK MOV CR0 as CR8 (AMD's AltMovCr8) is not offered (CPUID does not advertise it), so a
///   LOCK prefix on MOV CR is #UD, as on Intel. CR1, CR5-CR7 and CR9-CR15 are #UD at decode.
/// - CR0's reserved bits 28:19 (except AM), 17 and 15:6 are ignored on a write and read as 0,
///   and ET stays 1 (KVM and current CPUs do the same); bits 63:32 are #GP(0).
/// - CR4 accepts only the bits in `writableCR4`: the features this model implements, plus
///   DE, OSFXSR and OSXMMEXCPT, which the debug and SSE work depend on. Any other bit is
///   #GP(0) (SDM Vol. 3, 2.5: "setting a reserved bit in CR4").
extension X86Core {
  /// CR0's defined bits: PE MP EM TS ET NE WP AM NW CD PG.
  static let definedCR0: UInt64 = 0xe005_003f
  static let cr0ET: UInt64 = 1 << 4
  static let cr0TS: UInt64 = 1 << 3
  static let cr0NW: UInt64 = 1 << 29
  static let cr0CD: UInt64 = 1 << 30

  /// TSD DE PSE PAE PGE OSFXSR OSXMMEXCPT SMEP SMAP.
  static let writableCR4: UInt64 =
    ControlBit.cr4TSD | 1 << 3 | ControlBit.cr4PSE | ControlBit.cr4PAE | ControlBit.cr4PGE | 1 << 9 | 1 << 10
    | ControlBit.cr4SMEP | ControlBit.cr4SMAP

  /// MOV CRn, r (0F 22): `d.reg` is the control register, `d.rm` the source.
  mutating func movToControlRegister(_ d: DecodedInstruction) throws(X86Exception) {
    if privilegeLevel != 0 { throw .generalProtection(0) }
    let value = register(d.rm, size: d.operandSize, d)
    switch d.reg {
    case 0: try writeCR0(value)
    case 2: state.cr2 = value
    case 3: try writeCR3(value)
    case 4: try writeCR4(value)
    default: try writeCR8(value)
    }
  }

  /// MOV r, CRn (0F 20): the register gets the whole CR in 64-bit mode, its low half otherwise.
  mutating func movFromControlRegister(_ d: DecodedInstruction) throws(X86Exception) {
    if privilegeLevel != 0 { throw .generalProtection(0) }
    let value: UInt64 =
      switch d.reg {
      case 0: state.cr0
      case 2: state.cr2
      case 3: state.cr3
      case 4: state.cr4
      default: state.cr8
      }
    setRegister(d.rm, size: d.operandSize, d, value & sizeMask(d.operandSize))
  }

  /// CR0 (SDM Vol. 2, MOV—Move to/from Control Registers; Vol. 3, 2.5, 9.8.5 and 9.9.2):
  /// #GP(0) for bits 63:32, PG without PE, NW without CD, PG with EFER.LME but not CR4.PAE,
  /// and clearing PG in 64-bit mode. Setting PG with LME activates IA-32e mode (EFER.LMA);
  /// clearing it (from compatibility mode) deactivates it. Enabling PAE paging loads the
  /// PDPTEs first (4.4.1), so a bad PDPTE leaves everything as it was.
  mutating func writeCR0(_ value: UInt64) throws(X86Exception) {
    if value >> 32 != 0 { throw .generalProtection(0) }
    let new = value & X86Core.definedCR0 | X86Core.cr0ET
    let old = state.cr0
    let paging = new & ControlBit.cr0PG != 0
    if paging && new & ControlBit.cr0PE == 0 { throw .generalProtection(0) }
    if new & X86Core.cr0NW != 0 && new & X86Core.cr0CD == 0 { throw .generalProtection(0) }
    let wasPaging = old & ControlBit.cr0PG != 0
    let longModeEnabled = state.efer & ControlBit.eferLME != 0
    if paging && !wasPaging && longModeEnabled && state.cr4 & ControlBit.cr4PAE == 0 {
      throw .generalProtection(0)
    }
    if !paging && wasPaging && codeMode == .bits64 { throw .generalProtection(0) }
    // PAE paging in use afterwards, and PG, CD or NW modified: the PDPTEs load (SDM 4.4.1).
    let paePagingAfter = paging && state.cr4 & ControlBit.cr4PAE != 0 && !longModeEnabled
    let changed = old ^ new
    if paePagingAfter && changed & (ControlBit.cr0PG | X86Core.cr0CD | X86Core.cr0NW) != 0 {
      try loadPDPTEs(from: state.cr3)
    }
    state.cr0 = new
    if paging && !wasPaging && longModeEnabled { state.efer |= ControlBit.eferLMA }
    if !paging { state.efer &= ~ControlBit.eferLMA }
    // Clearing PG must drop everything (SDM 4.10.4.1); PE and WP decide rights the TLB caches.
    if changed & (ControlBit.cr0PG | ControlBit.cr0PE | ControlBit.cr0WP) != 0 { flushAllTranslations() }
    codeMode = state.codeMode
  }

  /// CR3: in 64-bit mode bits 63:MAXPHYADDR are reserved (#GP(0)); PCIDs are not modelled,
  /// so bit 63 is reserved too. Under PAE paging the PDPTEs load from the new value. Non-global
  /// translations are flushed (SDM Vol. 3, 4.10.4.1).
  mutating func writeCR3(_ value: UInt64) throws(X86Exception) {
    if value >> X86Core.physicalAddressBits != 0 { throw .generalProtection(0) }
    if pagingMode == .pae { try loadPDPTEs(from: value) }
    state.cr3 = value
    flushNonGlobalTranslations()
  }

  /// CR4: bits outside `writableCR4` are #GP(0), and so is clearing PAE in IA-32e mode. A
  /// change of PGE, PAE, PSE, SMEP or SMAP flushes every translation, global ones included;
  /// under PAE paging a change of PAE, PGE, PSE or SMEP reloads the PDPTEs (4.4.1, 4.10.4.1).
  mutating func writeCR4(_ value: UInt64) throws(X86Exception) {
    if value & ~X86Core.writableCR4 != 0 { throw .generalProtection(0) }
    if state.longModeActive && value & ControlBit.cr4PAE == 0 { throw .generalProtection(0) }
    let changed = state.cr4 ^ value
    let paePagingAfter =
      state.cr0 & ControlBit.cr0PG != 0 && value & ControlBit.cr4PAE != 0 && !state.longModeActive
    let pagingBits = ControlBit.cr4PAE | ControlBit.cr4PGE | ControlBit.cr4PSE | ControlBit.cr4SMEP
    if paePagingAfter && changed & pagingBits != 0 { try loadPDPTEs(from: state.cr3) }
    state.cr4 = value
    if changed & (pagingBits | ControlBit.cr4SMAP) != 0 { flushAllTranslations() }
  }

  /// CR8 (64-bit mode only): the TPR's bits 7:4 in bits 3:0; bits 63:4 are reserved.
  mutating func writeCR8(_ value: UInt64) throws(X86Exception) {
    if value & ~0xf != 0 { throw .generalProtection(0) }
    state.cr8 = value
  }

  /// CLTS: clears CR0.TS; CPL 0 only.
  mutating func clts() throws(X86Exception) {
    if privilegeLevel != 0 { throw .generalProtection(0) }
    state.cr0 &= ~X86Core.cr0TS
  }

  /// LMSW: loads CR0 bits 3:0 (PE MP EM TS) from a 16-bit operand; it can set PE but never
  /// clear it (SDM Vol. 2, LMSW). CPL 0 only.
  mutating func lmsw(_ d: DecodedInstruction) throws(X86Exception) {
    if privilegeLevel != 0 { throw .generalProtection(0) }
    let source = try readRM(d, size: 2)
    state.cr0 = state.cr0 & ~0xf | source & 0xf | state.cr0 & ControlBit.cr0PE
    codeMode = state.codeMode
  }

  /// SMSW: CR0's low 16 bits to memory; to a register at the operand size (a 32-bit register
  /// gets CR0's low half, which the SDM allows for the "undefined" upper 16 bits; REX.W all
  /// of CR0). Not privileged (no CR4.UMIP in this model).
  mutating func smsw(_ d: DecodedInstruction) throws(X86Exception) {
    try writeRM(d, state.cr0 & sizeMask(d.operandSize))
  }

  /// INVLPG m: drops the translation of the page holding the operand's linear address, global
  /// or not (SDM Vol. 2, INVLPG). Nothing is accessed, so it never faults on the page; a
  /// non-canonical address in 64-bit mode makes it a no-op. CPL 0 only.
  mutating func invlpg(_ d: DecodedInstruction) throws(X86Exception) {
    if privilegeLevel != 0 { throw .generalProtection(0) }
    let offset = effectiveAddress(d)
    let linear: UInt64
    if codeMode == .bits64 {
      linear = d.segment >= SegmentName.fs.rawValue ? offset &+ state.segments[Int(d.segment)].base : offset
      if UInt64(bitPattern: Int64(bitPattern: linear << 16) >> 16) != linear { return }
    } else {
      linear = (state.segments[Int(d.segment)].base &+ offset) & 0xffff_ffff
    }
    tlb.invalidate(linear)
    fetchPageTag = 0
  }

  /// INVD and WBINVD: this model has no caches to drop or write back; CPL 0 only.
  mutating func invalidateCaches() throws(X86Exception) {
    if privilegeLevel != 0 { throw .generalProtection(0) }
  }

  /// STAC/CLAC: set or clear RFLAGS.AC, which lifts SMAP for explicit accesses. #UD at CPL > 0
  /// (SDM Vol. 2, STAC).
  mutating func setAlignmentCheckFlag(_ value: Bool) throws(X86Exception) {
    if privilegeLevel != 0 { throw .invalidOpcode }
    state.flagBits = value ? state.flagBits | RFlagsBit.alignmentCheck : state.flagBits & ~RFlagsBit.alignmentCheck
  }
}
