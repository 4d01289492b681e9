/// SYSCALL/SYSRET, SYSENTER/SYSEXIT and SWAPGS (SDM Vol. 2, each instruction's page). These
/// load CS and SS with fixed flat descriptors from the MSRs, not from the GDT.
extension X86Core {
  /// A flat 4 GiB code segment at `dpl`: 64-bit (L) or 32-bit (D).
  private static func flatCode(_ selector: UInt16, dpl: UInt8, long: Bool) -> SegmentRegister {
    SegmentRegister(
      selector: selector, limit: 0xffff_ffff, type: 0xb, dpl: dpl, longMode: long, defaultBig: !long,
      granularity: true)
  }

  private static func flatStack(_ selector: UInt16, dpl: UInt8) -> SegmentRegister {
    SegmentRegister(selector: selector, limit: 0xffff_ffff, type: 3, dpl: dpl, defaultBig: true, granularity: true)
  }

  /// SYSCALL: only in 64-bit mode with EFER.SCE (Intel's rule: #UD elsewhere). RCX ← RIP,
  /// R11 ← RFLAGS, RFLAGS &= ~SFMASK, CS:RIP ← STAR[47:32]:LSTAR at CPL 0.
  mutating func syscall() throws(X86Exception) {
    if codeMode != .bits64 || state.efer & ControlBit.eferSCE == 0 { throw .invalidOpcode }
    let selector = UInt16(truncatingIfNeeded: state.msr.star >> 32)
    state.gpr[1] = state.rip
    let flags = state.rflags
    state.gpr[11] = flags
    state.rflags = flags & ~state.msr.sfmask & ~RFlagsBit.resume
    state[.cs] = X86Core.flatCode(selector & 0xfffc, dpl: 0, long: true)
    state[.ss] = X86Core.flatStack(selector &+ 8, dpl: 0)
    state.rip = state.msr.lstar
    codeSegmentChanged()
  }

  /// SYSRET: back to CPL 3, to 64-bit code (REX.W, CS = STAR[63:48] + 16) or compatibility
  /// mode (CS = STAR[63:48]); SS = STAR[63:48] + 8. A non-canonical RCX is #GP(0) here, at
  /// CPL 0 (Intel's behaviour; AMD faults after the switch).
  mutating func sysret(_ d: DecodedInstruction) throws(X86Exception) {
    if codeMode != .bits64 || state.efer & ControlBit.eferSCE == 0 { throw .invalidOpcode }
    if privilegeLevel != 0 { throw .generalProtection(0) }
    let to64 = d.operandSize == 8
    if to64 && !isCanonical(state.gpr[1]) { throw .generalProtection(0) }
    let base = UInt16(truncatingIfNeeded: state.msr.star >> 48)
    state.rflags = state.gpr[11] & 0x3c_7fd7 | RFlagsBit.reserved1
    state.rip = to64 ? state.gpr[1] : state.gpr[1] & 0xffff_ffff
    state[.cs] = X86Core.flatCode((to64 ? base &+ 16 : base) | 3, dpl: 3, long: to64)
    state[.ss] = X86Core.flatStack((base &+ 8) | 3, dpl: 3)
    codeSegmentChanged()
  }

  /// SYSENTER: #GP(0) in real mode or with a null IA32_SYSENTER_CS. Clears VM, IF and RF;
  /// CS ← SYSENTER_CS (64-bit code in IA-32e mode), SS ← SYSENTER_CS + 8, rSP:rIP from the MSRs.
  mutating func sysenter() throws(X86Exception) {
    let selector = UInt16(truncatingIfNeeded: state.msr.sysenterCS) & 0xfffc
    if state.cr0 & ControlBit.cr0PE == 0 || selector == 0 { throw .generalProtection(0) }
    let long = state.longModeActive
    state.rflags = state.rflags & ~(RFlagsBit.virtual8086 | RFlagsBit.interruptEnable | RFlagsBit.resume)
    state[.cs] = X86Core.flatCode(selector, dpl: 0, long: long)
    state[.ss] = X86Core.flatStack(selector &+ 8, dpl: 0)
    state.gpr[4] = long ? state.msr.sysenterESP : state.msr.sysenterESP & 0xffff_ffff
    state.rip = long ? state.msr.sysenterEIP : state.msr.sysenterEIP & 0xffff_ffff
    codeSegmentChanged()
  }

  /// SYSEXIT: CPL 0 only. To 64-bit code with REX.W (CS = SYSENTER_CS + 32, SS + 40), else
  /// 32-bit (CS + 16, SS + 24), RPL 3; rSP ← rCX, rIP ← rDX.
  mutating func sysexit(_ d: DecodedInstruction) throws(X86Exception) {
    let base = UInt16(truncatingIfNeeded: state.msr.sysenterCS)
    if state.cr0 & ControlBit.cr0PE == 0 || base & 0xfffc == 0 || privilegeLevel != 0 {
      throw .generalProtection(0)
    }
    let to64 = d.operandSize == 8
    if to64 && (!isCanonical(state.gpr[1]) || !isCanonical(state.gpr[2])) { throw .generalProtection(0) }
    state[.cs] = X86Core.flatCode((base &+ (to64 ? 32 : 16)) | 3, dpl: 3, long: to64)
    state[.ss] = X86Core.flatStack((base &+ (to64 ? 40 : 24)) | 3, dpl: 3)
    state.gpr[4] = to64 ? state.gpr[1] : state.gpr[1] & 0xffff_ffff
    state.rip = to64 ? state.gpr[2] : state.gpr[2] & 0xffff_ffff
    codeSegmentChanged()
  }

  /// SWAPGS: exchanges GS.base and IA32_KERNEL_GS_BASE; CPL 0 only (the decoder accepts it
  /// only in 64-bit mode, #UD elsewhere).
  mutating func swapgs() throws(X86Exception) {
    if privilegeLevel != 0 { throw .generalProtection(0) }
    let base = state.gsBase
    state.gsBase = state.msr.kernelGSBase
    state.msr.kernelGSBase = base
  }
}
