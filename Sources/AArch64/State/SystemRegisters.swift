/// The EL0/EL1 system registers the interpreter models (ARM ARM D23, "AArch64 System Register
/// Descriptions"). Identification registers are not stored: `IDRegisters` computes them
/// from what is implemented. Registers that live in PSTATE (NZCV, DAIF, SPSel, CurrentEL)
/// or in the core (the counters) are read and written through `A64Core.readSystemRegister`.
public struct SystemRegisters: Sendable, Equatable {
  public var sctlr: UInt64 = SystemRegisters.sctlrReset
  public var actlr: UInt64 = 0
  public var cpacr: UInt64 = 0
  public var ttbr0: UInt64 = 0
  public var ttbr1: UInt64 = 0
  public var tcr: UInt64 = 0
  public var mair: UInt64 = 0
  public var amair: UInt64 = 0
  public var esr: UInt64 = 0
  public var far: UInt64 = 0
  public var afsr0: UInt64 = 0
  public var afsr1: UInt64 = 0
  public var par: UInt64 = 0
  public var vbar: UInt64 = 0
  public var elr: UInt64 = 0
  public var spsr: UInt64 = 0
  public var contextidr: UInt64 = 0
  public var tpidrEL1: UInt64 = 0
  public var tpidrEL0: UInt64 = 0
  public var tpidrroEL0: UInt64 = 0
  public var cntkctl: UInt64 = 0
  public var csselr: UInt64 = 0
  /// The generic timers' control and compare registers (D11.2); their counters come from
  /// the core's virtual time.
  public var cntpCTL: UInt64 = 0
  public var cntpCVAL: UInt64 = 0
  public var cntvCTL: UInt64 = 0
  public var cntvCVAL: UInt64 = 0
  /// CNTVOFF_EL2 as EL2 would set it: CNTVCT = CNTPCT - offset. Zero, as on QEMU virt.
  public var cntvoff: UInt64 = 0
  /// Self-hosted debug (D2): MDSCR_EL1, the OS lock, the breakpoint and watchpoint registers.
  public var mdscr: UInt64 = 0
  /// OSLSR_EL1.OSLK: the OS lock is set from reset (D2.5).
  public var osLocked = true
  public var osdlr: UInt64 = 0
  public var dbgprcr: UInt64 = 0
  public var claimTags: UInt64 = 0
  public var breakpointValues: InlineArray<6, UInt64> = .init(repeating: 0)
  public var breakpointControls: InlineArray<6, UInt64> = .init(repeating: 0)
  public var watchpointValues: InlineArray<4, UInt64> = .init(repeating: 0)
  public var watchpointControls: InlineArray<4, UInt64> = .init(repeating: 0)

  public init() {}

  /// SCTLR_EL1 at reset with the RES1 bits of ARMv8.0 (D23.2.118: bits 29, 28, 23, 22, 20, 11),
  /// the MMU and caches off.
  public static let sctlrReset: UInt64 = 0x30d0_0800

  public static func == (a: SystemRegisters, b: SystemRegisters) -> Bool {
    for i in 0..<6
    where a.breakpointValues[i] != b.breakpointValues[i] || a.breakpointControls[i] != b.breakpointControls[i] {
      return false
    }
    for i in 0..<4
    where a.watchpointValues[i] != b.watchpointValues[i] || a.watchpointControls[i] != b.watchpointControls[i] {
      return false
    }
    return a.sctlr == b.sctlr && a.actlr == b.actlr && a.cpacr == b.cpacr && a.ttbr0 == b.ttbr0 && a.ttbr1 == b.ttbr1
      && a.tcr == b.tcr && a.mair == b.mair && a.amair == b.amair && a.esr == b.esr && a.far == b.far
      && a.afsr0 == b.afsr0 && a.afsr1 == b.afsr1 && a.par == b.par && a.vbar == b.vbar && a.elr == b.elr
      && a.spsr == b.spsr && a.contextidr == b.contextidr && a.tpidrEL1 == b.tpidrEL1 && a.tpidrEL0 == b.tpidrEL0
      && a.tpidrroEL0 == b.tpidrroEL0 && a.cntkctl == b.cntkctl && a.csselr == b.csselr && a.cntpCTL == b.cntpCTL
      && a.cntpCVAL == b.cntpCVAL && a.cntvCTL == b.cntvCTL && a.cntvCVAL == b.cntvCVAL && a.cntvoff == b.cntvoff
      && a.mdscr == b.mdscr && a.osLocked == b.osLocked && a.osdlr == b.osdlr && a.dbgprcr == b.dbgprcr
      && a.claimTags == b.claimTags
  }
}

/// A system register's encoding as MRS and MSR carry it in bits 20-5: op0, op1, CRn, CRm, op2.
public struct SystemRegisterName: Hashable, Sendable {
  public let encoding: UInt16

  public init(encoding: UInt16) { self.encoding = encoding }

  public init(_ op0: UInt16, _ op1: UInt16, _ crn: UInt16, _ crm: UInt16, _ op2: UInt16) {
    encoding = op0 << 14 | op1 << 11 | crn << 7 | crm << 3 | op2
  }

  public var op0: UInt16 { encoding >> 14 }
  public var op1: UInt16 { (encoding >> 11) & 7 }
  public var crn: UInt16 { (encoding >> 7) & 15 }
  public var crm: UInt16 { (encoding >> 3) & 15 }
  public var op2: UInt16 { encoding & 7 }

  // Names from the ARM ARM's register index (D23); the tuple is op0, op1, CRn, CRm, op2.
  public static let midr = SystemRegisterName(3, 0, 0, 0, 0)
  public static let mpidr = SystemRegisterName(3, 0, 0, 0, 5)
  public static let revidr = SystemRegisterName(3, 0, 0, 0, 6)
  public static let idAA64PFR0 = SystemRegisterName(3, 0, 0, 4, 0)
  public static let idAA64PFR1 = SystemRegisterName(3, 0, 0, 4, 1)
  public static let idAA64DFR0 = SystemRegisterName(3, 0, 0, 5, 0)
  public static let idAA64DFR1 = SystemRegisterName(3, 0, 0, 5, 1)
  public static let idAA64AFR0 = SystemRegisterName(3, 0, 0, 5, 4)
  public static let idAA64AFR1 = SystemRegisterName(3, 0, 0, 5, 5)
  public static let idAA64ISAR0 = SystemRegisterName(3, 0, 0, 6, 0)
  public static let idAA64ISAR1 = SystemRegisterName(3, 0, 0, 6, 1)
  public static let idAA64MMFR0 = SystemRegisterName(3, 0, 0, 7, 0)
  public static let idAA64MMFR1 = SystemRegisterName(3, 0, 0, 7, 1)
  public static let idAA64MMFR2 = SystemRegisterName(3, 0, 0, 7, 2)
  public static let ccsidr = SystemRegisterName(3, 1, 0, 0, 0)
  public static let clidr = SystemRegisterName(3, 1, 0, 0, 1)
  public static let csselr = SystemRegisterName(3, 2, 0, 0, 0)
  public static let ctr = SystemRegisterName(3, 3, 0, 0, 1)
  public static let dczid = SystemRegisterName(3, 3, 0, 0, 7)
  public static let sctlr = SystemRegisterName(3, 0, 1, 0, 0)
  public static let actlr = SystemRegisterName(3, 0, 1, 0, 1)
  public static let cpacr = SystemRegisterName(3, 0, 1, 0, 2)
  public static let ttbr0 = SystemRegisterName(3, 0, 2, 0, 0)
  public static let ttbr1 = SystemRegisterName(3, 0, 2, 0, 1)
  public static let tcr = SystemRegisterName(3, 0, 2, 0, 2)
  public static let spsr = SystemRegisterName(3, 0, 4, 0, 0)
  public static let elr = SystemRegisterName(3, 0, 4, 0, 1)
  public static let spEL0 = SystemRegisterName(3, 0, 4, 1, 0)
  public static let spSel = SystemRegisterName(3, 0, 4, 2, 0)
  public static let currentEL = SystemRegisterName(3, 0, 4, 2, 2)
  public static let nzcv = SystemRegisterName(3, 3, 4, 2, 0)
  public static let daif = SystemRegisterName(3, 3, 4, 2, 1)
  public static let fpcr = SystemRegisterName(3, 3, 4, 4, 0)
  public static let fpsr = SystemRegisterName(3, 3, 4, 4, 1)
  public static let afsr0 = SystemRegisterName(3, 0, 5, 1, 0)
  public static let afsr1 = SystemRegisterName(3, 0, 5, 1, 1)
  public static let esr = SystemRegisterName(3, 0, 5, 2, 0)
  public static let far = SystemRegisterName(3, 0, 6, 0, 0)
  public static let par = SystemRegisterName(3, 0, 7, 4, 0)
  public static let mair = SystemRegisterName(3, 0, 10, 2, 0)
  public static let amair = SystemRegisterName(3, 0, 10, 3, 0)
  public static let vbar = SystemRegisterName(3, 0, 12, 0, 0)
  public static let isr = SystemRegisterName(3, 0, 12, 1, 0)
  public static let contextidr = SystemRegisterName(3, 0, 13, 0, 1)
  public static let tpidrEL1 = SystemRegisterName(3, 0, 13, 0, 4)
  public static let tpidrEL0 = SystemRegisterName(3, 3, 13, 0, 2)
  public static let tpidrroEL0 = SystemRegisterName(3, 3, 13, 0, 3)
  public static let cntkctl = SystemRegisterName(3, 0, 14, 1, 0)
  public static let cntfrq = SystemRegisterName(3, 3, 14, 0, 0)
  public static let cntpct = SystemRegisterName(3, 3, 14, 0, 1)
  public static let cntvct = SystemRegisterName(3, 3, 14, 0, 2)
  public static let cntpTVAL = SystemRegisterName(3, 3, 14, 2, 0)
  public static let cntpCTL = SystemRegisterName(3, 3, 14, 2, 1)
  public static let cntpCVAL = SystemRegisterName(3, 3, 14, 2, 2)
  public static let cntvTVAL = SystemRegisterName(3, 3, 14, 3, 0)
  public static let cntvCTL = SystemRegisterName(3, 3, 14, 3, 1)
  public static let cntvCVAL = SystemRegisterName(3, 3, 14, 3, 2)
  public static let mdscr = SystemRegisterName(2, 0, 0, 2, 2)
  public static let mdrar = SystemRegisterName(2, 0, 1, 0, 0)
  public static let oslar = SystemRegisterName(2, 0, 1, 0, 4)
  public static let oslsr = SystemRegisterName(2, 0, 1, 1, 4)
  public static let osdlr = SystemRegisterName(2, 0, 1, 3, 4)
  public static let dbgprcr = SystemRegisterName(2, 0, 1, 4, 4)
  public static let dbgclaimset = SystemRegisterName(2, 0, 7, 8, 6)
  public static let dbgclaimclr = SystemRegisterName(2, 0, 7, 9, 6)
  public static let dbgauthstatus = SystemRegisterName(2, 0, 7, 14, 6)
  /// DBGBVR<n>_EL1, DBGBCR<n>_EL1, DBGWVR<n>_EL1, DBGWCR<n>_EL1: CRm = n, op2 = 4, 5, 6, 7.
  public static func debugBreakpointValue(_ n: UInt16) -> SystemRegisterName { SystemRegisterName(2, 0, 0, n, 4) }
  public static func debugBreakpointControl(_ n: UInt16) -> SystemRegisterName { SystemRegisterName(2, 0, 0, n, 5) }
  public static func debugWatchpointValue(_ n: UInt16) -> SystemRegisterName { SystemRegisterName(2, 0, 0, n, 6) }
  public static func debugWatchpointControl(_ n: UInt16) -> SystemRegisterName { SystemRegisterName(2, 0, 0, n, 7) }
}

extension SystemRegisterName: CustomStringConvertible {
  /// The ARM ARM's name for the EL1 translation, exception and thread registers (the ones an
  /// introspection client watches); any other as the assembler's generic S<op0>_<op1>_C<n>_C<m>_<op2>.
  public var description: String {
    let names: [SystemRegisterName: String] = [
      .sctlr: "SCTLR_EL1", .ttbr0: "TTBR0_EL1", .ttbr1: "TTBR1_EL1", .tcr: "TCR_EL1", .mair: "MAIR_EL1",
      .vbar: "VBAR_EL1", .esr: "ESR_EL1", .far: "FAR_EL1", .elr: "ELR_EL1", .spsr: "SPSR_EL1",
      .contextidr: "CONTEXTIDR_EL1", .tpidrEL1: "TPIDR_EL1", .tpidrEL0: "TPIDR_EL0", .cpacr: "CPACR_EL1",
      .mdscr: "MDSCR_EL1", .cntkctl: "CNTKCTL_EL1",
    ]
    return names[self] ?? "S\(op0)_\(op1)_C\(crn)_C\(crm)_\(op2)"
  }
}
