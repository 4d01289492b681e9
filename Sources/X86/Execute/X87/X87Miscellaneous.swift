/// D9 E0-FF: sign operations, FTST, FXAM, the constants, FSQRT, FRNDINT, FSCALE, FXTRACT,
/// FPREM/FPREM1, FINCSTP/FDECSTP. The transcendental instructions (F2XM1, FYL2X, FYL2XP1,
/// FPTAN, FPATAN, FSIN, FCOS, FSINCOS) are #UD: the X86 module imports no libm, and a
/// correctly rounded Float80 implementation is future work.
extension X86Core {
  /// `code` is the low five bits of the second byte (D9 E0 + code).
  mutating func x87Miscellaneous(_ d: DecodedInstruction, code: UInt8) throws(X86Exception) {
    switch code {
    case 0, 1, 4, 26, 28, 29, 20, 21, 24:
      recordX87Pointers(d)
      try x87UnaryOnTop(code)
    case 5:
      // FXAM: C3 C2 C0 give the class of ST0 (SDM Vol. 2, FXAM table), C1 its sign.
      recordX87Pointers(d)
      let register = state.fpu.st[x87Physical(0)]
      let exponent = register.signExponent & 0x7fff
      let integerBit = register.significand >> 63 != 0
      let codes: UInt16
      if x87IsEmpty(0) {
        codes = FSWBit.c3 | FSWBit.c0
      } else if exponent == 0 {
        codes = register.significand == 0 ? FSWBit.c3 : FSWBit.c3 | FSWBit.c2
      } else if !integerBit {
        codes = 0  // unsupported (unnormal, pseudo-NaN, pseudo-infinity)
      } else if exponent == 0x7fff {
        codes = register.significand << 1 == 0 ? FSWBit.c2 | FSWBit.c0 : FSWBit.c0
      } else {
        codes = FSWBit.c2
      }
      let sign = register.signExponent & 0x8000 != 0 ? FSWBit.c1 : 0
      state.fpu.fsw = state.fpu.fsw & ~FSWBit.conditions | codes | sign
    case 8...14:
      recordX87Pointers(d)
      x87Push(x87Constant(code - 8))
    case 16, 17, 18, 19, 25, 27, 30, 31:
      recordX87Pointers(d)
      x87Transcendental(code)
    case 22, 23:
      // FDECSTP / FINCSTP: TOP moves, tags do not; C1 cleared.
      recordX87Pointers(d)
      setX87Top(x87Top + (code == 22 ? 7 : 1))
      state.fpu.fsw &= ~FSWBit.c1
    default:
      throw .invalidOpcode
    }
  }

  /// FLD1, FLDL2T, FLDL2E, FLDPI, FLDLG2, FLDLN2, FLDZ. The irrational ones are the 64-bit
  /// significands rounded to nearest, adjusted by one unit when FCW.RC rounds the other way
  /// (SDM Vol. 2, FLD1/FLDL2T/...: "rounded according to RC"). `nearestRoundedUp` says which
  /// side of the true value the nearest significand lies on.
  mutating func x87Constant(_ index: UInt8) -> Float80 {
    let (significand, exponent, nearestRoundedUp): (UInt64, UInt16, Bool) =
      switch index {
      case 0: (0x8000_0000_0000_0000, 0x3fff, false)  // 1
      case 1: (0xd49a_784b_cd1b_8afe, 0x4000, false)  // log2(10) = d49a784bcd1b8afe 49...
      case 2: (0xb8aa_3b29_5c17_f0bc, 0x3fff, true)  // log2(e) = b8aa3b295c17f0bb be...
      case 3: (0xc90f_daa2_2168_c235, 0x4000, true)  // pi = c90fdaa22168c234 c4...
      case 4: (0x9a20_9a84_fbcf_f799, 0x3ffd, true)  // log10(2) = 9a209a84fbcff798 8f...
      case 5: (0xb172_17f7_d1cf_79ac, 0x3ffe, true)  // ln(2) = b17217f7d1cf79ab c9...
      default: (0, 0, false)  // +0
      }
    var adjusted = significand
    if index >= 1 && index <= 5 {
      switch x87Environment().rounding {
      case .down, .towardZero: if nearestRoundedUp { adjusted -= 1 }
      case .up: if !nearestRoundedUp { adjusted += 1 }
      case .nearest: break
      }
    }
    return X87Register(significand: adjusted, signExponent: exponent).float80
  }

  /// The one-operand instructions on ST0 (and ST1 for FSCALE, FPREM, FPREM1; FXTRACT pushes).
  mutating func x87UnaryOnTop(_ code: UInt8) throws(X86Exception) {
    if code == 4 {
      // FTST: an empty ST0 is a stack underflow that leaves the register alone.
      x87CompareWith(source: nil, value: 0, unordered: false, popCount: 0, flags: FloatFlags())
      return
    }
    if code == 20 && !x87IsEmpty(0) && state.fpu.ftw & (1 << UInt8((x87Top + 7) & 7)) != 0 {
      // FXTRACT into a full stack: overflow; masked, ST0 and the pushed register are indefinite.
      state.fpu.fsw |= FSWBit.invalid | FSWBit.stackFault | FSWBit.c1
      guard x87Masked(FSWBit.invalid) else { return updateErrorSummary() }
      setST(0, -Float80.nan)
      x87Push(-Float80.nan)
      state.fpu.fsw |= FSWBit.c1
      return
    }
    let needsST1 = code == 29 || code == 21 || code == 24
    if x87IsEmpty(0) || (needsST1 && x87IsEmpty(1)) {
      guard x87Underflow() else {
        if code == 21 || code == 24 { state.fpu.fsw &= ~FSWBit.c2 }
        return
      }
      setST(0, -Float80.nan)
      if code == 20 { x87Push(-Float80.nan) }
      if code == 21 || code == 24 { state.fpu.fsw &= ~FSWBit.c2 }
      return
    }
    let x = st(0)
    var flags = FloatFlags()
    let env = x87Environment()
    switch code {
    case 0, 1:
      // FCHS / FABS: the sign bit alone, no exceptions.
      var register = state.fpu.st[x87Physical(0)]
      register.signExponent = code == 0 ? register.signExponent ^ 0x8000 : register.signExponent & 0x7fff
      state.fpu.st[x87Physical(0)] = register
      state.fpu.fsw &= ~FSWBit.c1
    case 4:
      x87CompareWith(source: nil, value: 0, unordered: false, popCount: 0, flags: FloatFlags())  // FTST
    case 26:
      // FSQRT.
      let result: Float80
      if x.isNaN {
        result = x87NaN(x, x, &flags)
      } else if x < 0 {
        flags.pre |= MXCSRBit.invalid
        result = -Float80.nan
      } else if x == 0 || x.isInfinite {
        result = x
      } else {
        if x.isSubnormal { flags.pre |= MXCSRBit.denormal }
        result = roundedSquareRoot(x, env, &flags)
      }
      if commitX87Flags(flags) { setST(0, result) }
    case 28:
      // FRNDINT: to an integer by FCW.RC; PE when that changed the value.
      var result = x
      if x.isNaN {
        result = x87NaN(x, x, &flags)
      } else if x.isFinite {
        if x.isSubnormal { flags.pre |= MXCSRBit.denormal }
        let rule: FloatingPointRoundingRule =
          switch env.rounding {
          case .nearest: .toNearestOrEven
          case .down: .down
          case .up: .up
          case .towardZero: .towardZero
          }
        result = x.rounded(rule)
        if result != x { flags.post |= MXCSRBit.precision }
      }
      if commitX87Flags(flags) { setST(0, result) }
    case 29:
      try x87Scale(x, st(1), env)
    case 20:
      // FXTRACT: ST0 ← significand (exponent 0), then push the unbiased exponent... the
      // exponent ends in ST1 and the significand in ST0.
      var exponentPart: Float80
      var significandPart: Float80
      if x.isNaN {
        exponentPart = x87NaN(x, x, &flags)
        significandPart = exponentPart
      } else if x == 0 {
        flags.pre |= MXCSRBit.divideByZero
        exponentPart = -.infinity
        significandPart = x
      } else if x.isInfinite {
        exponentPart = .infinity
        significandPart = x
      } else {
        if x.isSubnormal { flags.pre |= MXCSRBit.denormal }
        exponentPart = Float80(x.exponent)
        significandPart = Float80(sign: x.sign, exponent: 0, significand: x.significand)
      }
      guard commitX87Flags(flags) else { return }
      setST(0, exponentPart)
      x87Push(significandPart)
    default:
      x87PartialRemainder(x, st(1), ieee: code == 21)
    }
  }

  /// FSCALE: ST0 · 2^trunc(ST1), rounded by FCW.RC. Scales beyond the format's range are
  /// clamped first (the result overflows or underflows the same way).
  mutating func x87Scale(_ x: Float80, _ y: Float80, _ env: FloatEnvironment) throws(X86Exception) {
    var flags = FloatFlags()
    let result: Float80
    if x.isNaN || y.isNaN {
      result = x87NaN(x, y, &flags)
    } else if y.isInfinite {
      // 0 · 2^+∞ and ∞ · 2^-∞ are invalid; otherwise the infinity or zero the scale implies.
      if (x == 0 && y > 0) || (x.isInfinite && y < 0) {
        flags.pre |= MXCSRBit.invalid
        result = -Float80.nan
      } else {
        result = x == 0 || x.isInfinite ? x : (y > 0 ? Float80.infinity : 0) * (x < 0 ? -1 : 1)
      }
    } else if x == 0 || x.isInfinite {
      if y.isSubnormal { flags.pre |= MXCSRBit.denormal }
      result = x
    } else {
      if x.isSubnormal || y.isSubnormal { flags.pre |= MXCSRBit.denormal }
      let n = Int(max(min(y.rounded(.towardZero), 40000), -40000))
      if n >= -16382 && n <= 16383 {
        result = roundedArithmetic(.mul, x, Float80(sign: .plus, exponent: n, significand: 1), env, &flags)
      } else {
        // Two steps keep each factor a finite power of two; a first step that already leaves
        // the range means the result is far beyond it.
        let half = n / 2
        let partial = x * Float80(sign: .plus, exponent: half, significand: 1)
        if partial.isInfinite {
          result = finish(partial, errorSign: 0, scale: 0, env, &flags)
        } else if partial.magnitude < Float80.leastNormalMagnitude {
          result = deepUnderflow(negative: x < 0, env, &flags)
        } else {
          result = roundedArithmetic(
            .mul, partial, Float80(sign: .plus, exponent: n - half, significand: 1), env, &flags)
        }
      }
    }
    if commitX87Flags(flags) { setST(0, result) }
  }

  /// FPREM (truncating quotient) and FPREM1 (IEEE, nearest quotient). When the exponents
  /// differ by 64 or more only a partial reduction is done and C2 is set (software loops);
  /// otherwise C2 is clear and C0 C3 C1 hold the quotient's bits 2, 1, 0.
  mutating func x87PartialRemainder(_ x: Float80, _ y: Float80, ieee: Bool) {
    var flags = FloatFlags()
    var result: Float80
    var codes: UInt16 = 0
    var computed = false
    if x.isNaN || y.isNaN {
      result = x87NaN(x, y, &flags)
    } else if x.isInfinite || y == 0 {
      flags.pre |= MXCSRBit.invalid
      result = -Float80.nan
    } else if x == 0 || y.isInfinite {
      // The remainder is x itself: quotient 0, so C0 C1 C3 clear (host CPU).
      result = x
      computed = true
      if x.isSubnormal || y.isSubnormal { flags.pre |= MXCSRBit.denormal }
    } else {
      if x.isSubnormal || y.isSubnormal { flags.pre |= MXCSRBit.denormal }
      computed = true
      let difference = Int(x.exponent) - Int(y.exponent)
      if difference >= 64 {
        // Reduce by ST1 · 2^(D - N) with N = 32 (the SDM leaves N between 32 and 63).
        let scaled = y * Float80(sign: .plus, exponent: difference - 32, significand: 1)
        result = x.truncatingRemainder(dividingBy: scaled)
        codes = FSWBit.c2
      } else {
        result = ieee ? x.remainder(dividingBy: y) : x.truncatingRemainder(dividingBy: y)
        // The quotient's low three bits: (x - result) / y is an integer below 2^64; its value
        // modulo 8 comes from the remainder of x by 8y, which is exact.
        let ax = x.magnitude
        let ay = y.magnitude
        let byEight = ax.truncatingRemainder(dividingBy: 8 * ay)
        let partial = ieee ? ax.remainder(dividingBy: ay) : ax.truncatingRemainder(dividingBy: ay)
        let quotient = Int(((byEight - partial) / ay).rounded()) & 7
        if quotient & 4 != 0 { codes |= FSWBit.c0 }
        if quotient & 2 != 0 { codes |= FSWBit.c3 }
        if quotient & 1 != 0 { codes |= FSWBit.c1 }
      }
    }
    guard commitX87Flags(flags) else {
      state.fpu.fsw &= ~FSWBit.c2  // an unmasked exception: no (partial) remainder (host CPU)
      return
    }
    setST(0, result)
    // Special operands (NaN, invalid, zero, infinity) leave C0 C1 C3 as they were (host CPU).
    if computed {
      state.fpu.fsw = state.fpu.fsw & ~FSWBit.conditions | codes
    } else {
      state.fpu.fsw &= ~FSWBit.c2
    }
  }
}
