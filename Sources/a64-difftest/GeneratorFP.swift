/// Scalar floating-point instructions and SIMD&FP loads and stores (ARM ARM C4.1.96, C4.1.88),
/// with random fields; `fpFormat` tells the harness which format to fill V0-V31 with.
enum GeneratorFP {
  static let families = [
    "fp data processing 1", "fp data processing 2", "fp data processing 3", "fp compare", "fp conditional compare",
    "fp conditional select", "fp move immediate", "fp/integer conversion", "fp/fixed-point conversion",
    "simd&fp load/store", "simd&fp load/store pair", "simd&fp load literal",
  ]

  /// S or D (ftype 00 or 01), the formats of ARMv8.0's arithmetic.
  static func ftype(_ r: inout SeededRandom) -> UInt32 { r.bit() }
  static func format(_ ftype: UInt32) -> UInt8 { ftype == 0 ? 2 : ftype == 1 ? 3 : 1 }

  static func make(_ family: Int, _ r: inout SeededRandom) -> TestCase? {
    let (rd, rn, rm, ra) = (r.field(5), r.field(5), r.field(5), r.field(5))
    let type = ftype(&r)
    let name = families[family]
    func fp(_ word: UInt32, _ ftype: UInt32 = type) -> TestCase {
      TestCase(word: word, family: name, fpFormat: format(ftype))
    }
    switch family {
    case 0:
      // FMOV, FABS, FNEG, FSQRT, FCVT (to S, D, H), FRINTN/P/M/Z/A/X/I; FCVT from H too.
      var ftype = type
      var opcode: UInt32 = [0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 14, 15][Int(r.below(14))]
      if r.below(6) == 0 {
        ftype = 3
        opcode = 4 + r.bit()
      }
      return fp(0x1e20_4000 | ftype << 22 | opcode << 15 | rn << 5 | rd, ftype)
    case 1:
      return fp(0x1e20_0800 | type << 22 | rm << 16 | UInt32(r.below(9)) << 12 | rn << 5 | rd)
    case 2:
      return fp(0x1f00_0000 | type << 22 | r.bit() << 21 | rm << 16 | r.bit() << 15 | ra << 10 | rn << 5 | rd)
    case 3:
      return fp(0x1e20_2000 | type << 22 | rm << 16 | rn << 5 | r.field(2) << 3)
    case 4:
      return fp(0x1e20_0400 | type << 22 | rm << 16 | r.field(4) << 12 | rn << 5 | r.bit() << 4 | r.field(4))
    case 5:
      return fp(0x1e20_0c00 | type << 22 | rm << 16 | r.field(4) << 12 | rn << 5 | rd)
    case 6:
      return fp(0x1e20_1000 | type << 22 | r.field(8) << 13 | rd)
    case 7:
      // FCVT[NPMZ][SU], SCVTF, UCVTF, FCVTA[SU], FMOV (general) W/S, X/D, X/V.D[1].
      let sf = r.bit()
      let (xd, xn) = (Generator.register(&r), Generator.register(&r))
      switch r.below(4) {
      case 0, 1:
        let opcode = r.bit()
        return fp(sf << 31 | 0x1e20_0000 | type << 22 | r.field(2) << 19 | opcode << 16 | rn << 5 | xd)
      case 2:
        let opcode = UInt32(r.below(4)) + 2
        let toFP = opcode == 2 || opcode == 3
        return fp(sf << 31 | 0x1e20_0000 | type << 22 | opcode << 16 | (toFP ? xn : rn) << 5 | (toFP ? rd : xd))
      default:
        let toGeneral = r.bit() == 0
        let (ftype, rmode): (UInt32, UInt32) = sf == 0 ? (0, 0) : r.bit() == 0 ? (1, 0) : (2, 1)
        let opcode: UInt32 = toGeneral ? 6 : 7
        return fp(
          sf << 31 | 0x1e20_0000 | ftype << 22 | rmode << 19 | opcode << 16 | (toGeneral ? rn : xn) << 5
            | (toGeneral ? xd : rd), ftype == 2 ? 3 : ftype)
      }
    case 8:
      // SCVTF, UCVTF, FCVTZS, FCVTZU with 1-64 (X) or 1-32 (W) fraction bits.
      let sf = r.bit()
      let scale = sf == 1 ? r.field(6) : 32 + r.field(5)
      let (xd, xn) = (Generator.register(&r), Generator.register(&r))
      let (rmode, opcode): (UInt32, UInt32) = [(0, 2), (0, 3), (3, 0), (3, 1)][Int(r.below(4))]
      let toFP = rmode == 0
      return fp(
        sf << 31 | 0x1e00_0000 | type << 22 | rmode << 19 | opcode << 16 | scale << 10 | (toFP ? xn : rn) << 5
          | (toFP ? rd : xd))
    case 9: return loadStore(&r, rt: rd)
    case 10: return pair(&r, rt: rd, rt2: rm)
    default:
      // LDR (literal) S, D, Q: up to 1000 instructions either way, inside the program's code.
      let offset = Int32(r.below(2001)) - 1000
      return TestCase(
        word: UInt32(r.below(3)) << 30 | 0b011100 << 24 | (UInt32(bitPattern: offset) & 0x7ffff) << 5 | rd,
        family: name)
    }
  }

  /// LDR/STR B, H, S, D, Q: unsigned offset, unscaled, pre- and post-index, register offset.
  static func loadStore(_ r: inout SeededRandom, rt: UInt32) -> TestCase {
    // (size, opc high bit): B H S D, then Q (size 00, opc 1x).
    let q = r.below(5) == 0
    let size: UInt32 = q ? 0 : r.field(2)
    let opc: UInt32 = (q ? 2 : 0) | r.bit()
    let bytes = q ? 16 : 1 << Int(size)
    let base = Generator.baseRegister(&r)
    let name = "simd&fp load/store"
    switch r.below(3) {
    case 0:
      let imm12 = UInt32(r.below(UInt64(48 / bytes + 1)))
      return TestCase(
        word: size << 30 | 0b111101 << 24 | opc << 22 | imm12 << 10 | base << 5 | rt, family: name, base: UInt8(base))
    case 1:
      let mode: UInt32 = [0, 1, 3][Int(r.below(3))]
      let offset = Int32(r.below(113)) - 64
      return TestCase(
        word: size << 30 | 0b111100 << 24 | opc << 22 | (UInt32(bitPattern: offset) & 0x1ff) << 12 | mode << 10 | base
          << 5 | rt, family: name, base: UInt8(base))
    default:
      let option: UInt32 = [2, 3, 6, 7][Int(r.below(4))]
      var index = Generator.register(&r)
      if index == 31 || index == base { index = base == 0 ? 1 : 0 }
      return TestCase(
        word: size << 30 | 0b111100 << 24 | opc << 22 | 1 << 21 | index << 16 | option << 13 | r.bit() << 12 | 0b10
          << 10 | base << 5 | rt, family: name, base: UInt8(base), index: UInt8(index))
    }
  }

  /// LDP/STP S, D, Q: offset, pre- and post-index; a load of one register twice is
  /// CONSTRAINED UNPREDICTABLE and not generated.
  static func pair(_ r: inout SeededRandom, rt: UInt32, rt2: UInt32) -> TestCase? {
    let opc = UInt32(r.below(3))
    let load = r.bit()
    if load == 1 && rt == rt2 { return nil }
    let mode: UInt32 = [1, 2, 3][Int(r.below(3))]
    let base = Generator.baseRegister(&r)
    let scale = Int32(4 << opc)
    let imm7 = Int32(r.below(UInt64(96 / scale + 1))) - 64 / scale
    return TestCase(
      word: opc << 30 | 0b101 << 27 | 1 << 26 | mode << 23 | load << 22 | (UInt32(bitPattern: imm7) & 0x7f) << 15
        | rt2 << 10 | base << 5 | rt, family: "simd&fp load/store pair", base: UInt8(base))
  }
}

/// Floating-point operands that find the edges: zeros, infinities, quiet and signalling NaNs
/// with payloads, denormals, the smallest and largest normals, small integers and halves,
/// the integer conversions' limits, and numbers of nearby exponents (whose sums round).
enum FPValues {
  static func random(_ formatRaw: UInt8, _ r: inout SeededRandom) -> UInt64 {
    let (exponentBits, fractionBits): (Int, Int) = formatRaw == 1 ? (5, 10) : formatRaw == 2 ? (8, 23) : (11, 52)
    let bias = (1 << (exponentBits - 1)) - 1
    let maxExponent = UInt64((1 << exponentBits) - 1)
    let fractionMask: UInt64 = (1 << UInt64(fractionBits)) - 1
    let sign = r.next() & 1
    let fraction = r.next() & fractionMask
    func make(_ exponent: UInt64, _ fraction: UInt64) -> UInt64 {
      sign << UInt64(exponentBits + fractionBits) | exponent << UInt64(fractionBits) | fraction & fractionMask
    }
    func near(_ exponent: Int) -> UInt64 {
      // The power of two, or a few units in the last place either side of it.
      let e = UInt64(max(1, min(Int(maxExponent) - 1, exponent + bias)))
      switch r.below(3) {
      case 0: return make(e, 0)
      case 1: return make(e, r.below(4))
      default: return make(e - 1, fractionMask - r.below(4))
      }
    }
    switch r.below(16) {
    case 0: return make(0, 0)
    case 1: return make(maxExponent, 0)
    case 2: return make(maxExponent, fraction | 1 << UInt64(fractionBits - 1))
    case 3: return make(maxExponent, (fraction & (fractionMask >> 1)) | 1)
    case 4: return make(0, fraction == 0 ? 1 : fraction)
    case 5: return make(1, fraction)
    case 6: return make(maxExponent - 1, fraction)
    case 7: return r.next()
    case 8, 9:
      // k/4 for small k: halves and ties for FRINT and the conversions.
      let k = Int(r.below(81)) - 40
      let value = Double(k) / 4
      switch formatRaw {
      case 3: return value.bitPattern
      case 2: return UInt64(Float(value).bitPattern)
      default: return UInt64(Float16Bits.from(value))
      }
    case 10: return near([31, 32, 63, 64, 15, 16][Int(r.below(6))])
    case 11: return near(0)
    case 12: return near(1 - bias + Int(r.below(UInt64(fractionBits + 2))) - fractionBits)
    default:
      // Nearby exponents: sums and products that round, cancel or carry.
      let e = UInt64(bias) + r.below(8) - 4
      return make(e, fraction)
    }
  }
}

/// Half-precision bits for small exact values (k/4, |k| <= 40), without Float16 (which the
/// x86-64 Swift toolchain leaves out on some hosts).
enum Float16Bits {
  static func from(_ value: Double) -> UInt16 {
    if value == 0 { return value.sign == .minus ? 0x8000 : 0 }
    let sign: UInt16 = value < 0 ? 0x8000 : 0
    var magnitude = abs(value)
    var exponent = 0
    while magnitude >= 2 {
      magnitude /= 2
      exponent += 1
    }
    while magnitude < 1 {
      magnitude *= 2
      exponent -= 1
    }
    let fraction = UInt16((magnitude - 1) * 1024)
    return sign | UInt16(exponent + 15) << 10 | fraction
  }
}

/// Advanced SIMD vector instructions: random words inside each encoding group (C4.1.96),
/// so every opcode, size and Q the decoder accepts is reached (what it calls UNDEFINED is
/// skipped by the harness); FP-capable groups get FP operands in every lane.
enum GeneratorSIMD {
  static let families = [
    "simd three same", "simd two-register misc", "simd across lanes", "simd copy", "simd modified immediate",
    "simd shift immediate", "simd permute", "simd extract", "simd table lookup", "simd load/store multiple",
    "simd three different", "simd scalar", "simd load/store single", "simd by element",
  ]

  static func make(_ family: Int, _ r: inout SeededRandom) -> TestCase? {
    let (rd, rn, rm) = (r.field(5), r.field(5), r.field(5))
    let (q, u, size) = (r.bit(), r.bit(), r.field(2))
    let name = families[family]
    let lanes: UInt8 = size & 1 == 0 ? 2 : 3
    switch family {
    case 0:
      let opcode = r.field(5)
      return TestCase(
        word: q << 30 | u << 29 | 0b01110 << 24 | size << 22 | 1 << 21 | rm << 16 | opcode << 11 | 1 << 10 | rn << 5
          | rd, family: name, fpFormat: opcode >= 0b11000 ? lanes : nil, fpLanes: true)
    case 1:
      let opcode = r.field(5)
      let fp = opcode >= 0b11000 || opcode == 0b01111 || opcode == 0b10110
      return TestCase(
        word: q << 30 | u << 29 | 0b01110 << 24 | size << 22 | 0b10000 << 17 | opcode << 12 | 0b10 << 10 | rn << 5
          | rd, family: name, fpFormat: fp ? (opcode == 0b11101 && size < 2 ? nil : lanes) : nil, fpLanes: true)
    case 2:
      let opcode = r.field(5)
      let fp = u == 1 && (opcode == 0b01100 || opcode == 0b01111)
      return TestCase(
        word: q << 30 | u << 29 | 0b01110 << 24 | size << 22 | 0b11000 << 17 | opcode << 12 | 0b10 << 10 | rn << 5
          | rd, family: name, fpFormat: fp ? 2 : nil, fpLanes: true)
    case 3:
      return TestCase(
        word: q << 30 | u << 29 | 0b01110000 << 21 | r.field(5) << 16 | r.field(4) << 11 | 1 << 10 | rn << 5
          | (u == 0 && r.bit() == 0 ? Generator.register(&r) : rd), family: name)
    case 4:
      return TestCase(
        word: q << 30 | u << 29 | 0b01_11100000 << 19 | r.field(3) << 16 | r.field(4) << 12 | 1 << 10 | r.field(5)
          << 5 | rd, family: name)
    case 5:
      var immh = r.field(4)
      if immh == 0 { immh = 1 }
      let opcode = r.below(4) == 0 ? 0b11111 : r.field(5)
      return TestCase(
        word: q << 30 | u << 29 | 0b011110 << 23 | immh << 19 | r.field(3) << 16 | opcode << 11 | 1 << 10 | rn << 5
          | rd, family: name, fpFormat: opcode == 0b11111 ? (immh >= 8 ? 3 : 2) : nil, fpLanes: true)
    case 6:
      return TestCase(
        word: q << 30 | 0b001110 << 24 | size << 22 | rm << 16 | r.field(3) << 12 | 0b10 << 10 | rn << 5 | rd,
        family: name)
    case 7:
      return TestCase(word: q << 30 | 0b101110 << 24 | rm << 16 | r.field(4) << 11 | rn << 5 | rd, family: name)
    case 8:
      return TestCase(
        word: q << 30 | 0b001110 << 24 | rm << 16 | r.field(2) << 13 | r.bit() << 12 | rn << 5 | rd, family: name)
    case 10:
      return TestCase(
        word: q << 30 | u << 29 | 0b01110 << 24 | size << 22 | 1 << 21 | rm << 16 | r.field(4) << 12 | rn << 5 | rd,
        family: name)
    case 11:
      // The scalar groups: three same, two-register misc, pairwise, copy, shift by immediate.
      let opcode = r.field(5)
      let fp: UInt8? = opcode >= 0b11000 || opcode >> 2 == 0b011 ? lanes : nil
      switch r.below(5) {
      case 0:
        return TestCase(
          word: 1 << 30 | u << 29 | 0b11110 << 24 | size << 22 | 1 << 21 | rm << 16 | opcode << 11 | 1 << 10 | rn << 5
            | rd, family: name, fpFormat: fp, fpLanes: true)
      case 1:
        return TestCase(
          word: 1 << 30 | u << 29 | 0b11110 << 24 | size << 22 | 0b10000 << 17 | opcode << 12 | 0b10 << 10 | rn << 5
            | rd, family: name, fpFormat: opcode == 0b11101 ? nil : fp, fpLanes: true)
      case 2:
        let pairwise = [0b11011, 0b01101, 0b01100, 0b01111][Int(r.below(4))] as UInt32
        let format: UInt8? = pairwise == 0b11011 ? nil : size & 1 == 0 ? 2 : 3
        return TestCase(
          word: 1 << 30 | u << 29 | 0b11110 << 24 | size << 22 | 0b11000 << 17 | pairwise << 12 | 0b10 << 10 | rn << 5
            | rd, family: name, fpFormat: format, fpLanes: true)
      case 3:
        return TestCase(word: 0x5e00_0400 | r.field(5) << 16 | rn << 5 | rd, family: name)
      default:
        let immh = max(r.field(4), 1)
        let shiftOpcodes: [UInt32] = [
          0b00000, 0b00010, 0b01010, 0b01000, 0b11100, 0b11111, 0b00100, 0b00110, 0b10010, 0b10011, 0b10000, 0b10001,
          0b01110, 0b01100,
        ]
        let shiftOpcode = shiftOpcodes[Int(r.below(UInt64(shiftOpcodes.count)))]
        return TestCase(
          word: 1 << 30 | u << 29 | 0b111110 << 23 | immh << 19 | r.field(3) << 16 | shiftOpcode << 11 | 1 << 10 | rn
            << 5 | rd, family: name, fpFormat: shiftOpcode == 0b11111 ? (immh >= 8 ? 3 : 2) : nil, fpLanes: true)
      }
    case 12:
      // LD1-4/ST1-4 (single structure), LD1R-LD4R: at most 32 bytes from the buffer's middle.
      let base = Generator.baseRegister(&r)
      let fields = r.field(3) << 13 | r.bit() << 12 | size << 10 | r.bit() << 21 | r.bit() << 22
      if r.bit() == 0 {
        return TestCase(word: q << 30 | 0b0011010 << 23 | fields | base << 5 | rd, family: name, base: UInt8(base))
      }
      var index = r.below(3) == 0 ? 31 : Generator.register(&r)
      if index == base && index != 31 { index = base == 0 ? 1 : 0 }
      return TestCase(
        word: q << 30 | 0b0011011 << 23 | fields | index << 16 | base << 5 | rd, family: name, base: UInt8(base),
        index: index == 31 ? nil : UInt8(index))
    case 13:
      // Vector and scalar by element: the FP opcodes get FP operands in every lane.
      let opcode = r.field(4)
      let scalar = r.below(4) == 0
      let fp = u == 0 && (opcode == 0b0001 || opcode == 0b0101 || opcode == 0b1001) || u == 1 && opcode == 0b1001
      return TestCase(
        word: (scalar ? 1 << 30 | 1 << 28 : q << 30) | u << 29 | 0b01111 << 24 | size << 22 | r.field(2) << 20 | rm
          << 16 | opcode << 12 | r.bit() << 11 | rn << 5 | rd, family: name, fpFormat: fp ? lanes : nil, fpLanes: true)
    default:
      // LD1-4/ST1-4 (multiple structures), no offset or post-indexed by the bytes moved or
      // by a register holding 0-7; at most 64 bytes from the buffer's middle.
      let base = Generator.baseRegister(&r)
      let opcode: UInt32 = [0b0000, 0b0010, 0b0100, 0b0110, 0b0111, 0b1000, 0b1010][Int(r.below(7))]
      let load = r.bit()
      if r.bit() == 0 {
        return TestCase(
          word: q << 30 | 0b0011000 << 23 | load << 22 | opcode << 12 | size << 10 | base << 5 | rd, family: name,
          base: UInt8(base))
      }
      var index = r.below(3) == 0 ? 31 : Generator.register(&r)
      if index == base && index != 31 { index = base == 0 ? 1 : 0 }
      return TestCase(
        word: q << 30 | 0b0011001 << 23 | load << 22 | index << 16 | opcode << 12 | size << 10 | base << 5 | rd,
        family: name, base: UInt8(base), index: index == 31 ? nil : UInt8(index))
    }
  }
}
