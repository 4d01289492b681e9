import HostCPU

/// x87 forms (SDM Vol. 2, appendix A.4): loads, stores, arithmetic in every operand form,
/// compares, FCMOVcc, FXCH/FFREE, the D9 E0-FF group without the transcendentals (whose
/// results the SDM does not define bit for bit), FNSTSW/FNSTCW/FLDCW, FNINIT/FNCLEX, FWAIT.
/// FNSTENV/FLDENV/FNSAVE/FRSTOR are left out: their images hold FIP/FDP/FCS/FDS, which the
/// host fills in ways the model does not track.
extension InstructionForm {
  static func x87(_ mnemonic: String, _ opcode: [UInt8], digit: UInt8? = nil, access: Int = 0, memory: Bool)
    -> InstructionForm
  {
    var form =
      digit == nil && !memory
      ? InstructionForm(mnemonic, opcode, .none, .none)
      : InstructionForm(mnemonic, opcode, .none, .modrm(digit: digit), memoryOnly: memory, registerOnly: !memory)
    form.vectorAccess = access
    form.x87 = true
    return form
  }

  public static let x87Forms: [InstructionForm] = {
    var forms: [InstructionForm] = []
    let arithmetic = ["fadd", "fmul", "fcom", "fcomp", "fsub", "fsubr", "fdiv", "fdivr"]
    for (digit, name) in arithmetic.enumerated() {
      let d = UInt8(digit)
      forms.append(.x87(name, [0xd8], digit: d, access: 4, memory: true))
      forms.append(.x87(name, [0xdc], digit: d, access: 8, memory: true))
      forms.append(.x87("fi" + name.dropFirst(), [0xda], digit: d, access: 4, memory: true))
      forms.append(.x87("fi" + name.dropFirst(), [0xde], digit: d, access: 2, memory: true))
      forms.append(.x87(name, [0xd8], digit: d, memory: false))
      if digit != 2 && digit != 3 {
        forms.append(.x87(name, [0xdc], digit: d, memory: false))
        forms.append(.x87(name + "p", [0xde], digit: d, memory: false))
      }
    }
    forms += [
      .x87("fld", [0xd9], digit: 0, access: 4, memory: true), .x87("fld", [0xdd], digit: 0, access: 8, memory: true),
      .x87("fld", [0xdb], digit: 5, access: 10, memory: true), .x87("fild", [0xdf], digit: 0, access: 2, memory: true),
      .x87("fild", [0xdb], digit: 0, access: 4, memory: true), .x87("fild", [0xdf], digit: 5, access: 8, memory: true),
      .x87("fst", [0xd9], digit: 2, access: 4, memory: true), .x87("fstp", [0xd9], digit: 3, access: 4, memory: true),
      .x87("fst", [0xdd], digit: 2, access: 8, memory: true), .x87("fstp", [0xdd], digit: 3, access: 8, memory: true),
      .x87("fstp", [0xdb], digit: 7, access: 10, memory: true),
      .x87("fist", [0xdf], digit: 2, access: 2, memory: true), .x87("fistp", [0xdf], digit: 3, access: 2, memory: true),
      .x87("fist", [0xdb], digit: 2, access: 4, memory: true), .x87("fistp", [0xdb], digit: 3, access: 4, memory: true),
      .x87("fistp", [0xdf], digit: 7, access: 8, memory: true),
      .x87("fldcw", [0xd9], digit: 5, access: 2, memory: true),
      .x87("fnstcw", [0xd9], digit: 7, access: 2, memory: true),
      .x87("fnstsw", [0xdd], digit: 7, access: 2, memory: true),
      .x87("fld", [0xd9], digit: 0, memory: false), .x87("fxch", [0xd9], digit: 1, memory: false),
      .x87("ffree", [0xdd], digit: 0, memory: false), .x87("fst", [0xdd], digit: 2, memory: false),
      .x87("fstp", [0xdd], digit: 3, memory: false), .x87("fucom", [0xdd], digit: 4, memory: false),
      .x87("fucomp", [0xdd], digit: 5, memory: false), .x87("fucomi", [0xdb], digit: 5, memory: false),
      .x87("fcomi", [0xdb], digit: 6, memory: false), .x87("fucomip", [0xdf], digit: 5, memory: false),
      .x87("fcomip", [0xdf], digit: 6, memory: false),
    ]
    for (digit, name) in ["fcmovb", "fcmove", "fcmovbe", "fcmovu"].enumerated() {
      forms.append(.x87(name, [0xda], digit: UInt8(digit), memory: false))
      forms.append(.x87("fcmovn" + name.dropFirst(5), [0xdb], digit: UInt8(digit), memory: false))
    }
    let fixed: [(String, [UInt8])] = [
      ("fchs", [0xd9, 0xe0]), ("fabs", [0xd9, 0xe1]), ("ftst", [0xd9, 0xe4]), ("fxam", [0xd9, 0xe5]),
      ("fld1", [0xd9, 0xe8]), ("fldl2t", [0xd9, 0xe9]), ("fldl2e", [0xd9, 0xea]), ("fldpi", [0xd9, 0xeb]),
      ("fldlg2", [0xd9, 0xec]), ("fldln2", [0xd9, 0xed]), ("fldz", [0xd9, 0xee]), ("fxtract", [0xd9, 0xf4]),
      ("fprem1", [0xd9, 0xf5]), ("fdecstp", [0xd9, 0xf6]), ("fincstp", [0xd9, 0xf7]), ("fprem", [0xd9, 0xf8]),
      ("fsqrt", [0xd9, 0xfa]), ("frndint", [0xd9, 0xfc]), ("fscale", [0xd9, 0xfd]), ("fnop", [0xd9, 0xd0]),
      ("fcompp", [0xde, 0xd9]), ("fucompp", [0xda, 0xe9]), ("fnclex", [0xdb, 0xe2]), ("fninit", [0xdb, 0xe3]),
      ("fnstsw", [0xdf, 0xe0]), ("fwait", [0x9b]),
    ]
    for (name, bytes) in fixed { forms.append(.x87(name, bytes, memory: false)) }
    return forms
  }()
}

extension CaseBuilder {
  /// An 80-bit register image: zeros, ones, infinities, NaNs, denormals, the extremes, values
  /// that convert exactly or not to single/double and integers, or random normal numbers.
  mutating func x87Value() -> (UInt64, UInt16) {
    let sign: UInt16 = random.chance(50) ? 0x8000 : 0
    switch Int.random(in: 0..<10, using: &random) {
    case 0: return (0, sign)
    case 1: return (0x8000_0000_0000_0000, sign | 0x3fff)  // ±1
    case 2: return (0x8000_0000_0000_0000, sign | 0x7fff)  // ±∞
    case 3: return (0xc000_0000_0000_0000 | random.next() >> 20, sign | 0x7fff)  // QNaN
    case 4: return (0x8000_0000_0000_0000 | (random.next() >> 2 | 1), sign | 0x7fff)  // SNaN
    case 5: return (random.next() >> 1, sign)  // denormal
    case 6:
      return (0x8000_0000_0000_0000 | random.next() << 40, sign | UInt16.random(in: 0x3ff0...0x4040, using: &random))
    case 7:
      return (
        0x8000_0000_0000_0000 | random.next(), sign | random.pick([0x0001, 0x7ffe, 0x3f81, 0x407e, 0x3c01, 0x43fe])
      )
    default: return (0x8000_0000_0000_0000 | random.next(), sign | UInt16.random(in: 0x3f00...0x4100, using: &random))
    }
  }

  mutating func randomizeX87State() {
    var image = state.fxsave
    func put(_ value: UInt64, _ offset: Int, _ count: Int) {
      for i in 0..<count { image[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
    }
    // FCW: 64-bit precision (precision control is not modelled), any rounding, mostly masked.
    var fcw: UInt64 = 0x037f | UInt64.random(in: 0...3, using: &random) << 10
    if random.chance(10) { fcw &= ~(random.next() & 0x3f) }
    // FSW: any TOP and condition codes; now and then exception flags, with ES and B as they follow.
    var fsw = UInt64.random(in: 0...7, using: &random) << 11 | (random.next() & 0x4700)
    if random.chance(10) { fsw |= random.next() & 0x7f }
    if fsw & ~fcw & 0x3f != 0 { fsw |= 0x8080 }
    put(fcw, 0, 2)
    put(fsw, 2, 2)
    image[4] = UInt8(truncatingIfNeeded: random.chance(15) ? 0xff : random.next() | random.next())
    for index in 0..<8 {
      let (significand, signExponent) = x87Value()
      put(significand, 32 + 16 * index, 8)
      put(UInt64(signExponent), 40 + 16 * index, 2)
    }
    state.fxsave = image
  }
}
