/// x87 arithmetic, compares, loads and stores (SDM Vol. 1, chapter 8; Vol. 2 pages of each
/// instruction). Values are `Float80`; rounding follows FCW.RC through the shared IEEE code
/// (SSEFloatFormat.swift), always at 64-bit precision: FCW.PC (24/53-bit precision control)
/// is not applied, a documented gap. C1 (the round-up indicator) is left clear after
/// arithmetic.
extension X86Core {
  /// m32fp to extended: exact; an SNaN is quieted with IE, a denormal sets DE.
  func loadSingle(_ bits: UInt64, _ flags: inout FloatFlags) -> Float80 {
    let value = Float(bitPattern: UInt32(truncatingIfNeeded: bits))
    if value.isNaN {
      if value.isSignalingNaN { flags.pre |= MXCSRBit.invalid }
      return Float80(
        sign: value.sign, exponentBitPattern: 0x7fff,
        significandBitPattern: UInt64(value.significandBitPattern) << 40 | 1 << 62)
    }
    if value.isSubnormal { flags.pre |= MXCSRBit.denormal }
    return Float80(value)
  }

  /// m64fp to extended, as `loadSingle`.
  func loadDouble(_ bits: UInt64, _ flags: inout FloatFlags) -> Float80 {
    let value = Double(bitPattern: bits)
    if value.isNaN {
      if value.isSignalingNaN { flags.pre |= MXCSRBit.invalid }
      return Float80(
        sign: value.sign, exponentBitPattern: 0x7fff, significandBitPattern: value.significandBitPattern << 11 | 1 << 62
      )
    }
    if value.isSubnormal { flags.pre |= MXCSRBit.denormal }
    return Float80(value)
  }

  /// The NaN an operation with NaN operands returns (SDM Vol. 1, table 4-7, x87 column): a
  /// QNaN beats an SNaN, otherwise the larger significand; quieted; IE for any SNaN.
  func x87NaN(_ a: Float80, _ b: Float80, _ flags: inout FloatFlags) -> Float80 {
    if a.isSignalingNaN || b.isSignalingNaN { flags.pre |= MXCSRBit.invalid }
    let pick: Float80
    if a.isNaN && b.isNaN {
      if a.isSignalingNaN != b.isSignalingNaN {
        pick = a.isSignalingNaN ? b : a
      } else {
        pick = a.significandBitPattern >= b.significandBitPattern ? a : b
      }
    } else {
      pick = a.isNaN ? a : b
    }
    return Float80(
      sign: pick.sign, exponentBitPattern: 0x7fff, significandBitPattern: pick.significandBitPattern | 1 << 62)
  }

  /// FADD FMUL FCOM FCOMP FSUB FSUBR FDIV FDIVR (`kind` 0-7) on ST(destination) and ST(source)
  /// or a memory value.
  mutating func x87Binary(
    _ kind: UInt8, destination: Int, source: Int?, sourceValue: Float80, flags initial: FloatFlags, popAfter: Bool
  ) {
    if kind == 2 || kind == 3 {
      x87CompareWith(source: source, value: sourceValue, unordered: false, popCount: kind == 3 ? 1 : 0, flags: initial)
      return
    }
    if x87IsEmpty(destination) || x87IsEmpty(optional: source) {
      guard x87Underflow() else { return }
      setST(destination, -Float80.nan)
      if popAfter { x87Pop() }
      return
    }
    var flags = initial
    let a = st(destination)
    let b = x87Value(source, or: sourceValue)
    let result: Float80
    if a.isNaN || b.isNaN {
      result = x87NaN(a, b, &flags)
    } else {
      if a.isSubnormal || b.isSubnormal { flags.pre |= MXCSRBit.denormal }
      let env = x87Environment()
      switch kind {
      case 0: result = roundedArithmetic(.add, a, b, env, &flags)
      case 1: result = roundedArithmetic(.mul, a, b, env, &flags)
      case 4: result = roundedArithmetic(.sub, a, b, env, &flags)
      case 5: result = roundedArithmetic(.sub, b, a, env, &flags)
      case 6: result = roundedArithmetic(.div, a, b, env, &flags)
      default: result = roundedArithmetic(.div, b, a, env, &flags)
      }
    }
    guard commitX87Flags(flags) else { return }
    setST(destination, result)
    state.fpu.fsw &= ~FSWBit.c1
    if popAfter { x87Pop() }
  }

  mutating func x87IsEmpty(optional index: Int?) -> Bool {
    guard let index else { return false }
    return x87IsEmpty(index)
  }

  mutating func x87Value(_ index: Int?, or value: Float80) -> Float80 {
    guard let index else { return value }
    return st(index)
  }

  /// FCOM/FUCOM/FCOMI/FUCOMI (and P, PP): ST0 against ST(source).
  mutating func x87Compare(source: Int, unordered: Bool, popCount: Int, toEFLAGS: Bool) {
    x87CompareWith(
      source: source, value: 0, unordered: unordered, popCount: popCount, flags: FloatFlags(), toEFLAGS: toEFLAGS)
  }

  /// Compares ST0 with ST(source) or `value`: C3 C2 C0 = 000 greater, 001 less, 100 equal,
  /// 111 unordered (or ZF PF CF the same way for FCOMI, with OF SF AF cleared). FCOM signals
  /// IE on any NaN, FUCOM on an SNaN only. Empty registers: stack underflow, unordered.
  mutating func x87CompareWith(
    source: Int?, value: Float80, unordered: Bool, popCount: Int, flags initial: FloatFlags, toEFLAGS: Bool = false
  ) {
    var flags = initial
    var relation = FloatRelation.unordered
    if x87IsEmpty(0) || x87IsEmpty(optional: source) {
      guard x87Underflow() else {
        // Unmasked, the codes still say unordered; nothing is popped.
        if toEFLAGS {
          state.rflags = state.rflags & ~RFlagsBit.status | RFlagsBit.zero | RFlagsBit.parity | RFlagsBit.carry
        } else {
          state.fpu.fsw = state.fpu.fsw & ~FSWBit.conditions | FSWBit.c3 | FSWBit.c2 | FSWBit.c0
        }
        return
      }
    } else {
      let a = st(0)
      let b = x87Value(source, or: value)
      if a.isNaN || b.isNaN {
        if !unordered || a.isSignalingNaN || b.isSignalingNaN { flags.pre |= MXCSRBit.invalid }
      } else {
        if a.isSubnormal || b.isSubnormal { flags.pre |= MXCSRBit.denormal }
        relation = a < b ? .less : (a == b ? .equal : .greater)
      }
      // An unmasked IE still leaves the condition codes (unordered), but pops nothing; an
      // unmasked DE leaves C3 and C0 as they were and clears C2 (host CPU).
      if !commitX87Flags(flags) {
        if flags.pre & MXCSRBit.invalid == 0 {
          state.fpu.fsw &= ~FSWBit.c2
          return
        }
        if toEFLAGS {
          state.rflags = state.rflags & ~RFlagsBit.status | RFlagsBit.zero | RFlagsBit.parity | RFlagsBit.carry
        } else {
          state.fpu.fsw = state.fpu.fsw & ~FSWBit.conditions | FSWBit.c3 | FSWBit.c2 | FSWBit.c0
        }
        return
      }
    }
    if toEFLAGS {
      let bits: UInt64 =
        switch relation {
        case .unordered: RFlagsBit.zero | RFlagsBit.parity | RFlagsBit.carry
        case .less: RFlagsBit.carry
        case .equal: RFlagsBit.zero
        case .greater: 0
        }
      state.rflags = state.rflags & ~RFlagsBit.status | bits
      state.fpu.fsw &= ~FSWBit.c1
    } else {
      let codes: UInt16 =
        switch relation {
        case .unordered: FSWBit.c3 | FSWBit.c2 | FSWBit.c0
        case .less: FSWBit.c0
        case .equal: FSWBit.c3
        case .greater: 0
        }
      state.fpu.fsw = state.fpu.fsw & ~FSWBit.conditions | codes
    }
    for _ in 0..<popCount { x87Pop() }
  }

  /// Checks that `size` bytes at `offset` can be written, so flags and pops happen only for a
  /// store that will complete.
  mutating func probeWrite(_ d: DecodedInstruction, offset: UInt64, size: UInt8) throws(X86Exception) {
    let first = try linearAddress(d.segment, offset)
    try checkAlignment(first, size: min(size, 8))
    let last = try linearAddress(d.segment, (offset &+ UInt64(size - 1)) & sizeMask(d.addressSize))
    _ = try translate(first, .write)
    // A fault on the second page names its first byte, as the hardware's CR2 does.
    if last >> 12 != first >> 12 { _ = try translate(last & ~0xfff, .write) }
  }

  /// FST/FSTP m32fp, m64fp, m80fp.
  mutating func storeReal(_ d: DecodedInstruction, offset: UInt64, size: UInt8, pop: Bool) throws(X86Exception) {
    try probeWrite(d, offset: offset, size: size)
    var value: Float80 = -Float80.nan
    var flags = FloatFlags()
    if x87IsEmpty(0) {
      guard x87Underflow() else { return }
    } else {
      value = st(0)
    }
    switch size {
    case 10:
      let register = x87IsEmpty(0) ? X87Register(value) : state.fpu.st[x87Physical(0)]
      try write(d.segment, offset, size: 8, register.significand)
      try write(d.segment, (offset &+ 8) & sizeMask(d.addressSize), size: 2, UInt64(register.signExponent))
    case 8:
      let bits = narrowExtended(value, Double.self, x87Environment(), &flags)
      guard commitX87Flags(flags) else { return }
      try write(d.segment, offset, size: 8, bits)
    default:
      let bits = narrowExtended(value, Float.self, x87Environment(), &flags)
      guard commitX87Flags(flags) else { return }
      try write(d.segment, offset, size: 4, bits)
    }
    if pop { x87Pop() }
  }

  /// FIST/FISTP: rounded by FCW.RC; NaN, infinity or out of range is IE and (masked) the
  /// integer indefinite (the most negative integer of the size).
  mutating func storeInteger(_ d: DecodedInstruction, offset: UInt64, size: UInt8, pop: Bool) throws(X86Exception) {
    try probeWrite(d, offset: offset, size: size)
    let indefinite: UInt64 = 1 << UInt64(size * 8 - 1)
    var flags = FloatFlags()
    var result = indefinite
    if x87IsEmpty(0) {
      guard x87Underflow() else { return }
    } else {
      let value = st(0)
      if value.isNaN {
        flags.pre |= MXCSRBit.invalid
      } else {
        // No DE here: the host reports none for a denormal stored as an integer.
        let rule: FloatingPointRoundingRule =
          switch x87Environment().rounding {
          case .nearest: .toNearestOrEven
          case .down: .down
          case .up: .up
          case .towardZero: .towardZero
          }
        let rounded = value.rounded(rule)
        let bound = Float80(sign: .plus, exponent: Int(size * 8 - 1), significand: 1)
        if rounded >= -bound && rounded < bound {
          if rounded != value { flags.post |= MXCSRBit.precision }
          result = UInt64(bitPattern: Int64(rounded)) & sizeMask(size)
        } else {
          flags.pre |= MXCSRBit.invalid
        }
      }
      guard commitX87Flags(flags) else { return }
    }
    try write(d.segment, offset, size: size, result)
    if pop { x87Pop() }
  }
}

/// Extended to single or double, rounded by `env`, with OE/UE/PE; an SNaN is quieted with IE
/// and a NaN keeps the top of its payload; a denormal source sets DE.
func narrowExtended<T: SSEScalar>(_ value: Float80, _: T.Type, _ env: FloatEnvironment, _ flags: inout FloatFlags)
  -> UInt64
{
  if value.isNaN {
    if value.isSignalingNaN { flags.pre |= MXCSRBit.invalid }
    let fraction = (value.significandBitPattern | 1 << 62) >> UInt64(63 - T.significandBitCount)
    return T(
      sign: value.sign, exponentBitPattern: T.RawExponent(truncatingIfNeeded: (1 << T.exponentBitCount) - 1),
      significandBitPattern: T.RawSignificand(truncatingIfNeeded: fraction)
    ).lane
  }
  // No DE for a denormal extended source: the host reports none (its result underflows anyway).
  if value.isInfinite || value == 0 { return T(value).lane }
  let nearest = T(value)
  if nearest.isInfinite {
    // Bring the value to exponent 64, where the narrower format holds it, to round it there.
    let shift = Int(value.exponent) - 64
    let scaled = value * Float80(sign: .plus, exponent: -shift, significand: 1)
    let scaledNearest = T(scaled)
    let errorSign = signum(scaled - Float80(scaledNearest))
    return finishOverflow(scaledNearest, errorSign: errorSign, scaleDown: shift, env, &flags).lane
  }
  if nearest.magnitude < 2 * T.leastNormalMagnitude {
    let scaled = value * Float80(sign: .plus, exponent: T.tinyScale, significand: 1)
    let scaledNearest = T(scaled)
    if scaledNearest.magnitude < T.leastNormalMagnitude {
      return (deepUnderflow(negative: value < 0, env, &flags) as T).lane
    }
    return finish(scaledNearest, errorSign: signum(scaled - Float80(scaledNearest)), scale: T.tinyScale, env, &flags)
      .lane
  }
  return finish(nearest, errorSign: signum(value - Float80(nearest)), scale: 0, env, &flags).lane
}
