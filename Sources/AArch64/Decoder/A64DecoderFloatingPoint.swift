/// The scalar floating-point encodings (ARM ARM C4.1.96, "Data Processing -- Scalar
/// Floating-Point and Advanced SIMD", the groups with op0 = x0x1): single and double
/// precision, and FCVT to and from half. Half-precision arithmetic (FEAT_FP16) is not part
/// of ARMv8.0 and stays UNDEFINED. `size` holds the format (`FPFormat`'s raw value).
extension A64Decoder {
  static func decodeFloatingPoint(_ word: UInt32, _ i: inout A64Instruction) {
    registers(word, &i)
    guard field(word, 29, 1) == 0 else { return }
    let ftype = field(word, 22, 2)
    if field(word, 24, 1) != 0 {
      // Data-processing (3 source): FMADD, FMSUB, FNMADD, FNMSUB.
      guard word >> 31 == 0, let format = FPFormat(ftype: ftype), format != .half else { return }
      i.operation = .fpDataProcessing3
      i.size = format.rawValue
      i.ra = UInt8(field(word, 10, 5))
      i.variant = UInt8(field(word, 21, 1) << 1 | field(word, 15, 1))
      return
    }
    if field(word, 21, 1) == 0 {
      decodeFixedPointConversion(word, &i)
      return
    }
    if field(word, 10, 6) == 0 {
      decodeIntegerConversion(word, &i)
      return
    }
    guard word >> 31 == 0, let format = FPFormat(ftype: ftype) else { return }
    i.size = format.rawValue
    switch field(word, 10, 2) {
    case 0b01:
      guard format != .half else { return }
      i.operation = .fpConditionalCompare
      i.variant = UInt8(field(word, 4, 1))
      i.condition = UInt8(field(word, 12, 4))
      i.imm2 = UInt64(word & 15) << 28
    case 0b10:
      guard format != .half, field(word, 12, 4) <= 8 else { return }
      i.operation = .fpDataProcessing2
      i.variant = UInt8(field(word, 12, 4))
    case 0b11:
      guard format != .half else { return }
      i.operation = .fpConditionalSelect
      i.condition = UInt8(field(word, 12, 4))
    default:
      if field(word, 12, 1) == 1 {
        // FMOV (scalar, immediate): imm5 must be zero.
        guard format != .half, field(word, 5, 5) == 0 else { return }
        i.operation = .fpMoveImmediate
        i.imm = expandImmediate(field(word, 13, 8), format)
      } else if field(word, 12, 2) == 0b10 {
        guard format != .half, field(word, 14, 2) == 0, word & 7 == 0 else { return }
        i.operation = .fpCompare
        i.variant = UInt8(field(word, 3, 2))
      } else if field(word, 12, 3) == 0b100 {
        decodeFPDataProcessing1(word, format, &i)
      }
    }
  }

  /// VFPExpandImm: an 8-bit immediate to a single or double (sign, 3 exponent bits, 4 fraction).
  static func expandImmediate(_ imm8: UInt32, _ format: FPFormat) -> UInt64 {
    let imm = UInt64(imm8)
    let exponentBits = UInt64(format.exponentBits)
    let b6 = imm >> 6 & 1
    let exponent = (b6 ^ 1) << (exponentBits - 1) | (b6 != 0 ? (1 << (exponentBits - 3)) - 1 : 0) << 2 | imm >> 4 & 3
    return (imm >> 7) << UInt64(format.totalBits - 1) | exponent << UInt64(format.fractionBits)
      | (imm & 15) << UInt64(format.fractionBits - 4)
  }

  static func decodeFPDataProcessing1(_ word: UInt32, _ format: FPFormat, _ i: inout A64Instruction) {
    let opcode = field(word, 15, 6)
    let operation: FPOperation1
    switch opcode {
    case 0: operation = .fmov
    case 1: operation = .fabs
    case 2: operation = .fneg
    case 3: operation = .fsqrt
    case 4, 5, 7:
      // FCVT: opc names the destination; the same format is unallocated.
      guard let destination = FPFormat(ftype: opcode & 3), destination != format else { return }
      operation = .fcvt
      i.amount = destination.rawValue
    case 8...12, 14, 15: operation = .frint
    default: return
    }
    if format == .half && operation != .fcvt { return }
    i.operation = .fpDataProcessing1
    i.variant = operation.rawValue
    // FRINT: N, P, M, Z, A, (13 unallocated), X, I: the rounding, or 5 for FPCR's.
    i.condition = opcode == 12 ? 4 : opcode >= 14 ? 5 : UInt8(opcode & 3)
    i.setFlags = opcode == 14  // FRINTX raises Inexact
  }

  /// SCVTF, UCVTF, FCVTZS and FCVTZU with fraction bits (C4.1.96.13).
  static func decodeFixedPointConversion(_ word: UInt32, _ i: inout A64Instruction) {
    let sf = word >> 31
    let scale = field(word, 10, 6)
    guard let format = FPFormat(ftype: field(word, 22, 2)), format != .half, sf == 1 || scale >= 32 else { return }
    switch (field(word, 19, 2), field(word, 16, 3)) {
    case (0, 2): i.variant = FPIntegerConversion.scvtf.rawValue
    case (0, 3): i.variant = FPIntegerConversion.ucvtf.rawValue
    case (3, 0): i.variant = FPIntegerConversion.fcvts.rawValue
    case (3, 1): i.variant = FPIntegerConversion.fcvtu.rawValue
    default: return
    }
    i.operation = .fpConvertInteger
    i.is64 = sf != 0
    i.size = format.rawValue
    i.amount = UInt8(64 - scale)
    i.condition = 3  // toward zero for FCVTZ*; SCVTF/UCVTF use FPCR's
  }

  /// Conversions between FP and integer registers, and FMOV (general) (C4.1.96.14).
  static func decodeIntegerConversion(_ word: UInt32, _ i: inout A64Instruction) {
    let sf = word >> 31
    let ftype = field(word, 22, 2)
    let rmode = field(word, 19, 2)
    let opcode = field(word, 16, 3)
    i.is64 = sf != 0
    if opcode >= 6 {
      // FMOV: W and S, X and D, X and the upper half of V (D[1]); the half forms are FP16.
      switch (sf, ftype, rmode) {
      case (0, 0, 0): i.size = 2
      case (1, 1, 0): i.size = 3
      case (1, 2, 1):
        i.size = 3
        i.amount = 1
      default: return
      }
      i.operation = .fmovGeneral
      i.variant = UInt8(opcode & 1)
      return
    }
    guard let format = FPFormat(ftype: ftype), format != .half else { return }
    let conversion: FPIntegerConversion
    switch opcode {
    case 0: conversion = .fcvts
    case 1: conversion = .fcvtu
    case 2 where rmode == 0: conversion = .scvtf
    case 3 where rmode == 0: conversion = .ucvtf
    case 4 where rmode == 0: conversion = .fcvts
    case 5 where rmode == 0: conversion = .fcvtu
    default: return
    }
    i.operation = .fpConvertInteger
    i.variant = conversion.rawValue
    i.size = format.rawValue
    i.amount = 0
    // FCVTN*, FCVTP*, FCVTM*, FCVTZ* round as rmode says; FCVTA* ties away.
    i.condition = opcode >= 4 ? 4 : UInt8(rmode)
  }
}
