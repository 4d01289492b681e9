/// Exception generation and return, hints, PSTATE writes, system registers and the system
/// instructions (TLBI, DC, IC, AT), with the EL0 access rules SCTLR_EL1 sets (D1.19, D23).
extension A64Core {
  mutating func exceptionGeneration(_ i: A64Instruction, at pc: UInt64) throws(A64Exception) {
    let imm = UInt16(truncatingIfNeeded: i.imm)
    switch ExceptionGeneration(rawValue: i.variant) ?? .brk {
    case .svc: throw .supervisorCall(imm)
    case .brk: throw .breakpointInstruction(imm)
    case .hvc, .smc:
      // No EL2 or EL3: the platform's firmware answers (PSCI) at EL1; at EL0 both are UNDEFINED.
      guard state.pstate.el == 1 else { throw .undefined }
      try settle(bus.call(ExceptionGeneration(rawValue: i.variant)!, imm: imm, state: &state))
    case .hlt:
      // Halting debug is not enabled, so HLT is UNDEFINED except as the semihosting trap.
      guard imm == 0xf000 else { throw .undefined }
      try settle(bus.semihosting(state: &state))
    }
  }

  private mutating func settle(_ verdict: A64CallVerdict) throws(A64Exception) {
    platformEpoch &+= 1
    switch verdict {
    case .handled: break
    case .stop: ioStopRequested = true
    case .undefined: throw .undefined
    }
  }

  /// ERET (D1.11, AArch64.ExceptionReturn): PSTATE from SPSR_EL1, the PC from ELR_EL1. An
  /// SPSR naming an unsupported mode or a higher EL makes an illegal return: the EL and SP
  /// stay, PSTATE.IL is set and the next instruction takes the Illegal Execution State
  /// exception. Either way the local monitor is cleared and the event register set.
  mutating func exceptionReturn() throws(A64Exception) {
    guard state.pstate.el == 1 else { throw .undefined }
    let spsr = state.system.spsr
    let target = state.system.elr
    state.exclusive = nil
    state.eventRegister = true
    if PState.isLegalReturn(spsr) {
      state.pstate.restore(spsr)
    } else {
      let (el, spSel) = (state.pstate.el, state.pstate.spSel)
      state.pstate.restore(spsr)
      (state.pstate.el, state.pstate.spSel) = (el, spSel)
      state.pstate.il = true
    }
    // DebugExceptionReturnSS: SPSR.SS is copied only when software step is enabled in the
    // state returned to (MDSCR_EL1.SS, the OS lock clear, and for EL1 KDE set and D clear).
    state.pstate.ss = spsr >> 21 & 1 != 0 && softwareStepEnabled(el: state.pstate.el, debugMasked: spsr >> 9 & 1 != 0)
    state.pstate.il = state.pstate.il || spsr >> 20 & 1 != 0
    state.pc = target
  }

  /// Whether software step is active at `el` (D2.12.1): debug exceptions from there enabled.
  func softwareStepEnabled(el: UInt8, debugMasked: Bool) -> Bool {
    guard state.system.mdscr & 1 != 0, !state.system.osLocked else { return false }
    return el == 0 || state.system.mdscr >> 13 & 1 != 0 && !debugMasked
  }

  mutating func hint(_ i: A64Instruction) {
    switch i.imm {
    case 2:  // WFE: consumes the event register, else waits for an event or interrupt.
      if state.eventRegister {
        state.eventRegister = false
      } else if !irqLine && !fiqLine {
        state.waiting = true
      }
    case 3:  // WFI: waits unless an interrupt is pending, masked or not (D1.16.2).
      if !irqLine && !fiqLine { state.waiting = true }
    case 5: state.eventRegister = true  // SEVL
    default: break  // NOP, YIELD, SEV (one PE: no other to wake), and the unallocated hints
    }
  }

  /// MSR SPSel, DAIFSet, DAIFClr (C6.2.197).
  mutating func msrImmediate(_ i: A64Instruction) throws(A64Exception) {
    let crm = UInt32(i.imm)
    switch i.imm2 {
    case 0o05:
      guard state.pstate.el == 1 else { throw .undefined }
      state.pstate.spSel = crm & 1 != 0
    case 0o36, 0o37:
      if state.pstate.el == 0 && state.system.sctlr >> 9 & 1 == 0 { throw .systemTrap(i.raw) }
      if i.imm2 == 0o36 { state.pstate.daif |= crm << 6 } else { state.pstate.daif &= ~(crm << 6) }
    default:
      throw .undefined  // UAO, PAN and the others come with later architecture versions
    }
  }

  // MARK: SYS: TLB maintenance, cache maintenance, address translation

  mutating func systemInstruction(_ i: A64Instruction) throws(A64Exception) {
    let name = SystemRegisterName(encoding: UInt16(i.imm2))
    let el0 = state.pstate.el == 0
    switch (name.op1, name.crn, name.crm, name.op2) {
    case (0, 8, _, _):
      // TLBI at EL1: every flavour drops the whole TLB (over-invalidating is allowed).
      guard !el0 else { throw .undefined }
      tlb.flush()
    case (0, 7, 1, 0), (0, 7, 5, 0):
      // IC IALLUIS, IC IALLU: the decode cache follows every write already.
      guard !el0 else { throw .undefined }
    case (3, 7, 5, 1):
      // IC IVAU: EL0 only with SCTLR_EL1.UCI.
      if el0 && state.system.sctlr >> 26 & 1 == 0 { throw .systemTrap(i.raw) }
    case (3, 7, 4, 1):
      try dataCacheZero(reg(i.rd), el0: el0, word: i.raw)
    case (3, 7, 10, 1), (3, 7, 11, 1), (3, 7, 14, 1), (3, 7, 12, 1):
      // DC CVAC, CVAU, CIVAC, CVAP: no caches are modelled; EL0 needs SCTLR_EL1.UCI.
      if el0 && state.system.sctlr >> 26 & 1 == 0 { throw .systemTrap(i.raw) }
    case (0, 7, 6, 1), (0, 7, 6, 2), (0, 7, 10, 2), (0, 7, 14, 2):
      // DC IVAC, ISW, CSW, CISW: EL1 only.
      guard !el0 else { throw .undefined }
    case (0, 7, 8, 0), (0, 7, 8, 1), (0, 7, 8, 2), (0, 7, 8, 3):
      guard !el0 else { throw .undefined }
      addressTranslation(reg(i.rd), write: name.op2 & 1 != 0, asEL0: name.op2 >= 2)
    default:
      throw .undefined
    }
  }

  /// DC ZVA: zeroes the block of DCZID_EL0's size (64 bytes) holding the address, as a write.
  mutating func dataCacheZero(_ address: UInt64, el0: Bool, word: UInt32) throws(A64Exception) {
    if el0 && state.system.sctlr >> 14 & 1 == 0 { throw .systemTrap(word) }
    let block = address & ~UInt64(A64Core.zeroBlockBytes - 1)
    let (physical, device) = try translateWithType(block, .write)
    // DC ZVA on Device memory takes an alignment fault (C6.2.71).
    if device { throw abort(address, .write, .alignment, level: 0) }
    for offset in stride(from: 0, to: A64Core.zeroBlockBytes, by: 8) {
      try writePhysical(physical &+ UInt64(offset), virtual: block &+ UInt64(offset), size: 8, 0)
    }
  }

  /// DC ZVA's block: DCZID_EL0.BS = 4, 16 words.
  static let zeroBlockBytes = 64

  /// AT S1E1R/W, S1E0R/W: PAR_EL1 gets the translation or the fault (D23.2.95). Success:
  /// ATTR (the MAIR byte) in bits 63-56, the PA, bit 11 RES1, NS (bit 9: this PE is in
  /// Non-secure state, there being no EL3), SH in bits 8-7. Failure: bit 11 RES1, FST in
  /// bits 6-1, F.
  mutating func addressTranslation(_ address: UInt64, write: Bool, asEL0: Bool) {
    do throws(A64Exception) {
      let physical = try translate(address, write ? .write : .read, unprivileged: asEL0)
      let (attributes, shareability) = self.attributes(of: address)
      state.system.par =
        UInt64(attributes) << 56 | physical & 0x0000_ffff_ffff_f000 | 1 << 11 | 1 << 9 | UInt64(shareability) << 7
    } catch {
      state.system.par = 1 << 11 | UInt64(error.syndrome & 0x3f) << 1 | 1
    }
  }

  // MARK: MRS and MSR

  /// Whether EL0 may read (`write` false) or write a register; nil: EL0 may not, UNDEFINED;
  /// false: SCTLR_EL1 or CNTKCTL_EL1 trap it (EC 0x18).
  func el0Access(_ name: SystemRegisterName, write: Bool) -> Bool? {
    let sctlr = state.system.sctlr
    let cntkctl = state.system.cntkctl
    switch name {
    case .nzcv, .fpcr, .fpsr, .tpidrEL0: return true
    case .daif: return sctlr >> 9 & 1 != 0
    case .tpidrroEL0: return write ? nil : true
    case .ctr: return write ? nil : sctlr >> 15 & 1 != 0
    case .dczid: return write ? nil : true
    case .cntfrq: return write ? nil : cntkctl & 3 != 0
    case .cntpct: return write ? nil : cntkctl & 1 != 0
    case .cntvct: return write ? nil : cntkctl & 2 != 0
    case .cntpTVAL, .cntpCTL, .cntpCVAL: return cntkctl >> 9 & 1 != 0
    case .cntvTVAL, .cntvCTL, .cntvCVAL: return cntkctl >> 8 & 1 != 0
    default: return nil
    }
  }

  /// MRS; `word` is the instruction, for the syndrome of a trap.
  mutating func readSystemRegister(_ name: SystemRegisterName, word: UInt32) throws(A64Exception) -> UInt64 {
    if state.pstate.el == 0 {
      guard let allowed = el0Access(name, write: false) else { throw .undefined }
      guard allowed else { throw .systemTrap(word) }
    }
    let s = state.system
    switch name {
    case .nzcv: return UInt64(state.pstate.nzcv)
    case .daif: return UInt64(state.pstate.daif)
    case .currentEL: return UInt64(state.pstate.el) << 2
    case .spSel: return state.pstate.spSel ? 1 : 0
    case .spEL0:
      // SP_EL0 is not reachable by name while it is the current stack pointer.
      guard state.pstate.spSel else { throw .undefined }
      return state.spEL0
    case .fpcr:
      try checkFloatingPointAccess()
      return state.fpcr
    case .fpsr:
      try checkFloatingPointAccess()
      return state.fpsr
    case .sctlr: return s.sctlr
    case .actlr: return s.actlr
    case .cpacr: return s.cpacr
    case .ttbr0: return s.ttbr0
    case .ttbr1: return s.ttbr1
    case .tcr: return s.tcr
    case .mair: return s.mair
    case .amair: return s.amair
    case .esr: return s.esr
    case .far: return s.far
    case .afsr0: return s.afsr0
    case .afsr1: return s.afsr1
    case .par: return s.par
    case .vbar: return s.vbar
    case .isr: return (irqLine ? 1 << 7 : 0) | (fiqLine ? 1 << 6 : 0)
    case .elr: return s.elr
    case .spsr: return s.spsr
    case .contextidr: return s.contextidr
    case .tpidrEL1: return s.tpidrEL1
    case .tpidrEL0: return s.tpidrEL0
    case .tpidrroEL0: return s.tpidrroEL0
    case .cntkctl: return s.cntkctl
    case .csselr: return s.csselr
    case .cntfrq: return A64Core.counterFrequency
    case .cntpct: return counter
    case .cntvct: return counter &- s.cntvoff
    case .cntpCTL: return timerControl(s.cntpCTL, compare: s.cntpCVAL, count: counter)
    case .cntpCVAL: return s.cntpCVAL
    case .cntpTVAL: return (s.cntpCVAL &- counter) & 0xffff_ffff
    case .cntvCTL: return timerControl(s.cntvCTL, compare: s.cntvCVAL, count: counter &- s.cntvoff)
    case .cntvCVAL: return s.cntvCVAL
    case .cntvTVAL: return (s.cntvCVAL &- (counter &- s.cntvoff)) & 0xffff_ffff
    case .mdscr: return s.mdscr
    case .oslsr: return 0b1000 | (s.osLocked ? 0b10 : 0)  // OSLM = 0b10: the OS lock is implemented
    case .osdlr: return s.osdlr
    case .dbgprcr: return s.dbgprcr
    case .mdrar: return 0
    case .dbgclaimset: return 0xff  // eight claim tags implemented
    case .dbgclaimclr: return s.claimTags
    case .dbgauthstatus: return 0xaa  // non-secure invasive and non-invasive debug implemented and enabled
    default:
      if let value = debugRegister(name) { return value }
      if let value = IDRegisters.value(of: name, cpuIndex: cpuIndex) { return value }
      throw .undefined
    }
  }

  mutating func writeSystemRegister(_ name: SystemRegisterName, _ value: UInt64, word: UInt32) throws(A64Exception) {
    if state.pstate.el == 0 {
      guard let allowed = el0Access(name, write: true) else { throw .undefined }
      guard allowed else { throw .systemTrap(word) }
    }
    try checkHostSystemRegisterWrite(name, value)
    switch name {
    case .nzcv: state.pstate.nzcv = UInt32(truncatingIfNeeded: value) & 0xf000_0000
    case .daif: state.pstate.daif = UInt32(truncatingIfNeeded: value) & 0x3c0
    case .spSel: state.pstate.spSel = value & 1 != 0
    case .spEL0:
      guard state.pstate.spSel else { throw .undefined }
      state.spEL0 = value
    case .fpcr:
      try checkFloatingPointAccess()
      state.fpcr = value & A64Core.fpcrWritable
    case .fpsr:
      try checkFloatingPointAccess()
      state.fpsr = value & A64Core.fpsrWritable
    case .sctlr, .ttbr0, .ttbr1, .tcr, .mair:
      switch name {
      case .sctlr: state.system.sctlr = value
      case .ttbr0: state.system.ttbr0 = value
      case .ttbr1: state.system.ttbr1 = value
      case .tcr: state.system.tcr = value
      default: state.system.mair = value
      }
      tlb.flush()
    case .actlr: state.system.actlr = value
    case .cpacr: state.system.cpacr = value & (3 << 20)
    case .amair: state.system.amair = value
    case .esr: state.system.esr = value & 0xffff_ffff
    case .far: state.system.far = value
    case .afsr0: state.system.afsr0 = value
    case .afsr1: state.system.afsr1 = value
    case .par: state.system.par = value
    case .vbar: state.system.vbar = value & ~0x7ff
    case .elr: state.system.elr = value
    case .spsr: state.system.spsr = value & 0xf030_03df
    case .contextidr: state.system.contextidr = value & 0xffff_ffff
    case .tpidrEL1: state.system.tpidrEL1 = value
    case .tpidrEL0: state.system.tpidrEL0 = value
    case .tpidrroEL0: state.system.tpidrroEL0 = value
    case .cntkctl: state.system.cntkctl = value & 0x3ff
    case .cntpCTL, .cntpCVAL, .cntpTVAL, .cntvCTL, .cntvCVAL, .cntvTVAL:
      platformEpoch &+= 1
      writeTimerRegister(name, value)
    case .csselr: state.system.csselr = value & 0xf
    case .mdscr:
      state.system.mdscr = value & 0xe000_e03f
      refreshDebugArmed()
    case .oslar: state.system.osLocked = value & 1 != 0
    case .osdlr: state.system.osdlr = value & 1
    case .dbgprcr: state.system.dbgprcr = value & 1
    case .dbgclaimset: state.system.claimTags |= value & 0xff
    case .dbgclaimclr: state.system.claimTags &= ~(value & 0xff)
    default:
      if try setDebugRegister(name, value) {
        refreshDebugArmed()
        return
      }
      throw .undefined  // read-only (ID registers, CNTFRQ at EL1 without EL3, ...) or unknown
    }
  }

  /// CNTP_CTL/CVAL/TVAL and CNTV_CTL/CVAL/TVAL: TVAL sets the compare value that far from now.
  mutating func writeTimerRegister(_ name: SystemRegisterName, _ value: UInt64) {
    let offset = UInt64(bitPattern: Int64(Int32(truncatingIfNeeded: value)))
    switch name {
    case .cntpCTL: state.system.cntpCTL = value & 3
    case .cntpCVAL: state.system.cntpCVAL = value
    case .cntpTVAL: state.system.cntpCVAL = counter &+ offset
    case .cntvCTL: state.system.cntvCTL = value & 3
    case .cntvCVAL: state.system.cntvCVAL = value
    default: state.system.cntvCVAL = (counter &- state.system.cntvoff) &+ offset
    }
  }

  /// CNTx_CTL with ISTATUS (bit 2) computed: the compare value reached.
  func timerControl(_ control: UInt64, compare: UInt64, count: UInt64) -> UInt64 {
    control & 3 | (control & 1 != 0 && count >= compare ? 4 : 0)
  }

  /// DBGBVR/DBGBCR/DBGWVR/DBGWCR<n>_EL1.
  func debugRegister(_ name: SystemRegisterName) -> UInt64? {
    guard name.op0 == 2, name.op1 == 0, name.crn == 0 else { return nil }
    let n = Int(name.crm)
    switch name.op2 {
    case 4 where n < 6: return state.system.breakpointValues[n]
    case 5 where n < 6: return state.system.breakpointControls[n]
    case 6 where n < 4: return state.system.watchpointValues[n]
    case 7 where n < 4: return state.system.watchpointControls[n]
    default: return nil
    }
  }

  mutating func setDebugRegister(_ name: SystemRegisterName, _ value: UInt64) throws(A64Exception) -> Bool {
    guard name.op0 == 2, name.op1 == 0, name.crn == 0 else { return false }
    let n = Int(name.crm)
    switch name.op2 {
    case 4 where n < 6: state.system.breakpointValues[n] = value & 0xffff_ffff_ffff_fffc
    case 5 where n < 6: state.system.breakpointControls[n] = value & 0x00ff_e1e7
    case 6 where n < 4: state.system.watchpointValues[n] = value & 0xffff_ffff_ffff_fffc
    case 7 where n < 4: state.system.watchpointControls[n] = value & 0x1f1f_fff7
    default: return false
    }
    return true
  }
}
