/// What the identification registers say: exactly what this interpreter implements, no more
/// (ARMv8.0-A, Cortex-A57's MIDR). The one table of the AArch64 CPU model; the README shows it.
///
/// | register | value | meaning |
/// |---|---|---|
/// | MIDR_EL1 | 0x411fd070 | Arm, Cortex-A57 r1p0 (what `-cpu cortex-a57` guests check) |
/// | MPIDR_EL1 | 0x80000000 + CPU | Aff0 = the CPU's index, uniprocessor bit clear |
/// | ID_AA64PFR0_EL1 | 0x00000011 | EL0 and EL1 AArch64 only; no EL2/EL3; FP and AdvSIMD implemented (0), without half-precision arithmetic; no GIC system registers |
/// | ID_AA64DFR0_EL1 | 0x00305006 | ARMv8 debug; 6 breakpoints, 4 watchpoints, 1 context-aware breakpoint; no PMU, no trace |
/// | ID_AA64ISAR0/1_EL1 | 0 | no AES, SHA, CRC32, atomics, PAuth |
/// | ID_AA64MMFR0_EL1 | 0x0f000025 | 48-bit PAs, 16-bit ASIDs, 4 KiB granule only, little-endian only |
/// | ID_AA64MMFR1/2_EL1 | 0 | no VHE, PAN, hardware A/D updates |
/// | CTR_EL0 | 0x8444c004 | 64-byte lines, PIPT instruction cache |
/// | DCZID_EL0 | 4 | DC ZVA zeroes 64 bytes |
/// | CLIDR_EL1, CCSIDR_EL1 | 0 | no caches described (none is modelled) |
/// | AArch32 ID registers | 0 | AArch32 is not implemented (MVFR0-2_EL1 describe AArch32's FP, so they are 0 too) |
public enum IDRegisters {
  public static func value(of name: SystemRegisterName, cpuIndex: UInt8) -> UInt64? {
    switch name {
    case .midr: return 0x411f_d070
    case .mpidr: return 0x8000_0000 | UInt64(cpuIndex)
    case .revidr: return 0
    case .idAA64PFR0: return 0x0000_0011
    case .idAA64DFR0: return 0x0030_5006
    case .idAA64MMFR0: return 0x0f00_0025
    case .ctr: return 0x8444_c004
    case .dczid: return 4
    case .clidr, .ccsidr: return 0
    default:
      // The rest of the ID space (op0 3, op1 0, CRn 0, CRm 1-7) reads as zero: the AArch32
      // registers and the unallocated ones (D23.1.3).
      if name.op0 == 3 && name.op1 == 0 && name.crn == 0 && name.crm >= 1 { return 0 }
      return nil
    }
  }
}
