/// Whether the current EL may use FP and Advanced SIMD, and which bits of FPCR and FPSR exist.
extension A64Core {
  /// CheckFPAdvSIMDEnabled64 (ARM ARM D1.11.1, CPACR_EL1.FPEN): 0b11 lets EL0 and EL1 use FP,
  /// 0b01 only EL1, 0b00 and 0b10 neither; a trapped instruction takes the exception with EC
  /// 0x07 to EL1. Every SIMD&FP instruction and every MRS/MSR of FPCR or FPSR checks it
  /// after decoding (an unallocated encoding is UNDEFINED whatever FPEN says). Out of reset
  /// FPEN is 0, so software must enable FP first, as on hardware.
  @inline(__always)
  mutating func checkFloatingPointAccess() throws(A64Exception) {
    let fpen = state.system.cpacr >> 20 & 3
    if fpen == 3 { return }
    if fpen == 1 && state.pstate.el != 0 { return }
    throw .floatingPointAccess
  }

  /// FPCR in ARMv8.0 without AArch32: AHP (26), DN (25), FZ (24), RMode (23-22). FZ16 is
  /// FEAT_FP16's; the trap enables (IDE, IXE, UFE, OFE, DZE, IOE) read as zero because
  /// floating-point exceptions are never trapped here; Len and Stride exist for AArch32.
  static let fpcrWritable: UInt64 = 0x07c0_0000
  /// FPSR: QC (27) and the cumulative flags IDC, IXC, UFC, OFC, DZC, IOC (7, 4-0); N, Z, C,
  /// V (31-28) hold AArch32 comparisons and are RES0 without AArch32.
  static let fpsrWritable: UInt64 = 0x0800_009f
}
