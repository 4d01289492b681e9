/// One A64 instruction decoded once (so that a decode cache can keep it): what to do and
/// its fields, already extracted and sign-extended. Names follow the ARM ARM's encoding
/// index (C4.1); `variant` selects among the instructions one operation covers.
public struct A64Instruction: Sendable, Equatable {
  public var operation: A64Operation = .undefined
  /// Rd, or Rt for loads, stores and branches that test a register.
  public var rd: UInt8 = 0
  public var rn: UInt8 = 0
  /// Rm, or Rs (the status register of a store-exclusive).
  public var rm: UInt8 = 0
  /// Ra of the three-source forms, or Rt2 of the pair forms.
  public var ra: UInt8 = 0
  /// sf: the 64-bit form (false: 32-bit, W registers).
  public var is64 = true
  /// The S bit: the flag-setting form.
  public var setFlags = false
  /// LDTR/STTR and their kin: an access at EL1 checked as if made at EL0 (C3.2.5).
  public var unprivileged = false
  /// Which instruction of the operation's group (see `A64Operation`).
  public var variant: UInt8 = 0
  /// Loads and stores: log2 of the access size in bytes (0-4). Shifted-register forms: the
  /// shift type (LSL, LSR, ASR, ROR). Extended-register forms: the extend option.
  public var size: UInt8 = 0
  /// A shift amount, the left shift of an extended register, or a bitfield's imms.
  public var amount: UInt8 = 0
  /// Loads and stores: how the address is formed (`Addressing`).
  public var addressing: Addressing = .offset
  /// The immediate, sign-extended and scaled where the encoding says so (a branch offset in
  /// bytes, a load/store offset in bytes, the bitmask of a logical immediate).
  public var imm: UInt64 = 0
  /// A second immediate: a bitfield's immr, a conditional compare's NZCV, a system
  /// register's encoding, a test-branch's bit number.
  public var imm2: UInt64 = 0
  /// The condition of B.cond, CSEL and CCMP.
  public var condition: UInt8 = 0
  public var raw: UInt32 = 0

  public init() {}

  /// How a load or store forms its address from Rn (ARM ARM C1.3.3).
  public enum Addressing: UInt8, Sendable {
    /// Rn + imm, Rn unchanged.
    case offset
    /// Rn + imm, written back to Rn before the access.
    case preIndex
    /// Rn, then Rn + imm written back.
    case postIndex
    /// Rn + extend(Rm) << amount, with `size` holding the access size and `variant`'s
    /// option in `imm2`.
    case register
    /// PC + imm (literal loads).
    case literal
  }
}

/// The operations the decoder knows, by encoding group.
public enum A64Operation: UInt8, Sendable {
  /// An encoding that is unallocated or not implemented: UNDEFINED (EC 0).
  case undefined
  // Data processing, immediate (C4.1.86).
  case adr, adrp
  case addSubImmediate
  /// variant: opc (AND, ORR, EOR, ANDS); imm: the decoded bitmask.
  case logicalImmediate
  /// variant: opc (MOVN = 0, MOVZ = 2, MOVK = 3); amount: the shift (hw * 16).
  case moveWide
  /// variant: opc (SBFM = 0, BFM = 1, UBFM = 2); imm, imm2: DecodeBitMasks' wmask and
  /// tmask; amount: immr (R); size: imms (S).
  case bitfield
  /// EXTR; amount: the lsb.
  case extract
  // Branches, exception generation and system instructions (C4.1.87).
  case branch, branchLink
  case branchConditional
  /// variant: 0 CBZ, 1 CBNZ.
  case compareBranch
  /// variant: 0 TBZ, 1 TBNZ; imm2: the bit number.
  case testBranch
  /// variant: 0 BR, 1 BLR, 2 RET.
  case branchRegister
  case exceptionReturn
  /// variant: `ExceptionGeneration`; imm: imm16.
  case exceptionGeneration
  /// imm: CRm:op2 (NOP 0, YIELD 1, WFE 2, WFI 3, SEV 4, SEVL 5; others act as NOP).
  case hint
  case clearExclusive
  /// variant: 4 DSB, 5 DMB, 6 ISB.
  case barrier
  /// MSR (immediate) to a PSTATE field; imm2: op1 << 3 | op2; imm: CRm.
  case msrImmediate
  /// SYS (TLBI, DC, IC, AT); imm2: the op1/CRn/CRm/op2 encoding as in `SystemRegisterName`.
  case system
  /// MRS and MSR (register); imm2: the register's encoding.
  case mrs, msr
  // Loads and stores (C4.1.88).
  /// variant: `LoadStoreKind`.
  case loadStore
  /// variant: `LoadStoreKind` (store, load, load signed for LDPSW, SIMD&FP store/load).
  case loadStorePair
  /// LDXR, LDAXR (variant 1: acquire); STXR, STLXR (variant 1: release); and the pairs.
  case loadExclusive, storeExclusive, loadExclusivePair, storeExclusivePair
  /// LDAR, STLR.
  case loadAcquire, storeRelease
  // Data processing, register (C4.1.89).
  /// variant: opc << 1 | N (AND, BIC, ORR, ORN, EOR, EON, ANDS, BICS).
  case logicalShifted
  /// variant: op (0 ADD, 1 SUB).
  case addSubShifted, addSubExtended
  /// variant: op (0 ADC, 1 SBC).
  case addSubCarry
  /// variant: op (0 CCMN, 1 CCMP) | 2 when the second operand is an immediate (in `imm`).
  case conditionalCompare
  /// variant: op << 1 | op2 (CSEL, CSINC, CSINV, CSNEG).
  case conditionalSelect
  /// variant: `DataProcessing1`.
  case dataProcessing1
  /// variant: `DataProcessing2`.
  case dataProcessing2
  /// variant: `DataProcessing3`.
  case dataProcessing3
  // Scalar floating point (C4.1.96); `size` is the format (`FPFormat`).
  /// variant: `FPOperation1`; amount: FCVT's destination format; condition: FRINT's rounding
  /// (`FPEnvironment.Rounding`, 5 for FPCR's); setFlags: FRINTX.
  case fpDataProcessing1
  /// variant: opcode (FMUL 0, FDIV, FADD, FSUB, FMAX, FMIN, FMAXNM, FMINNM, FNMUL 8).
  case fpDataProcessing2
  /// variant: o1 << 1 | o0 (FMADD, FMSUB, FNMADD, FNMSUB).
  case fpDataProcessing3
  /// variant: opc (bit 0 against zero, bit 1 FCMPE).
  case fpCompare
  /// variant: 1 for FCCMPE; imm2: the NZCV when the condition fails.
  case fpConditionalCompare
  case fpConditionalSelect
  /// imm: the value's bits.
  case fpMoveImmediate
  /// variant: `FPIntegerConversion`; is64: the X form; amount: fraction bits; condition: the
  /// rounding of FCVT* (SCVTF/UCVTF round as FPCR says).
  case fpConvertInteger
  /// FMOV (general): variant 0 to the general register, 1 from it; size 2 (W, S) or 3 (X,
  /// D); amount 1 for the upper half of V (V.D[1]).
  case fmovGeneral
  // Advanced SIMD (C4.1.96): `is64` is Q (the 128-bit form), `size` log2 of the element's
  // bytes, `setFlags` the scalar forms (one element, the rest of the register zeroed).
  /// variant: `SIMDThreeSame`.
  case simdThreeSame
  /// variant: `SIMDTwoRegisterMisc`.
  case simdTwoRegisterMisc
  /// variant: `SIMDAcrossLanes`.
  case simdAcrossLanes
  /// variant: `SIMDCopy`; imm: the element index; imm2: INS (element)'s source index.
  case simdCopy
  /// variant: `SIMDImmediate`; imm: the 64-bit pattern (AdvSIMDExpandImm).
  case simdModifiedImmediate
  /// variant: `SIMDShiftImmediate`; amount: the shift.
  case simdShiftImmediate
  /// variant: opcode (UZP1 1, TRN1 2, ZIP1 3, UZP2 5, TRN2 6, ZIP2 7).
  case simdPermute
  /// EXT; amount: the byte position.
  case simdExtract
  /// TBL (variant 0), TBX (1); amount: the table's registers.
  case simdTableLookup
  /// variant: `SIMDThreeDifferent`; is64: the "2" forms (upper halves); variant | 0x80 for
  /// the unsigned forms.
  case simdThreeDifferent
  /// LD1-LD4, ST1-ST4 (multiple structures); variant: `LoadStoreKind` (loadVector or
  /// storeVector); amount: registers; ra: elements per structure; addressing: offset or
  /// postIndex (by Rm, or by the bytes moved when Rm is 31).
  case simdLoadStoreMultiple
  /// LD1-LD4 and ST1-ST4 (single structure: one lane) and LD1R-LD4R (condition 1: load and
  /// replicate); variant: `LoadStoreKind`; size: the element; amount: the registers; imm:
  /// the lane; addressing as for the multiple-structure forms.
  case simdLoadStoreSingle
  /// The vector × element forms; variant: `SIMDByElement`; imm: the element's index; rm: the
  /// element's register (V0-V15 for 16-bit elements).
  case simdByElement
}

public enum SIMDThreeSame: UInt8, Sendable {
  case and, bic, orr, orn, eor, bsl, bit, bif
  case add, sub, cmgt, cmhi, cmge, cmhs, cmtst, cmeq, mul, smax, umax, smin, umin, addp, mla, mls
  case sshl, ushl, sabd, uabd, saba, uaba, sqadd, uqadd, sqsub, uqsub
  case smaxp, umaxp, sminp, uminp, shadd, uhadd, srhadd, urhadd, shsub, uhsub
  case fmaxp, fminp, fmaxnmp, fminnmp, fabd, facge, facgt, fmulx, frecps, frsqrts, sqdmulh, sqrdmulh
  case srshl, urshl, sqshl, uqshl, sqrshl, uqrshl, pmul
  case fadd, fsub, fmul, fdiv, fmax, fmin, fmaxnm, fminnm, fmla, fmls, faddp, fcmeq, fcmge, fcmgt
}

/// Vector by indexed element (C4.1.96.29): each element of Vn with one element of Vm.
public enum SIMDByElement: UInt8, Sendable {
  case fmla, fmls, fmul, mla, mls, mul, smlal, umlal, smlsl, umlsl, smull, umull
  case sqdmulh, sqrdmulh, sqdmull, sqdmlal, sqdmlsl, fmulx
}

/// The widening and long forms with two sources (C4.1.96.19): L (both halves widened), W
/// (the second widened), by opcode.
public enum SIMDThreeDifferent: UInt8, Sendable {
  case addl, addw, subl, subw, mlal, mlsl, mull, abal, abdl, addhn, subhn, pmull, sqdmull, sqdmlal, sqdmlsl
}

/// FCVT*S and FCVT*U here take their rounding from `condition`, as the scalar ones do.
public enum SIMDTwoRegisterMisc: UInt8, Sendable {
  case rev64, rev32, rev16, cnt, not, rbit, cls, clz
  case cmgtZero, cmgeZero, cmeqZero, cmleZero, cmltZero, abs, neg, xtn
  case fabs, fneg, fsqrt, scvtf, ucvtf, fcvtzs, fcvtzu
  case fcmgtZero, fcmgeZero, fcmeqZero, fcmleZero, fcmltZero, saddlp, uaddlp, sadalp, uadalp
  case sqxtn, uqxtn, sqxtun, sqabs, sqneg, shll, suqadd, usqadd
  case frecpe, frsqrte, frecpx, urecpe, ursqrte
  /// FRINT*: condition is the rounding (5: FPCR's), amount 1 for FRINTX (Inexact raised).
  case frint
  /// FCVTL and FCVTN: size is the wider format (S or D), the other half as wide.
  case fcvtl, fcvtn
  /// FCVTXN: double to single, rounding to odd.
  case fcvtxn
}

public enum SIMDAcrossLanes: UInt8, Sendable {
  case addv, smaxv, umaxv, sminv, uminv, saddlv, uaddlv
  /// FADDP (scalar): the two elements' FP sum.
  case faddp
  /// FMAXV, FMINV, FMAXNMV, FMINNMV (4S), and the scalar FMAXP ... FMINNMP (two elements).
  case fmaxv, fminv, fmaxnmv, fminnmv
}

public enum SIMDCopy: UInt8, Sendable {
  case dupElement, dupGeneral, smov, umov, insGeneral, insElement
}

/// What a modified immediate does with its pattern: MOVI, MVNI and FMOV set the register.
public enum SIMDImmediate: UInt8, Sendable {
  case move, orr, bic
}

public enum SIMDShiftImmediate: UInt8, Sendable {
  case sshr, ushr, ssra, usra, shl, sli, sri, shrn, sshll, ushll
  /// The fixed-point conversions; amount: the fraction bits.
  case scvtf, ucvtf, fcvtzs, fcvtzu
  /// Rounding right shifts (and accumulate), the rounding and saturating narrowing shifts,
  /// and the saturating left shifts.
  case srshr, urshr, srsra, ursra, rshrn, sqshrn, uqshrn, sqrshrn, uqrshrn, sqshrun, sqrshrun, sqshl, uqshl, sqshlu
}

/// FP data-processing (1 source).
public enum FPOperation1: UInt8, Sendable {
  case fmov, fabs, fneg, fsqrt, fcvt, frint
}

/// Conversions between floating point and integers.
public enum FPIntegerConversion: UInt8, Sendable {
  case scvtf, ucvtf, fcvts, fcvtu
}

/// SVC, HVC, SMC, BRK and HLT.
public enum ExceptionGeneration: UInt8, Sendable {
  case svc, hvc, smc, brk, hlt
}

/// What a load or store moves, and how a load extends.
public enum LoadStoreKind: UInt8, Sendable {
  case store
  /// Zero-extended into a W or X register.
  case load
  /// Sign-extended to 64 bits (LDRSB/LDRSH/LDRSW Xt, LDPSW).
  case loadSigned64
  /// Sign-extended to 32 bits (LDRSB/LDRSH Wt), the upper half zeroed.
  case loadSigned32
  /// PRFM: no architectural effect.
  case prefetch
  /// SIMD&FP register stores and loads (B, H, S, D, Q).
  case storeVector, loadVector
}

public enum DataProcessing1: UInt8, Sendable {
  case rbit, rev16, rev32, rev, clz, cls
}

public enum DataProcessing2: UInt8, Sendable {
  case udiv, sdiv, lslv, lsrv, asrv, rorv
}

public enum DataProcessing3: UInt8, Sendable {
  case madd, msub, smaddl, smsubl, smulh, umaddl, umsubl, umulh
}
