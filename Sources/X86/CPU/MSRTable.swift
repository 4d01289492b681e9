/// RDMSR, WRMSR and RDTSCP, and the one table of the MSRs this model implements (SDM Vol. 4,
/// chapter 2; Vol. 2, RDMSR/WRMSR). Any other index is #GP(0), as on hardware, which is how
/// Linux's rdmsr_safe/wrmsr_safe probe. RDMSR and WRMSR are #GP(0) at CPL > 0.
///
/// | index | name | read | write |
/// |-------|------|------|-------|
/// | 10h | IA32_TIME_STAMP_COUNTER | the TSC | sets the TSC |
/// | 17h | IA32_PLATFORM_ID | 0 | #GP (read-only) |
/// | 1Bh | IA32_APIC_BASE | `msr.apicBase` (0xfee00900: enabled, BSP) | BSP, EN, base below MAXPHYADDR; x2APIC (EXTD) and other bits #GP |
/// | 8Bh | IA32_BIOS_SIGN_ID (microcode revision) | 0 (no microcode) | accepted, ignored (Intel's "write 0, CPUID, read" protocol) |
/// | FEh | IA32_MTRRCAP | 0: no variable or fixed ranges, no WC | #GP (read-only) |
/// | 174h-176h | IA32_SYSENTER_CS/ESP/EIP | stored | ESP and EIP must be canonical |
/// | 179h | IA32_MCG_CAP | 0: no machine-check banks | #GP (read-only) |
/// | 17Ah | IA32_MCG_STATUS | 0 | 0 only |
/// | 1A0h | IA32_MISC_ENABLE | `msr.miscEnable` (fast strings) | stored |
/// | 277h | IA32_PAT | `msr.pat` | each byte a valid type (0, 1, 4, 5, 6, 7), else #GP |
/// | 2FFh | IA32_MTRR_DEF_TYPE | 0x806: MTRRs on, default type WB | #GP (read-only) |
/// | C000_0080h | IA32_EFER | SCE LME LMA NXE | SCE, LME, NXE; LMA is read-only (a written LMA is ignored); changing LME while CR0.PG = 1 is #GP |
/// | C000_0081h-84h | STAR, LSTAR, CSTAR, FMASK | stored | LSTAR/CSTAR canonical; FMASK bits 63:32 reserved |
/// | C000_0100h-102h | FS_BASE, GS_BASE, KERNEL_GS_BASE | stored | canonical |
/// | C000_0103h | IA32_TSC_AUX | stored | bits 63:32 reserved |
///
/// Not implemented, on purpose: IA32_SPEC_CTRL / PRED_CMD (CPUID advertises no IBRS/IBPB, so
/// Linux leaves them alone), IA32_FEATURE_CONTROL and the VMX MSRs (no VMX), MTRR ranges (no
/// MTRR in CPUID), TSC_DEADLINE and x2APIC (no such features), the performance counters.
extension X86Core {
  mutating func rdmsr() throws(X86Exception) {
    if privilegeLevel != 0 { throw .generalProtection(0) }
    let value = try readMSR(UInt32(truncatingIfNeeded: state.gpr[1]))
    state.gpr[0] = value & 0xffff_ffff
    state.gpr[2] = value >> 32
  }

  mutating func wrmsr() throws(X86Exception) {
    if privilegeLevel != 0 { throw .generalProtection(0) }
    let value = (state.gpr[2] & 0xffff_ffff) << 32 | state.gpr[0] & 0xffff_ffff
    let index = UInt32(truncatingIfNeeded: state.gpr[1])
    // The engine sees the write first (the event API's MSR events) and may drop it.
    switch bus.willWriteMSR(index, value: value, state: state) {
    case .perform: try writeMSR(index, value)
    case .performAndStop:
      try writeMSR(index, value)
      ioStopRequested = true
    case .drop: break
    }
  }

  /// RDTSCP: EDX:EAX ← TSC, ECX ← IA32_TSC_AUX[31:0]; #GP(0) with CR4.TSD outside ring 0.
  mutating func rdtscp() throws(X86Exception) {
    if state.cr4 & ControlBit.cr4TSD != 0 && privilegeLevel != 0 { throw .generalProtection(0) }
    state.gpr[0] = state.tsc & 0xffff_ffff
    state.gpr[2] = state.tsc >> 32
    state.gpr[1] = state.msr.tscAux & 0xffff_ffff
  }

  mutating func readMSR(_ index: UInt32) throws(X86Exception) -> UInt64 {
    switch index {
    case MSRIndex.tsc: return state.tsc
    case MSRIndex.platformID, MSRIndex.microcodeRevision, MSRIndex.mtrrCapabilities: return 0
    case MSRIndex.machineCheckCapabilities, MSRIndex.machineCheckStatus: return 0
    case MSRIndex.apicBase: return state.msr.apicBase
    case MSRIndex.sysenterCS: return state.msr.sysenterCS
    case MSRIndex.sysenterESP: return state.msr.sysenterESP
    case MSRIndex.sysenterEIP: return state.msr.sysenterEIP
    case MSRIndex.miscEnable: return state.msr.miscEnable
    case MSRIndex.pat: return state.msr.pat
    case MSRIndex.mtrrDefaultType: return 0x806
    case MSRIndex.efer: return state.efer
    case MSRIndex.star: return state.msr.star
    case MSRIndex.lstar: return state.msr.lstar
    case MSRIndex.cstar: return state.msr.cstar
    case MSRIndex.sfmask: return state.msr.sfmask
    case MSRIndex.fsBase: return state.fsBase
    case MSRIndex.gsBase: return state.gsBase
    case MSRIndex.kernelGSBase: return state.msr.kernelGSBase
    case MSRIndex.tscAux: return state.msr.tscAux
    default: throw .generalProtection(0)
    }
  }

  mutating func writeMSR(_ index: UInt32, _ value: UInt64) throws(X86Exception) {
    switch index {
    case MSRIndex.tsc: state.tsc = value
    case MSRIndex.microcodeRevision: break
    case MSRIndex.machineCheckStatus: if value != 0 { throw .generalProtection(0) }
    case MSRIndex.apicBase:
      // BSP (8), EN (11) and the base (12 up to MAXPHYADDR); EXTD (10) needs x2APIC.
      let writable: UInt64 = 1 << 8 | 1 << 11 | ((1 << X86Core.physicalAddressBits) - 1) & ~0xfff
      if value & ~writable != 0 { throw .generalProtection(0) }
      state.msr.apicBase = value
    case MSRIndex.sysenterCS: state.msr.sysenterCS = value
    case MSRIndex.sysenterESP: state.msr.sysenterESP = try canonical(value)
    case MSRIndex.sysenterEIP: state.msr.sysenterEIP = try canonical(value)
    case MSRIndex.miscEnable: state.msr.miscEnable = value
    case MSRIndex.pat:
      // Valid types: UC 0, WC 1, WT 4, WP 5, WB 6, UC- 7 (SDM Vol. 3, 13.12.2).
      for byte in 0..<8 {
        let type = (value >> (byte * 8)) & 0xff
        if type == 2 || type == 3 || type > 7 { throw .generalProtection(0) }
      }
      state.msr.pat = value
    case MSRIndex.efer: try writeEFER(value)
    case MSRIndex.star: state.msr.star = value
    case MSRIndex.lstar: state.msr.lstar = try canonical(value)
    case MSRIndex.cstar: state.msr.cstar = try canonical(value)
    case MSRIndex.sfmask:
      if value >> 32 != 0 { throw .generalProtection(0) }
      state.msr.sfmask = value
    case MSRIndex.fsBase: state.fsBase = try canonical(value)
    case MSRIndex.gsBase: state.gsBase = try canonical(value)
    case MSRIndex.kernelGSBase: state.msr.kernelGSBase = try canonical(value)
    case MSRIndex.tscAux:
      if value >> 32 != 0 { throw .generalProtection(0) }
      state.msr.tscAux = value
    default: throw .generalProtection(0)
    }
  }

  /// EFER: SCE, LME and NXE are writable; LMA follows CR0.PG and LME (a written LMA is
  /// ignored, as KVM does); everything else is reserved. LME cannot change while paging is on
  /// (SDM Vol. 3, 9.8.5; AMD APM Vol. 2, 14.6). A change of NXE changes rights the TLB caches.
  mutating func writeEFER(_ value: UInt64) throws(X86Exception) {
    let writable = ControlBit.eferSCE | ControlBit.eferLME | ControlBit.eferNXE
    if value & ~(writable | ControlBit.eferLMA) != 0 { throw .generalProtection(0) }
    let old = state.efer
    if state.cr0 & ControlBit.cr0PG != 0 && (old ^ value) & ControlBit.eferLME != 0 {
      throw .generalProtection(0)
    }
    state.efer = value & writable | old & ControlBit.eferLMA
    if (old ^ state.efer) & ControlBit.eferNXE != 0 { flushAllTranslations() }
  }

  /// #GP(0) unless bits 63:47 are all equal (48-bit linear addresses).
  private mutating func canonical(_ value: UInt64) throws(X86Exception) -> UInt64 {
    if UInt64(bitPattern: Int64(bitPattern: value << 16) >> 16) != value { throw .generalProtection(0) }
    return value
  }
}

extension MSRIndex {
  public static let platformID: UInt32 = 0x17
  public static let microcodeRevision: UInt32 = 0x8b
  public static let mtrrCapabilities: UInt32 = 0xfe
  public static let machineCheckCapabilities: UInt32 = 0x179
  public static let machineCheckStatus: UInt32 = 0x17a
  public static let mtrrDefaultType: UInt32 = 0x2ff
}
