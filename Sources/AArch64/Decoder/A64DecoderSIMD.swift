/// The Advanced SIMD vector encodings (ARM ARM C4.1.96): three same, three different,
/// two-register misc, across lanes, copy, modified immediate, shift by immediate, by element,
/// permute, extract and table lookup, integer and FP; the scalar forms and the structure loads
/// and stores are in their own files. The Cryptographic Extension (AES, SHA, PMULL of 64-bit
/// elements) is not implemented and stays UNDEFINED. `is64` holds Q (the 128-bit form),
/// `size` the log2 of the element size in bytes.
extension A64Decoder {
  static func decodeAdvancedSIMD(_ word: UInt32, _ i: inout A64Instruction) {
    registers(word, &i)
    i.is64 = field(word, 30, 1) != 0
    i.size = UInt8(field(word, 22, 2))
    guard word >> 31 == 0 else { return }
    if field(word, 28, 1) == 1 {
      if field(word, 30, 1) == 1 { decodeAdvancedSIMDScalar(word, &i) }
      return
    }
    if word & 0x9f00_0400 == 0x0f00_0000 {
      decodeByElement(word, scalar: false, &i)
    } else if word & 0x9f20_0c00 == 0x0e20_0000 {
      decodeThreeDifferent(word, &i)
    } else if word & 0x9f20_0400 == 0x0e20_0400 {
      decodeThreeSame(word, &i)
    } else if word & 0x9f3e_0c00 == 0x0e20_0800 {
      decodeTwoRegisterMisc(word, &i)
    } else if word & 0x9f3e_0c00 == 0x0e30_0800 {
      decodeAcrossLanes(word, &i)
    } else if word & 0x9fe0_8400 == 0x0e00_0400 {
      decodeCopy(word, &i)
    } else if word & 0x9ff8_0400 == 0x0f00_0400 {
      decodeModifiedImmediate(word, &i)
    } else if word & 0x9f80_0400 == 0x0f00_0400 {
      decodeShiftImmediate(word, &i)
    } else if word & 0xbf20_8c00 == 0x0e00_0800 {
      guard field(word, 12, 3) & 3 != 0, i.size != 3 || i.is64 else { return }
      i.operation = .simdPermute
      i.variant = UInt8(field(word, 12, 3))
    } else if word & 0xbfe0_8400 == 0x2e00_0000 {
      guard i.is64 || field(word, 14, 1) == 0 else { return }
      i.operation = .simdExtract
      i.amount = UInt8(field(word, 11, 4))
    } else if word & 0xbfe0_8c00 == 0x0e00_0000 {
      i.operation = .simdTableLookup
      i.variant = UInt8(field(word, 12, 1))
      i.amount = UInt8(field(word, 13, 2) + 1)
    }
  }

  static func decodeThreeSame(_ word: UInt32, _ i: inout A64Instruction) {
    let u = field(word, 29, 1)
    let opcode = field(word, 11, 5)
    let size = field(word, 22, 2)
    let q = field(word, 30, 1)
    let operation: SIMDThreeSame
    if opcode >= 0b11000 {
      // FP: sz = size<0>, and size<1> picks between pairs (FMAX/FMIN, FADD/FSUB ...).
      guard size & 1 == 0 || q == 1 else { return }
      switch (u, size >> 1, opcode) {
      case (0, 0, 0b11010): operation = .fadd
      case (0, 1, 0b11010): operation = .fsub
      case (1, 0, 0b11011): operation = .fmul
      case (1, 0, 0b11111): operation = .fdiv
      case (0, 0, 0b11110): operation = .fmax
      case (0, 1, 0b11110): operation = .fmin
      case (0, 0, 0b11000): operation = .fmaxnm
      case (0, 1, 0b11000): operation = .fminnm
      case (0, 0, 0b11001): operation = .fmla
      case (0, 1, 0b11001): operation = .fmls
      case (1, 0, 0b11010): operation = .faddp
      case (1, 0, 0b11000): operation = .fmaxnmp
      case (1, 1, 0b11000): operation = .fminnmp
      case (1, 0, 0b11110): operation = .fmaxp
      case (1, 1, 0b11110): operation = .fminp
      case (1, 1, 0b11010): operation = .fabd
      case (1, 0, 0b11101): operation = .facge
      case (1, 1, 0b11101): operation = .facgt
      case (0, 0, 0b11011): operation = .fmulx
      case (0, 0, 0b11111): operation = .frecps
      case (0, 1, 0b11111): operation = .frsqrts
      case (0, 0, 0b11100): operation = .fcmeq
      case (1, 0, 0b11100): operation = .fcmge
      case (1, 1, 0b11100): operation = .fcmgt
      default: return
      }
      i.size = UInt8(2 + (size & 1))
    } else {
      switch (u, opcode) {
      case (0, 0b00011):
        operation = [.and, .bic, .orr, .orn][Int(size)]
      case (1, 0b00011):
        operation = [.eor, .bsl, .bit, .bif][Int(size)]
      case (0, 0b10000): operation = .add
      case (1, 0b10000): operation = .sub
      case (0, 0b00110): operation = .cmgt
      case (1, 0b00110): operation = .cmhi
      case (0, 0b00111): operation = .cmge
      case (1, 0b00111): operation = .cmhs
      case (0, 0b10001): operation = .cmtst
      case (1, 0b10001): operation = .cmeq
      case (0, 0b10011) where size != 3: operation = .mul
      case (0, 0b01100) where size != 3: operation = .smax
      case (1, 0b01100) where size != 3: operation = .umax
      case (0, 0b01101) where size != 3: operation = .smin
      case (1, 0b01101) where size != 3: operation = .umin
      case (0, 0b10111): operation = .addp
      case (0, 0b10010) where size != 3: operation = .mla
      case (1, 0b10010) where size != 3: operation = .mls
      case (0, 0b10100) where size != 3: operation = .smaxp
      case (1, 0b10100) where size != 3: operation = .umaxp
      case (0, 0b10101) where size != 3: operation = .sminp
      case (1, 0b10101) where size != 3: operation = .uminp
      case (0, 0b00000) where size != 3: operation = .shadd
      case (1, 0b00000) where size != 3: operation = .uhadd
      case (0, 0b00010) where size != 3: operation = .srhadd
      case (1, 0b00010) where size != 3: operation = .urhadd
      case (0, 0b00100) where size != 3: operation = .shsub
      case (1, 0b00100) where size != 3: operation = .uhsub
      case (0, 0b10110) where size == 1 || size == 2: operation = .sqdmulh
      case (1, 0b10110) where size == 1 || size == 2: operation = .sqrdmulh
      case (0, 0b01010): operation = .srshl
      case (1, 0b01010): operation = .urshl
      case (0, 0b01001): operation = .sqshl
      case (1, 0b01001): operation = .uqshl
      case (0, 0b01011): operation = .sqrshl
      case (1, 0b01011): operation = .uqrshl
      case (1, 0b10011) where size == 0: operation = .pmul
      case (0, 0b01000): operation = .sshl
      case (1, 0b01000): operation = .ushl
      case (0, 0b01110) where size != 3: operation = .sabd
      case (1, 0b01110) where size != 3: operation = .uabd
      case (0, 0b01111) where size != 3: operation = .saba
      case (1, 0b01111) where size != 3: operation = .uaba
      case (0, 0b00001): operation = .sqadd
      case (1, 0b00001): operation = .uqadd
      case (0, 0b00101): operation = .sqsub
      case (1, 0b00101): operation = .uqsub
      default: return
      }
      // 64-bit elements need the 128-bit form (the logical group has no element size).
      if opcode != 0b00011 && size == 3 && q == 0 { return }
    }
    i.operation = .simdThreeSame
    i.variant = operation.rawValue
  }

  static func decodeTwoRegisterMisc(_ word: UInt32, _ i: inout A64Instruction) {
    let u = field(word, 29, 1)
    let opcode = field(word, 12, 5)
    let size = field(word, 22, 2)
    let q = field(word, 30, 1)
    let operation: SIMDTwoRegisterMisc
    switch (u, opcode) {
    case (0, 0b00000) where size < 3: operation = .rev64
    case (1, 0b00000) where size < 2: operation = .rev32
    case (0, 0b00001) where size < 1: operation = .rev16
    case (0, 0b00101) where size == 0: operation = .cnt
    case (1, 0b00101) where size == 0: operation = .not
    case (1, 0b00101) where size == 1:
      operation = .rbit
      i.size = 0  // bytes, whatever the size field says
    case (0, 0b00100) where size < 3: operation = .cls
    case (1, 0b00100) where size < 3: operation = .clz
    case (0, 0b01000): operation = .cmgtZero
    case (1, 0b01000): operation = .cmgeZero
    case (0, 0b01001): operation = .cmeqZero
    case (1, 0b01001): operation = .cmleZero
    case (0, 0b01010): operation = .cmltZero
    case (0, 0b01011): operation = .abs
    case (1, 0b01011): operation = .neg
    case (0, 0b10010) where size < 3: operation = .xtn
    case (_, 0b01111) where size >= 2:
      operation = u == 0 ? .fabs : .fneg
      i.size = UInt8(size & 1 + 2)
    case (1, 0b11111) where size >= 2:
      operation = .fsqrt
      i.size = UInt8(size & 1 + 2)
    case (_, 0b11101) where size < 2:
      operation = u == 0 ? .scvtf : .ucvtf
      i.size = UInt8(size + 2)
    case (_, 0b11010), (_, 0b11011),
      (_, 0b11100) where size >> 1 == 0:
      // FCVTNS, FCVTPS, FCVTMS, FCVTZS, FCVTAS and their unsigned twins.
      operation = u == 0 ? .fcvtzs : .fcvtzu
      i.condition = UInt8((opcode - 0b11010) << 1 | size >> 1)
      i.size = UInt8(size & 1 + 2)
    case (_, 0b11000), (_, 0b11001):
      // FRINTN, FRINTP, FRINTM, FRINTZ; FRINTA, FRINTX, FRINTI (U1 11000 1x is unallocated).
      let mode = (opcode & 1) << 1 | size >> 1
      if u == 1 && mode == 1 { return }
      operation = .frint
      i.condition = u == 0 ? UInt8(mode) : mode == 0 ? 4 : 5
      i.amount = u == 1 && mode == 2 ? 1 : 0
      i.size = UInt8(size & 1 + 2)
    case (1, 0b10110) where size == 1:
      operation = .fcvtxn
      i.size = 3
    case (0, 0b10111) where size < 2, (0, 0b10110) where size < 2:
      operation = opcode == 0b10111 ? .fcvtl : .fcvtn
      i.size = UInt8(size + 2)
    case (_, 0b01100) where size >= 2, (_, 0b01101) where size >= 2, (0, 0b01110) where size >= 2:
      operation =
        [[.fcmgtZero, .fcmgeZero], [.fcmeqZero, .fcmleZero], [.fcmltZero, .fcmltZero]][Int(opcode - 0b01100)][
          Int(u)]
      i.size = UInt8(size & 1 + 2)
    case (_, 0b10100) where size < 3: operation = u == 0 ? .sqxtn : .uqxtn
    case (1, 0b10011) where size < 3: operation = .shll
    case (_, 0b00011): operation = u == 0 ? .suqadd : .usqadd
    case (_, 0b11101) where size >= 2:
      operation = u == 0 ? .frecpe : .frsqrte
      i.size = UInt8(size & 1 + 2)
    case (_, 0b11100) where size == 2:
      operation = u == 0 ? .urecpe : .ursqrte
    case (0, 0b11111) where size >= 2:
      operation = .frecpx  // scalar only (checked below)
      i.size = UInt8(size & 1 + 2)
    case (1, 0b10010) where size < 3: operation = .sqxtun
    case (_, 0b00111): operation = u == 0 ? .sqabs : .sqneg
    case (_, 0b00010) where size < 3: operation = u == 0 ? .saddlp : .uaddlp
    case (_, 0b00110) where size < 3: operation = u == 0 ? .sadalp : .uadalp
    default: return
    }
    switch operation {
    case .shll, .fcvtl, .fcvtn, .fcvtxn, .xtn, .sqxtn, .uqxtn, .sqxtun, .rev64, .rev32, .rev16, .cnt, .not, .rbit, .cls,
      .clz,
      .saddlp,
      .uaddlp,
      .sadalp, .uadalp:
      break
    case .fabs, .fneg, .fsqrt, .scvtf, .ucvtf, .fcvtzs, .fcvtzu, .fcmgtZero, .fcmgeZero, .fcmeqZero, .fcmleZero,
      .fcmltZero, .frint, .frecpe, .frsqrte:
      if size & 1 == 1 && q == 0 { return }
    case .frecpx:
      return  // only the scalar form exists
    case .urecpe, .ursqrte:
      break  // double elements need the 128-bit form
    default:
      if size == 3 && q == 0 { return }
    }
    i.operation = .simdTwoRegisterMisc
    i.variant = operation.rawValue
  }

  static func decodeAcrossLanes(_ word: UInt32, _ i: inout A64Instruction) {
    let u = field(word, 29, 1)
    let size = field(word, 22, 2)
    let opcode = field(word, 12, 5)
    if u == 1 && (opcode == 0b01100 || opcode == 0b01111) {
      // FMAXNMV, FMAXV, FMINNMV, FMINV: 4S only in ARMv8.0 (sz 1 is reserved, 0 with Q = 0 is FP16).
      guard size & 1 == 0, field(word, 30, 1) == 1 else { return }
      let operation: SIMDAcrossLanes =
        opcode == 0b01100 ? (size == 0 ? .fmaxnmv : .fminnmv) : (size == 0 ? .fmaxv : .fminv)
      i.operation = .simdAcrossLanes
      i.variant = operation.rawValue
      i.size = 2
      return
    }
    // Four or more elements: no 64-bit elements, and 32-bit ones only in the 128-bit form.
    guard size < 2 || size == 2 && field(word, 30, 1) == 1 else { return }
    let operation: SIMDAcrossLanes
    switch (u, field(word, 12, 5)) {
    case (0, 0b11011): operation = .addv
    case (0, 0b01010): operation = .smaxv
    case (1, 0b01010): operation = .umaxv
    case (0, 0b11010): operation = .sminv
    case (1, 0b11010): operation = .uminv
    case (0, 0b00011): operation = .saddlv
    case (1, 0b00011): operation = .uaddlv
    default: return
    }
    i.operation = .simdAcrossLanes
    i.variant = operation.rawValue
  }

  /// DUP, SMOV, UMOV, INS: imm5's lowest set bit gives the element size, the bits above it
  /// the index.
  static func decodeCopy(_ word: UInt32, _ i: inout A64Instruction) {
    let imm5 = field(word, 16, 5)
    guard imm5 & 15 != 0 else { return }
    let size = UInt32(imm5.trailingZeroBitCount)
    i.size = UInt8(size)
    i.imm = UInt64(imm5 >> (size + 1))
    let q = field(word, 30, 1)
    let imm4 = field(word, 11, 4)
    let operation: SIMDCopy
    if field(word, 29, 1) == 1 {
      guard q == 1 else { return }
      operation = .insElement
      i.imm2 = UInt64(imm4 >> size)
    } else {
      switch imm4 {
      case 0b0000:
        guard size < 3 || q == 1 else { return }
        operation = .dupElement
      case 0b0001:
        guard size < 3 || q == 1 else { return }
        operation = .dupGeneral
      case 0b0011:
        guard q == 1 else { return }
        operation = .insGeneral
      case 0b0101:
        // SMOV: to W from B or H, to X from B, H or S.
        guard size < 2 + q, !(q == 0 && size == 2) else { return }
        operation = .smov
      case 0b0111:
        // UMOV: W from B, H, S; X from D.
        guard q == 1 ? size == 3 : size < 3 else { return }
        operation = .umov
      default: return
      }
    }
    i.operation = .simdCopy
    i.variant = operation.rawValue
  }

  /// MOVI, MVNI, ORR, BIC (vector, immediate) and FMOV (vector, immediate): AdvSIMDExpandImm
  /// computed here, so `imm` holds the 64-bit pattern (already inverted for MVNI).
  static func decodeModifiedImmediate(_ word: UInt32, _ i: inout A64Instruction) {
    let op = field(word, 29, 1)
    let cmode = field(word, 12, 4)
    let q = field(word, 30, 1)
    guard field(word, 11, 1) == 0 else { return }  // o2: FMOV (half) is FP16
    let imm8 = UInt64(field(word, 16, 3) << 5 | field(word, 5, 5))
    var value: UInt64
    func replicate32(_ x: UInt64) -> UInt64 { x << 32 | x }
    func replicate16(_ x: UInt64) -> UInt64 { replicate32(x << 16 | x) }
    var kind = SIMDImmediate.move
    switch cmode {
    case 0...7:
      value = replicate32(imm8 << (8 * UInt64(cmode >> 1)))
      if cmode & 1 == 1 { kind = op == 0 ? .orr : .bic }
    case 8...11:
      value = replicate16(imm8 << (8 * UInt64((cmode >> 1) & 1)))
      if cmode & 1 == 1 { kind = op == 0 ? .orr : .bic }
    case 12, 13:
      value = replicate32(imm8 << (cmode == 12 ? 8 : 16) | (cmode == 12 ? 0xff : 0xffff))
    case 14:
      if op == 0 {
        value = imm8 * 0x0101_0101_0101_0101
      } else {
        value = 0
        for bit in 0..<8 where imm8 >> UInt64(bit) & 1 != 0 { value |= 0xff << UInt64(8 * bit) }
      }
    default:
      if op == 0 {
        value = replicate32(expandImmediate(UInt32(imm8), .single))
      } else {
        guard q == 1 else { return }
        value = expandImmediate(UInt32(imm8), .double)
      }
    }
    // MVNI: op 1 with the MOVI-shaped cmodes (0xx0, 10x0, 110x).
    if op == 1 && kind == .move && cmode < 14 { value = ~value }
    i.operation = .simdModifiedImmediate
    i.variant = kind.rawValue
    i.imm = value
  }

  static func decodeShiftImmediate(_ word: UInt32, _ i: inout A64Instruction) {
    let immh = field(word, 19, 4)
    guard immh != 0 else { return }
    let immhb = field(word, 16, 7)
    let u = field(word, 29, 1)
    let q = field(word, 30, 1)
    let size = UInt32(31 - immh.leadingZeroBitCount)
    let esize = UInt32(8) << size
    let operation: SIMDShiftImmediate
    switch (u, field(word, 11, 5)) {
    case (0, 0b00000): operation = .sshr
    case (1, 0b00000): operation = .ushr
    case (0, 0b00010): operation = .ssra
    case (1, 0b00010): operation = .usra
    case (0, 0b01010): operation = .shl
    case (1, 0b01010): operation = .sli
    case (1, 0b01000): operation = .sri
    case (0, 0b10000): operation = .shrn
    case (0, 0b10100): operation = .sshll
    case (1, 0b10100): operation = .ushll
    case (0, 0b11100): operation = .scvtf
    case (1, 0b11100): operation = .ucvtf
    case (0, 0b11111): operation = .fcvtzs
    case (1, 0b11111): operation = .fcvtzu
    case (0, 0b00100): operation = .srshr
    case (1, 0b00100): operation = .urshr
    case (0, 0b00110): operation = .srsra
    case (1, 0b00110): operation = .ursra
    case (0, 0b10001): operation = .rshrn
    case (0, 0b10010): operation = .sqshrn
    case (1, 0b10010): operation = .uqshrn
    case (0, 0b10011): operation = .sqrshrn
    case (1, 0b10011): operation = .uqrshrn
    case (1, 0b10000): operation = .sqshrun
    case (1, 0b10001): operation = .sqrshrun
    case (0, 0b01110): operation = .sqshl
    case (1, 0b01110): operation = .uqshl
    case (1, 0b01100): operation = .sqshlu
    default: return
    }
    switch operation {
    case .shrn, .sshll, .ushll, .rshrn, .sqshrn, .uqshrn, .sqrshrn, .uqrshrn, .sqshrun, .sqrshrun:
      guard size < 3 else { return }
    case .scvtf, .ucvtf, .fcvtzs, .fcvtzu:
      // Single or double elements (immh 01xx, 1xxx; doubles need the 128-bit form).
      guard size >= 2, size < 3 || q == 1 else { return }
    default:
      guard size < 3 || q == 1 else { return }
    }
    i.size = UInt8(size)
    switch operation {
    case .shl, .sli, .sshll, .ushll, .sqshl, .uqshl, .sqshlu: i.amount = UInt8(immhb - esize)
    default: i.amount = UInt8(2 * esize - immhb)
    }
    i.operation = .simdShiftImmediate
    i.variant = operation.rawValue
  }

  /// MUL, MLA, MLS, SMULL, UMULL, SMLAL, UMLAL, SMLSL, UMLSL and FMUL, FMLA, FMLS by
  /// element: H:L:M index 16-bit elements in V0-V15, H:L 32-bit ones, H 64-bit ones. The scalar
  /// forms implemented are the FP ones.
  static func decodeByElement(_ word: UInt32, scalar: Bool, _ i: inout A64Instruction) {
    let u = field(word, 29, 1)
    let size = field(word, 22, 2)
    let (h, l, m) = (field(word, 11, 1), field(word, 21, 1), field(word, 20, 1))
    let operation: SIMDByElement
    switch (u, field(word, 12, 4)) {
    case (0, 0b0001): operation = .fmla
    case (0, 0b0101): operation = .fmls
    case (0, 0b1001): operation = .fmul
    case (1, 0b0000): operation = .mla
    case (1, 0b0100): operation = .mls
    case (0, 0b1000): operation = .mul
    case (0, 0b0010): operation = .smlal
    case (1, 0b0010): operation = .umlal
    case (0, 0b0110): operation = .smlsl
    case (1, 0b0110): operation = .umlsl
    case (0, 0b1010): operation = .smull
    case (1, 0b1010): operation = .umull
    case (0, 0b1100): operation = .sqdmulh
    case (0, 0b1101): operation = .sqrdmulh
    case (0, 0b1011): operation = .sqdmull
    case (0, 0b0011): operation = .sqdmlal
    case (0, 0b0111): operation = .sqdmlsl
    case (1, 0b1001): operation = .fmulx
    default: return
    }
    let floatingPoint = operation == .fmla || operation == .fmls || operation == .fmul || operation == .fmulx
    let saturating = [.sqdmulh, .sqrdmulh, .sqdmull, .sqdmlal, .sqdmlsl].contains(operation)
    if scalar && !floatingPoint && !saturating { return }
    if floatingPoint {
      switch size {
      case 2:
        i.imm = UInt64(h << 1 | l)
      case 3:
        // Doubles: index H, L must be 0, and the vector form needs Q = 1.
        guard l == 0, scalar || field(word, 30, 1) == 1 else { return }
        i.imm = UInt64(h)
      default: return  // half precision is FP16
      }
      i.rm = UInt8(m << 4 | field(word, 16, 4))
    } else {
      switch size {
      case 1:
        i.imm = UInt64(h << 2 | l << 1 | m)
        i.rm = UInt8(field(word, 16, 4))
      case 2:
        i.imm = UInt64(h << 1 | l)
        i.rm = UInt8(m << 4 | field(word, 16, 4))
      default: return
      }
    }
    i.operation = .simdByElement
    i.variant = operation.rawValue
  }

  /// UADDL, SADDW, USUBL, SMLAL, UMULL ... (C4.1.96.19): 8-, 16- and 32-bit elements
  /// widened to twice their size; the "2" forms (Q = 1) take the upper halves.
  static func decodeThreeDifferent(_ word: UInt32, _ i: inout A64Instruction) {
    guard i.size < 3 else { return }
    let operation: SIMDThreeDifferent
    switch field(word, 12, 4) {
    case 0b0000: operation = .addl
    case 0b0001: operation = .addw
    case 0b0010: operation = .subl
    case 0b0011: operation = .subw
    case 0b1000: operation = .mlal
    case 0b1010: operation = .mlsl
    case 0b1100: operation = .mull
    case 0b0101: operation = .abal
    case 0b0111: operation = .abdl
    case 0b0100: operation = .addhn
    case 0b0110: operation = .subhn
    case 0b1110 where i.size == 0 && field(word, 29, 1) == 0: operation = .pmull  // PMULL 1Q is crypto
    case 0b1101 where i.size != 0 && field(word, 29, 1) == 0: operation = .sqdmull
    case 0b1001 where i.size != 0 && field(word, 29, 1) == 0: operation = .sqdmlal
    case 0b1011 where i.size != 0 && field(word, 29, 1) == 0: operation = .sqdmlsl
    default: return
    }
    i.operation = .simdThreeDifferent
    i.variant = operation.rawValue | UInt8(field(word, 29, 1) << 7)
  }
}
