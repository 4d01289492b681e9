/// Decodes one 32-bit A64 instruction word (ARM ARM C4.1, the A64 encoding index). Anything
/// unallocated in ARMv8.0, or not implemented here, decodes as `.undefined`, which the core
/// turns into the UNDEFINED exception (and names once on stderr through its engine).
public enum A64Decoder {
  public static func decode(_ word: UInt32) -> A64Instruction {
    var i = A64Instruction()
    i.raw = word
    switch (word >> 25) & 0xf {
    case 0b1000, 0b1001: decodeDataProcessingImmediate(word, &i)
    case 0b1010, 0b1011: decodeBranchesAndSystem(word, &i)
    case 0b0100, 0b0110, 0b1100, 0b1110: decodeLoadsAndStores(word, &i)
    case 0b0101, 0b1101: decodeDataProcessingRegister(word, &i)
    case 0b0111, 0b1111:
      if word & 0x5e00_0000 == 0x1e00_0000 {
        decodeFloatingPoint(word, &i)
      } else {
        decodeAdvancedSIMD(word, &i)
      }
    default: break  // UDF, SVE: undefined here
    }
    return i
  }

  @inline(__always) static func field(_ word: UInt32, _ low: Int, _ width: Int) -> UInt32 {
    (word >> UInt32(low)) & ((1 << UInt32(width)) - 1)
  }

  @inline(__always) static func signExtend(_ value: UInt32, bits: Int) -> UInt64 {
    UInt64(bitPattern: Int64(Int32(bitPattern: value << UInt32(32 - bits)) >> Int32(32 - bits)))
  }

  @inline(__always) static func registers(_ word: UInt32, _ i: inout A64Instruction) {
    i.rd = UInt8(word & 31)
    i.rn = UInt8((word >> 5) & 31)
    i.rm = UInt8((word >> 16) & 31)
  }

  // MARK: Data processing, immediate (C4.1.86)

  static func decodeDataProcessingImmediate(_ word: UInt32, _ i: inout A64Instruction) {
    registers(word, &i)
    i.is64 = word >> 31 != 0
    let sf = word >> 31
    switch field(word, 23, 3) {
    case 0b000, 0b001:
      let offset = signExtend(field(word, 5, 19) << 2 | field(word, 29, 2), bits: 21)
      if sf == 0 {
        i.operation = .adr
        i.imm = offset
      } else {
        i.operation = .adrp
        i.imm = offset << 12
      }
    case 0b010:
      i.operation = .addSubImmediate
      i.variant = UInt8(field(word, 30, 1))
      i.setFlags = field(word, 29, 1) != 0
      let imm12 = UInt64(field(word, 10, 12))
      i.imm = field(word, 22, 1) != 0 ? imm12 << 12 : imm12
    case 0b100:
      let n = field(word, 22, 1)
      if sf == 0 && n != 0 { return }
      guard let mask = decodeBitMask(n: n, imms: field(word, 10, 6), immr: field(word, 16, 6), logical: true)
      else { return }
      i.operation = .logicalImmediate
      i.variant = UInt8(field(word, 29, 2))
      i.setFlags = i.variant == 3
      i.imm = sf == 0 ? mask.wmask & 0xffff_ffff : mask.wmask
    case 0b101:
      let opc = field(word, 29, 2)
      let hw = field(word, 21, 2)
      if opc == 1 || sf == 0 && hw >= 2 { return }
      i.operation = .moveWide
      i.variant = UInt8(opc)
      i.amount = UInt8(hw * 16)
      i.imm = UInt64(field(word, 5, 16))
    case 0b110:
      let opc = field(word, 29, 2)
      let n = field(word, 22, 1)
      let immr = field(word, 16, 6)
      let imms = field(word, 10, 6)
      if opc == 3 || n != sf || sf == 0 && (immr >= 32 || imms >= 32) { return }
      guard let masks = decodeBitMask(n: n, imms: imms, immr: immr, logical: false) else { return }
      i.operation = .bitfield
      i.variant = UInt8(opc)
      i.imm = masks.wmask
      i.imm2 = masks.tmask
      i.amount = UInt8(immr)
      i.size = UInt8(imms)
    case 0b111:
      let imms = field(word, 10, 6)
      if field(word, 29, 2) != 0 || field(word, 21, 1) != 0 || field(word, 22, 1) != sf || sf == 0 && imms >= 32 {
        return
      }
      i.operation = .extract
      i.amount = UInt8(imms)
    default:
      break  // add/sub immediate with tags (ARMv8.5)
    }
  }

  /// DecodeBitMasks (ARM ARM J1.1.3, shared/functions/bitmasks): the element of `1 << len`
  /// bits holding S + 1 ones rotated right by R, replicated to 64 bits; and the "top" mask
  /// BFM-style instructions use. nil for the reserved encodings.
  static func decodeBitMask(n: UInt32, imms: UInt32, immr: UInt32, logical: Bool) -> (wmask: UInt64, tmask: UInt64)? {
    let combined = n << 6 | (~imms & 0x3f)
    guard combined != 0 else { return nil }
    let len = 31 - combined.leadingZeroBitCount
    guard len >= 1 else { return nil }
    let levels = UInt32((1 << len) - 1)
    if logical && imms & levels == levels { return nil }
    let s = Int(imms & levels)
    let r = Int(immr & levels)
    let esize = 1 << len
    let d = (s - r) & (esize - 1)
    func ones(_ count: Int) -> UInt64 { count >= 64 ? .max : (1 << UInt64(count)) - 1 }
    let elementMask = ones(esize)
    let welem = ones(s + 1)
    let telem = ones(d + 1)
    let rotated = r == 0 ? welem : ((welem >> UInt64(r)) | (welem << UInt64(esize - r))) & elementMask
    func replicate(_ element: UInt64) -> UInt64 {
      var value: UInt64 = 0
      var shift = 0
      while shift < 64 {
        value |= element << UInt64(shift)
        shift += esize
      }
      return value
    }
    return (replicate(rotated), replicate(telem))
  }

  // MARK: Branches, exception generation, system (C4.1.87)

  static func decodeBranchesAndSystem(_ word: UInt32, _ i: inout A64Instruction) {
    i.rd = UInt8(word & 31)
    i.rn = UInt8((word >> 5) & 31)
    if word & 0x7c00_0000 == 0x1400_0000 {
      i.operation = word >> 31 == 0 ? .branch : .branchLink
      i.imm = signExtend(field(word, 0, 26), bits: 26) << 2
    } else if word & 0x7e00_0000 == 0x3400_0000 {
      i.operation = .compareBranch
      i.is64 = word >> 31 != 0
      i.variant = UInt8(field(word, 24, 1))
      i.imm = signExtend(field(word, 5, 19), bits: 19) << 2
    } else if word & 0x7e00_0000 == 0x3600_0000 {
      i.operation = .testBranch
      i.variant = UInt8(field(word, 24, 1))
      i.imm2 = UInt64(field(word, 31, 1) << 5 | field(word, 19, 5))
      i.imm = signExtend(field(word, 5, 14), bits: 14) << 2
    } else if word & 0xff00_0010 == 0x5400_0000 {
      i.operation = .branchConditional
      i.condition = UInt8(word & 15)
      i.imm = signExtend(field(word, 5, 19), bits: 19) << 2
    } else if word & 0xff00_0000 == 0xd400_0000 {
      decodeExceptionGeneration(word, &i)
    } else if word & 0xffc0_0000 == 0xd500_0000 {
      decodeSystem(word, &i)
    } else if word & 0xfe00_0000 == 0xd600_0000 {
      // Unconditional branch (register): op2 = 11111, op3 = 000000, op4 = 00000 (no PAuth).
      guard field(word, 16, 5) == 0b11111, field(word, 10, 6) == 0 else { return }
      switch field(word, 21, 4) {
      case 0b0000, 0b0001, 0b0010:
        guard word & 31 == 0 else { return }
        i.operation = .branchRegister
        i.variant = UInt8(field(word, 21, 4))
      case 0b0100:
        guard word & 0x3ff == 0x3e0 else { return }
        i.operation = .exceptionReturn
      default:
        break  // DRPS (debug state only) and the PAuth forms
      }
    }
  }

  static func decodeExceptionGeneration(_ word: UInt32, _ i: inout A64Instruction) {
    guard field(word, 2, 3) == 0 else { return }
    i.imm = UInt64(field(word, 5, 16))
    let kind: ExceptionGeneration
    switch (field(word, 21, 3), word & 3) {
    case (0, 1): kind = .svc
    case (0, 2): kind = .hvc
    case (0, 3): kind = .smc
    case (1, 0): kind = .brk
    case (2, 0): kind = .hlt
    default: return  // DCPS1-3 (debug state only) and unallocated
    }
    i.operation = .exceptionGeneration
    i.variant = kind.rawValue
  }

  static func decodeSystem(_ word: UInt32, _ i: inout A64Instruction) {
    let l = field(word, 21, 1)
    let op0 = field(word, 19, 2)
    let op1 = field(word, 16, 3)
    let crn = field(word, 12, 4)
    let crm = field(word, 8, 4)
    let op2 = field(word, 5, 3)
    let rt = word & 31
    if l == 0 && op0 == 0 {
      guard rt == 31 else { return }
      switch crn {
      case 0b0100:
        i.operation = .msrImmediate
        i.imm2 = UInt64(op1 << 3 | op2)
        i.imm = UInt64(crm)
      case 0b0010:
        i.operation = .hint
        i.imm = UInt64(crm << 3 | op2)
      case 0b0011:
        switch op2 {
        case 2: i.operation = .clearExclusive
        case 4, 5, 6:
          i.operation = .barrier
          i.variant = UInt8(op2)
        default: break
        }
      default: break
      }
    } else if op0 == 1 {
      guard l == 0 else { return }  // SYSL: no instruction is allocated there in ARMv8.0
      i.operation = .system
      i.imm2 = UInt64(SystemRegisterName(UInt16(op0), UInt16(op1), UInt16(crn), UInt16(crm), UInt16(op2)).encoding)
    } else if op0 >= 2 {
      i.operation = l == 0 ? .msr : .mrs
      i.imm2 = UInt64(SystemRegisterName(UInt16(op0), UInt16(op1), UInt16(crn), UInt16(crm), UInt16(op2)).encoding)
    }
  }

  // MARK: Loads and stores (C4.1.88)

  static func decodeLoadsAndStores(_ word: UInt32, _ i: inout A64Instruction) {
    i.rd = UInt8(word & 31)
    i.rn = UInt8((word >> 5) & 31)
    i.rm = UInt8((word >> 16) & 31)
    i.ra = UInt8((word >> 10) & 31)
    let vector = field(word, 26, 1) != 0
    if word & 0xbf20_0000 == 0x0c00_0000 {
      decodeLoadStoreMultiple(word, &i)
    } else if word & 0xbf00_0000 == 0x0d00_0000 {
      decodeLoadStoreSingle(word, &i)
    } else if word & 0x3f00_0000 == 0x0800_0000 {
      decodeExclusive(word, &i)
    } else if word & 0x3b00_0000 == 0x1800_0000 {
      decodeLiteral(word, vector: vector, &i)
    } else if word & 0x3a00_0000 == 0x2800_0000 {
      decodePair(word, vector: vector, &i)
    } else if word & 0x3b00_0000 == 0x3800_0000 || word & 0x3b00_0000 == 0x3900_0000 {
      decodeSingle(word, vector: vector, &i)
    }
  }

  static func decodeExclusive(_ word: UInt32, _ i: inout A64Instruction) {
    let size = field(word, 30, 2)
    let o2 = field(word, 23, 1)
    let load = field(word, 22, 1) != 0
    let o1 = field(word, 21, 1)
    let o0 = UInt8(field(word, 15, 1))
    i.size = UInt8(size)
    i.variant = o0
    switch (o2, o1) {
    case (0, 0):
      i.operation = load ? .loadExclusive : .storeExclusive
    case (0, 1):
      guard size >= 2 else { return }  // CASP (ARMv8.1)
      i.operation = load ? .loadExclusivePair : .storeExclusivePair
    case (1, 0):
      guard o0 == 1 else { return }  // LDLAR/STLLR (ARMv8.1)
      i.operation = load ? .loadAcquire : .storeRelease
    default:
      return  // CAS (ARMv8.1)
    }
    i.is64 = size == 3
  }

  static func decodeLiteral(_ word: UInt32, vector: Bool, _ i: inout A64Instruction) {
    let opc = field(word, 30, 2)
    i.operation = .loadStore
    i.addressing = .literal
    i.imm = signExtend(field(word, 5, 19), bits: 19) << 2
    if vector {
      guard opc != 3 else {
        i.operation = .undefined
        return
      }
      i.variant = LoadStoreKind.loadVector.rawValue
      i.size = UInt8(2 + opc)
    } else {
      switch opc {
      case 0: (i.variant, i.size, i.is64) = (LoadStoreKind.load.rawValue, 2, false)
      case 1: (i.variant, i.size, i.is64) = (LoadStoreKind.load.rawValue, 3, true)
      case 2: (i.variant, i.size, i.is64) = (LoadStoreKind.loadSigned64.rawValue, 2, true)
      default: (i.variant, i.size) = (LoadStoreKind.prefetch.rawValue, 3)
      }
    }
  }

  static func decodePair(_ word: UInt32, vector: Bool, _ i: inout A64Instruction) {
    let opc = field(word, 30, 2)
    let mode = field(word, 23, 3)
    let load = field(word, 22, 1) != 0
    i.ra = UInt8(field(word, 10, 5))
    let kind: LoadStoreKind
    let scale: UInt32
    if vector {
      guard opc != 3 else { return }
      kind = load ? .loadVector : .storeVector
      scale = 2 + opc
    } else {
      switch (opc, load) {
      case (0, _), (2, _):
        kind = load ? .load : .store
        scale = 2 + opc / 2
      case (1, true) where mode != 0:
        kind = .loadSigned64
        scale = 2
      default:
        return  // STGP (ARMv8.5), LDPSW's non-temporal slot, opc 3
      }
      i.is64 = opc != 0
    }
    switch mode {
    case 0b000, 0b010: i.addressing = .offset
    case 0b001: i.addressing = .postIndex
    case 0b011: i.addressing = .preIndex
    default: return
    }
    i.operation = .loadStorePair
    i.variant = kind.rawValue
    i.size = UInt8(scale)
    i.imm = signExtend(field(word, 15, 7), bits: 7) << UInt64(scale)
  }

  static func decodeSingle(_ word: UInt32, vector: Bool, _ i: inout A64Instruction) {
    let size = field(word, 30, 2)
    let opc = field(word, 22, 2)
    let unsignedOffset = field(word, 24, 1) != 0
    var scale = size
    let kind: LoadStoreKind
    if vector {
      if opc >= 2 {
        guard size == 0 else { return }
        scale = 4
      }
      kind = opc & 1 != 0 ? .loadVector : .storeVector
    } else {
      switch (opc, size) {
      case (0, _): kind = .store
      case (1, _): kind = .load
      case (2, 3): kind = .prefetch
      case (2, _): kind = .loadSigned64
      case (3, 0), (3, 1): kind = .loadSigned32
      default: return
      }
    }
    i.size = UInt8(scale)
    i.variant = kind.rawValue
    i.is64 = kind == .loadSigned64 || kind == .prefetch || !vector && size == 3
    if unsignedOffset {
      i.addressing = .offset
      i.imm = UInt64(field(word, 10, 12)) << UInt64(scale)
    } else if field(word, 21, 1) == 0 {
      i.imm = signExtend(field(word, 12, 9), bits: 9)
      switch field(word, 10, 2) {
      case 0b00: i.addressing = .offset
      case 0b01: i.addressing = .postIndex
      case 0b10:
        // LDTR/STTR: an EL1 access checked as if at EL0 (C3.2.5).
        guard !vector, kind != .prefetch else { return }
        i.addressing = .offset
        i.unprivileged = true
      default: i.addressing = .preIndex
      }
      if kind == .prefetch && i.addressing != .offset { return }
    } else if field(word, 10, 2) == 0b10 {
      let option = field(word, 13, 3)
      guard option & 2 != 0 else { return }  // UXTB/UXTH/SXTB/SXTH are reserved here
      i.addressing = .register
      i.imm2 = UInt64(option)
      i.amount = field(word, 12, 1) != 0 ? UInt8(scale) : 0
    } else {
      return  // atomic memory operations (ARMv8.1), LDRAA/LDRAB (PAuth)
    }
    i.operation = .loadStore
  }

  // MARK: Data processing, register (C4.1.89)

  static func decodeDataProcessingRegister(_ word: UInt32, _ i: inout A64Instruction) {
    registers(word, &i)
    i.is64 = word >> 31 != 0
    let sf = word >> 31
    i.setFlags = field(word, 29, 1) != 0
    if word & 0x1f00_0000 == 0x0a00_0000 {
      let imm6 = field(word, 10, 6)
      if sf == 0 && imm6 >= 32 { return }
      i.operation = .logicalShifted
      i.variant = UInt8(field(word, 29, 2) << 1 | field(word, 21, 1))
      i.setFlags = field(word, 29, 2) == 3
      i.size = UInt8(field(word, 22, 2))
      i.amount = UInt8(imm6)
    } else if word & 0x1f20_0000 == 0x0b00_0000 {
      let imm6 = field(word, 10, 6)
      let shift = field(word, 22, 2)
      if shift == 3 || sf == 0 && imm6 >= 32 { return }
      i.operation = .addSubShifted
      i.variant = UInt8(field(word, 30, 1))
      i.size = UInt8(shift)
      i.amount = UInt8(imm6)
    } else if word & 0x1f20_0000 == 0x0b20_0000 {
      let imm3 = field(word, 10, 3)
      if field(word, 22, 2) != 0 || imm3 > 4 { return }
      i.operation = .addSubExtended
      i.variant = UInt8(field(word, 30, 1))
      i.size = UInt8(field(word, 13, 3))
      i.amount = UInt8(imm3)
    } else if word & 0x1fe0_0000 == 0x1a00_0000 {
      if field(word, 10, 6) != 0 { return }
      i.operation = .addSubCarry
      i.variant = UInt8(field(word, 30, 1))
    } else if word & 0x1fe0_0000 == 0x1a40_0000 {
      if !i.setFlags || field(word, 10, 1) != 0 || field(word, 4, 1) != 0 { return }
      i.operation = .conditionalCompare
      let immediate = field(word, 11, 1) != 0
      i.variant = UInt8(field(word, 30, 1)) | (immediate ? 2 : 0)
      i.imm = UInt64(field(word, 16, 5))
      i.condition = UInt8(field(word, 12, 4))
      i.imm2 = UInt64(word & 15) << 28
    } else if word & 0x1fe0_0000 == 0x1a80_0000 {
      if i.setFlags || field(word, 11, 1) != 0 { return }
      i.operation = .conditionalSelect
      i.variant = UInt8(field(word, 30, 1) << 1 | field(word, 10, 1))
      i.condition = UInt8(field(word, 12, 4))
    } else if word & 0x5fe0_0000 == 0x5ac0_0000 {
      if i.setFlags || field(word, 16, 5) != 0 { return }
      let operation: DataProcessing1
      switch field(word, 10, 6) {
      case 0: operation = .rbit
      case 1: operation = .rev16
      case 2: operation = sf == 1 ? .rev32 : .rev
      case 3 where sf == 1: operation = .rev
      case 4: operation = .clz
      case 5: operation = .cls
      default: return
      }
      i.operation = .dataProcessing1
      i.variant = operation.rawValue
    } else if word & 0x5fe0_0000 == 0x1ac0_0000 {
      if i.setFlags { return }
      let operation: DataProcessing2
      switch field(word, 10, 6) {
      case 2: operation = .udiv
      case 3: operation = .sdiv
      case 8: operation = .lslv
      case 9: operation = .lsrv
      case 10: operation = .asrv
      case 11: operation = .rorv
      default: return  // CRC32 (not advertised), PAC
      }
      i.operation = .dataProcessing2
      i.variant = operation.rawValue
    } else if word & 0x1f00_0000 == 0x1b00_0000 {
      if field(word, 29, 2) != 0 { return }
      i.ra = UInt8(field(word, 10, 5))
      let o0 = field(word, 15, 1)
      let operation: DataProcessing3
      switch (field(word, 21, 3), o0) {
      case (0, 0): operation = .madd
      case (0, 1): operation = .msub
      case (1, 0) where sf == 1: operation = .smaddl
      case (1, 1) where sf == 1: operation = .smsubl
      case (2, 0) where sf == 1: operation = .smulh
      case (5, 0) where sf == 1: operation = .umaddl
      case (5, 1) where sf == 1: operation = .umsubl
      case (6, 0) where sf == 1: operation = .umulh
      default: return
      }
      i.operation = .dataProcessing3
      i.variant = operation.rawValue
    }
  }
}
