/// The scalar Advanced SIMD encodings (C4.1.96, op0 = 01x1): decoded by the vector groups'
/// decoders and kept where ARMv8.0 has a scalar form; `setFlags` marks them and `is64` is
/// cleared, so execution works on one element and zeroes the rest of the register.
extension A64Decoder {
  /// The scalar Advanced SIMD forms compiled code uses (C4.1.96): DUP (element) to a scalar,
  /// ADDP and FADDP, and on D registers ADD, SUB, the integer compares, NEG, ABS and the shifts
  /// by immediate; SCVTF/UCVTF/FCVTZS/FCVTZU on S and D registers (with fraction bits too)
  /// and the FP compares. One element; the rest of the register is zeroed.
  static func decodeAdvancedSIMDScalar(_ word: UInt32, _ i: inout A64Instruction) {
    if word & 0xdf20_0400 == 0x5e20_0400 {
      decodeThreeSame(word, &i)
      let operation = SIMDThreeSame(rawValue: i.variant)
      switch operation {
      case .add, .sub, .cmgt, .cmhi, .cmge, .cmhs, .cmtst, .cmeq, .sshl, .ushl, .srshl, .urshl:
        if i.size != 3 { i.operation = .undefined }
      case .sqshl, .uqshl, .sqrshl, .uqrshl: break
      case .fcmeq, .fcmge, .fcmgt, .sqadd, .uqadd, .sqsub, .uqsub, .sqdmulh, .sqrdmulh, .fabd, .facge, .facgt, .fmulx,
        .frecps, .frsqrts:
        break
      default: i.operation = .undefined
      }
    } else if word & 0xff20_0c00 == 0x5e20_0000 {
      // SQDMULL, SQDMLAL, SQDMLSL (scalar): H to S, S to D.
      decodeThreeDifferent(word, &i)
      let operation = SIMDThreeDifferent(rawValue: i.variant & 0x7f)
      guard i.operation == .simdThreeDifferent,
        operation == .sqdmull || operation == .sqdmlal || operation == .sqdmlsl
      else {
        i.operation = .undefined
        return
      }
    } else if word & 0xffbf_fc00 == 0x5ea1_f800 {
      // FRECPX (scalar): 01 0 11110 1 sz 10000 11111 10.
      i.operation = .simdTwoRegisterMisc
      i.variant = SIMDTwoRegisterMisc.frecpx.rawValue
      i.size = UInt8(field(word, 22, 1) + 2)
    } else if word & 0xdf3e_0c00 == 0x5e20_0800 {
      decodeTwoRegisterMisc(word, &i)
      let operation = SIMDTwoRegisterMisc(rawValue: i.variant)
      switch operation {
      case .cmgtZero, .cmgeZero, .cmeqZero, .cmleZero, .cmltZero, .abs, .neg:
        if i.size != 3 { i.operation = .undefined }
      case .scvtf, .ucvtf, .fcvtzs, .fcvtzu, .fcmgtZero, .fcmgeZero, .fcmeqZero, .fcmleZero, .fcmltZero, .sqxtn,
        .uqxtn, .sqxtun, .sqabs, .sqneg, .suqadd, .usqadd, .frecpe, .frsqrte, .fcvtxn:
        break
      default: i.operation = .undefined
      }
    } else if word & 0xdf3e_0c00 == 0x5e30_0800 {
      // Pairwise: ADDP Dd, Vn.2D; FADDP Sd, Vn.2S and Dd, Vn.2D.
      let size = field(word, 22, 2)
      switch (field(word, 29, 1), field(word, 12, 5)) {
      case (0, 0b11011) where size == 3:
        i.operation = .simdAcrossLanes
        i.variant = SIMDAcrossLanes.addv.rawValue
        i.is64 = true
      case (1, 0b01101) where size < 2:
        i.operation = .simdAcrossLanes
        i.variant = SIMDAcrossLanes.faddp.rawValue
        i.size = UInt8(2 + size)
        i.is64 = size == 1
      case (1, 0b01100), (1, 0b01111):
        // FMAXNMP, FMINNMP, FMAXP, FMINP (scalar): the two-element reductions.
        let opcode = field(word, 12, 5)
        let minimum = size >> 1 == 1
        let operation: SIMDAcrossLanes =
          opcode == 0b01100 ? (minimum ? .fminnmv : .fmaxnmv) : (minimum ? .fminv : .fmaxv)
        i.operation = .simdAcrossLanes
        i.variant = operation.rawValue
        i.size = UInt8(2 + size & 1)
        i.is64 = size & 1 == 1
      default: return
      }
      return
    } else if word & 0xffe0_fc00 == 0x5e00_0400 {
      decodeCopy(word & ~(1 << 30), &i)  // DUP (element) scalar: as the 64-bit vector form
      guard i.operation == .simdCopy || word >> 16 & 15 == 8 else { return }
      i.operation = .simdCopy
      i.variant = SIMDCopy.dupElement.rawValue
      if word >> 16 & 15 == 8 {
        i.size = 3
        i.imm = UInt64(word >> 20 & 1)
      }
    } else if word & 0xdf00_0400 == 0x5f00_0000 {
      decodeByElement(word, scalar: true, &i)
      guard i.operation == .simdByElement else { return }
    } else if word & 0xdf80_0400 == 0x5f00_0400 {
      decodeShiftImmediate(word, &i)
      let operation = SIMDShiftImmediate(rawValue: i.variant)
      switch operation {
      case .sshr, .ushr, .ssra, .usra, .shl, .sli, .sri, .srshr, .urshr, .srsra, .ursra:
        if i.size != 3 { i.operation = .undefined }
      case .scvtf, .ucvtf, .fcvtzs, .fcvtzu, .sqshrn, .uqshrn, .sqrshrn, .uqrshrn, .sqshrun, .sqrshrun, .sqshl, .uqshl,
        .sqshlu:
        break
      default: i.operation = .undefined
      }
    } else {
      return
    }
    i.setFlags = true
    i.is64 = false
  }
}
