import AArch64

/// SplitMix64: a seeded generator, so a run replays from its seed.
struct SeededRandom {
  var state: UInt64
  mutating func next() -> UInt64 {
    state &+= 0x9e37_79b9_7f4a_7c15
    var z = state
    z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
    z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
    return z ^ (z >> 31)
  }
  mutating func below(_ bound: UInt64) -> UInt64 { next() % bound }
  mutating func bit() -> UInt32 { UInt32(next() & 1) }
  mutating func field(_ bits: Int) -> UInt32 { UInt32(truncatingIfNeeded: next()) & ((1 << UInt32(bits)) - 1) }
}

/// One generated case: the instruction and what its operands need from the starting state.
struct TestCase {
  var word: UInt32
  var family: String
  /// A register holding the base address of a memory access (31: SP), set to the case's
  /// buffer; an index register, set to a small value.
  var base: UInt8?
  var index: UInt8?
  /// The floating-point format (1 half, 2 single, 3 double) of V0-V31's low bits; nil for
  /// random 128-bit values.
  var fpFormat: UInt8? = nil
  /// Whether every lane of V0-V31, not only the lowest, gets a value of `fpFormat`.
  var fpLanes = false
}

/// Instructions from the A64 encoding index (ARM ARM C4.1), by family, with random fields:
/// every form the decoder implements outside branches, system instructions and exclusives
/// (whose pairs a single instruction cannot show). Register 29 is the harness's and never
/// appears; memory accesses stay inside the case's 128-byte buffer.
enum Generator {
  static let families =
    [
      "add/sub immediate", "logical immediate", "move wide", "bitfield", "extract", "adr/adrp", "logical shifted",
      "add/sub shifted", "add/sub extended", "add/sub carry", "conditional compare", "conditional select",
      "data processing 1", "data processing 2", "data processing 3", "load/store unsigned offset",
      "load/store pre/post/unscaled", "load/store register offset", "load/store pair", "load-acquire/store-release",
    ] + GeneratorFP.families + GeneratorSIMD.families
  static let integerFamilies = 20

  /// A register other than 29 (31 is ZR or SP depending on the position).
  static func register(_ r: inout SeededRandom) -> UInt32 {
    while true {
      let n = r.field(5)
      if n != 29 { return n }
    }
  }

  /// A base register for a memory access: 0-28 or 31 (SP).
  static func baseRegister(_ r: inout SeededRandom) -> UInt32 {
    let n = r.field(5)
    return n >= 29 ? 31 : n
  }

  static func make(_ family: Int, _ r: inout SeededRandom) -> TestCase? {
    if family >= integerFamilies + GeneratorFP.families.count {
      return GeneratorSIMD.make(family - integerFamilies - GeneratorFP.families.count, &r)
    }
    if family >= integerFamilies { return GeneratorFP.make(family - integerFamilies, &r) }
    let sf = r.bit()
    let (rd, rn, rm, ra) = (register(&r), register(&r), register(&r), register(&r))
    switch family {
    case 0:
      return TestCase(
        word: sf << 31 | r.bit() << 30 | r.bit() << 29 | 0b100010 << 23 | r.bit() << 22 | r.field(12) << 10 | rn << 5
          | rd, family: "add/sub immediate")
    case 1:
      let n = sf == 1 ? r.bit() : 0
      return TestCase(
        word: sf << 31 | r.field(2) << 29 | 0b100100 << 23 | n << 22 | r.field(6) << 16 | r.field(6) << 10 | rn << 5
          | rd, family: "logical immediate")
    case 2:
      let opc: UInt32 = [0, 2, 3][Int(r.below(3))]
      let hw = sf == 1 ? r.field(2) : r.field(1)
      return TestCase(
        word: sf << 31 | opc << 29 | 0b100101 << 23 | hw << 21 | r.field(16) << 5 | rd, family: "move wide")
    case 3:
      let width: UInt32 = sf == 1 ? 64 : 32
      let opc = UInt32(r.below(3))
      return TestCase(
        word: sf << 31 | opc << 29 | 0b100110 << 23 | sf << 22 | UInt32(r.below(UInt64(width))) << 16 | UInt32(
          r.below(UInt64(width))) << 10 | rn << 5 | rd, family: "bitfield")
    case 4:
      let width: UInt64 = sf == 1 ? 64 : 32
      return TestCase(
        word: sf << 31 | 0b00100111 << 23 | sf << 22 | rm << 16 | UInt32(r.below(width)) << 10 | rn << 5 | rd,
        family: "extract")
    case 5:
      return TestCase(
        word: r.bit() << 31 | r.field(2) << 29 | 0b10000 << 24 | r.field(19) << 5 | rd, family: "adr/adrp")
    case 6:
      let imm6 = sf == 1 ? r.field(6) : r.field(5)
      return TestCase(
        word: sf << 31 | r.field(2) << 29 | 0b01010 << 24 | r.field(2) << 22 | r.bit() << 21 | rm << 16 | imm6 << 10
          | rn << 5 | rd, family: "logical shifted")
    case 7:
      let imm6 = sf == 1 ? r.field(6) : r.field(5)
      return TestCase(
        word: sf << 31 | r.bit() << 30 | r.bit() << 29 | 0b01011 << 24 | UInt32(r.below(3)) << 22 | rm << 16 | imm6
          << 10 | rn << 5 | rd, family: "add/sub shifted")
    case 8:
      return TestCase(
        word: sf << 31 | r.bit() << 30 | r.bit() << 29 | 0b01011001 << 21 | rm << 16 | r.field(3) << 13 | UInt32(
          r.below(5)) << 10 | rn << 5 | rd, family: "add/sub extended")
    case 9:
      return TestCase(
        word: sf << 31 | r.bit() << 30 | r.bit() << 29 | 0b11010000 << 21 | rm << 16 | rn << 5 | rd,
        family: "add/sub carry")
    case 10:
      return TestCase(
        word: sf << 31 | r.bit() << 30 | 1 << 29 | 0b11010010 << 21 | r.field(5) << 16 | r.field(4) << 12 | r.bit()
          << 11 | rn << 5 | r.field(4), family: "conditional compare")
    case 11:
      return TestCase(
        word: sf << 31 | r.bit() << 30 | 0b11010100 << 21 | rm << 16 | r.field(4) << 12 | r.bit() << 10 | rn << 5 | rd,
        family: "conditional select")
    case 12:
      let opcode = UInt32(r.below(6))
      if sf == 0 && opcode == 3 { return nil }
      return TestCase(
        word: sf << 31 | 1 << 30 | 0b11010110 << 21 | opcode << 10 | rn << 5 | rd, family: "data processing 1")
    case 13:
      let opcode: UInt32 = [2, 3, 8, 9, 10, 11][Int(r.below(6))]
      return TestCase(
        word: sf << 31 | 0b11010110 << 21 | rm << 16 | opcode << 10 | rn << 5 | rd, family: "data processing 2")
    case 14:
      let choices: [(UInt32, UInt32)] =
        sf == 1 ? [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (5, 0), (5, 1), (6, 0)] : [(0, 0), (0, 1)]
      let (op31, o0) = choices[Int(r.below(UInt64(choices.count)))]
      return TestCase(
        word: sf << 31 | 0b11011 << 24 | op31 << 21 | rm << 16 | o0 << 15 | ra << 10 | rn << 5 | rd,
        family: "data processing 3")
    case 15, 16, 17:
      return loadStore(family, &r)
    case 18:
      return pair(&r)
    default:
      let size = r.field(2)
      let base = baseRegister(&r)
      let load = r.bit()
      var rt = register(&r)
      if rt == 31 { rt = 0 }
      return TestCase(
        word: size << 30 | 0b001000 << 24 | 1 << 23 | load << 22 | 0b11111 << 16 | 1 << 15 | 0b11111 << 10 | base << 5
          | rt, family: "load-acquire/store-release", base: UInt8(base))
    }
  }

  /// Single-register loads and stores, integer registers only (FP is not implemented).
  static func loadStore(_ family: Int, _ r: inout SeededRandom) -> TestCase? {
    let size = r.field(2)
    // opc: 0 store, 1 load, 2 load signed to 64 (PRFM at size 3), 3 load signed to 32 (sizes 0-1).
    let opc = r.field(2)
    if opc == 3 && size >= 2 || opc == 2 && size == 3 { return nil }
    let base = baseRegister(&r)
    let rt = register(&r)
    let bytes = UInt32(1) << size
    switch family {
    case 15:
      // Unsigned offset, scaled: 0 to 56 bytes past the base, inside the buffer.
      let imm12 = UInt32(r.below(UInt64(56 / bytes + 1)))
      return TestCase(
        word: size << 30 | 0b111001 << 24 | opc << 22 | imm12 << 10 | base << 5 | rt,
        family: "load/store unsigned offset", base: UInt8(base))
    case 16:
      // imm9 in -64...56; 00 unscaled, 01 post-index, 11 pre-index. Write-back with Rt = Rn is
      // CONSTRAINED UNPREDICTABLE: not generated.
      let mode: UInt32 = [0, 1, 3][Int(r.below(3))]
      if mode != 0 && rt == base { return nil }
      let offset = Int32(r.below(121)) - 64
      return TestCase(
        word: size << 30 | 0b111000 << 24 | opc << 22 | (UInt32(bitPattern: offset) & 0x1ff) << 12 | mode << 10 | base
          << 5 | rt, family: "load/store pre/post/unscaled", base: UInt8(base))
    default:
      // Register offset: UXTW, LSL, SXTW or SXTX, scaled or not; the index holds 0-7.
      let option: UInt32 = [2, 3, 6, 7][Int(r.below(4))]
      var index = register(&r)
      if index == 31 || index == base { index = base == 0 ? 1 : 0 }
      return TestCase(
        word: size << 30 | 0b111000 << 24 | opc << 22 | 1 << 21 | index << 16 | option << 13 | r.bit() << 12 | 0b10
          << 10 | base << 5 | rt, family: "load/store register offset", base: UInt8(base), index: UInt8(index))
    }
  }

  /// LDP, STP, LDPSW (integer): offset, pre-index, post-index; imm7 keeps both elements
  /// inside the buffer; a load into the same register twice, or write-back into a
  /// transferred register, is CONSTRAINED UNPREDICTABLE and not generated.
  static func pair(_ r: inout SeededRandom) -> TestCase? {
    let opc: UInt32 = [0, 1, 2][Int(r.below(3))]
    let load = opc == 1 ? 1 : r.bit()
    let mode: UInt32 = [1, 2, 3][Int(r.below(3))]
    let base = baseRegister(&r)
    let (rt, rt2) = (register(&r), register(&r))
    if load == 1 && rt == rt2 && rt != 31 { return nil }
    if mode != 2 && (rt == base || rt2 == base) { return nil }
    let scale: Int32 = opc == 2 ? 8 : 4
    let imm7 = Int32(r.below(UInt64(112 / scale + 1))) - 64 / scale
    return TestCase(
      word: opc << 30 | 0b101 << 27 | mode << 23 | load << 22 | (UInt32(bitPattern: imm7) & 0x7f) << 15 | rt2 << 10
        | base << 5 | rt, family: "load/store pair", base: UInt8(base))
  }
}
