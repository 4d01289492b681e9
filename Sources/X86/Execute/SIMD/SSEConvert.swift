/// The SSE/SSE2 conversions (SDM Vol. 2, CVT* pages; Vol. 1, 11.5.2.1 for the integer
/// indefinite 8000_0000h / 8000_0000_0000_0000h returned, with IE, for NaNs and out-of-range
/// values).
extension X86Core {
  mutating func sseConvert(_ d: DecodedInstruction, prefix: UInt16) throws(X86Exception) {
    let env = FloatEnvironment(mxcsr: state.fpu.mxcsr)
    var flags = FloatFlags()
    let wide = d.immediate2 & SSEPrefix.rexW != 0
    switch d.sub {
    case 0x2a:
      // CVTSI2SS/CVTSI2SD xmm, r/m32/64: rounded by MXCSR.RC.
      let size: UInt8 = wide ? 8 : 4
      let integer = signExtend(try readRM(d, size: size), size: size)
      let double = prefix == SSEPrefix.f2
      let value =
        double
        ? integerToFloat(Int64(bitPattern: integer), Double.self, env, &flags)
        : integerToFloat(Int64(bitPattern: integer), Float.self, env, &flags)
      try commitFloatFlags(flags)
      setXMM(d.reg, withLane(xmm(d.reg), 0, width: double ? 64 : 32, value))
    case 0x2c, 0x2d:
      // CVT(T)SS2SI / CVT(T)SD2SI r32/64, xmm/m32/64.
      let double = prefix == SSEPrefix.f2
      let source = try scalarSource(d, size: double ? 8 : 4)
      let size: UInt8 = wide ? 8 : 4
      let truncate = d.sub == 0x2c
      let value =
        double
        ? floatToInteger(source, Double.self, size: size, truncate: truncate, env, &flags)
        : floatToInteger(source, Float.self, size: size, truncate: truncate, env, &flags)
      try commitFloatFlags(flags)
      setRegister(d.reg, size: size, d, value)
    case 0x5a:
      switch prefix {
      case SSEPrefix.none:
        // CVTPS2PD xmm, xmm/m64: two singles widened (exact).
        let source = try scalarSource(d, size: 8)
        let result =
          UInt128(widen(lane(UInt128(source), 0, width: 32), env, &flags))
          | UInt128(widen(lane(UInt128(source), 1, width: 32), env, &flags)) << 64
        try commitFloatFlags(flags)
        setXMM(d.reg, result)
      case SSEPrefix.p66:
        // CVTPD2PS: two doubles narrowed into the low quadword; the high one cleared.
        let source = try vectorSource(d)
        let result =
          UInt128(narrow(lane(source, 0, width: 64), env, &flags))
          | UInt128(narrow(lane(source, 1, width: 64), env, &flags)) << 32
        try commitFloatFlags(flags)
        setXMM(d.reg, result)
      case SSEPrefix.f3:
        let value = widen(try scalarSource(d, size: 4), env, &flags)
        try commitFloatFlags(flags)
        setXMM(d.reg, withLane(xmm(d.reg), 0, width: 64, value))
      default:
        let value = narrow(try scalarSource(d, size: 8), env, &flags)
        try commitFloatFlags(flags)
        setXMM(d.reg, withLane(xmm(d.reg), 0, width: 32, value))
      }
    case 0x5b:
      let source = try vectorSource(d)
      var result: UInt128 = 0
      for index in 0..<4 {
        let element = lane(source, index, width: 32)
        let value =
          prefix == SSEPrefix.none
          ? integerToFloat(Int64(Int32(truncatingIfNeeded: element)), Float.self, env, &flags)  // CVTDQ2PS
          : floatToInteger(element, Float.self, size: 4, truncate: prefix == SSEPrefix.f3, env, &flags)  // CVT(T)PS2DQ
        result = withLane(result, index, width: 32, value)
      }
      try commitFloatFlags(flags)
      setXMM(d.reg, result)
    default:  // 0xe6
      if prefix == SSEPrefix.f3 {
        // CVTDQ2PD xmm, xmm/m64: exact.
        let source = try scalarSource(d, size: 8)
        let low = Double(Int32(truncatingIfNeeded: source)).bitPattern
        let high = Double(Int32(truncatingIfNeeded: source >> 32)).bitPattern
        setXMM(d.reg, UInt128(high) << 64 | UInt128(low))
      } else {
        // CVTPD2DQ (F2) / CVTTPD2DQ (66): the high quadword cleared.
        let source = try vectorSource(d)
        let truncate = prefix == SSEPrefix.p66
        let low = floatToInteger(lane(source, 0, width: 64), Double.self, size: 4, truncate: truncate, env, &flags)
        let high = floatToInteger(lane(source, 1, width: 64), Double.self, size: 4, truncate: truncate, env, &flags)
        try commitFloatFlags(flags)
        setXMM(d.reg, UInt128(high) << 32 | UInt128(low))
      }
    }
  }
}

/// An integer (at most 64 bits) to `T`, rounded by the MXCSR mode; PE when inexact.
func integerToFloat<T: SSEScalar>(_ integer: Int64, _: T.Type, _ env: FloatEnvironment, _ flags: inout FloatFlags)
  -> UInt64
{
  let nearest = T(integer)
  // Compare the rounded value with the integer exactly: 2^63 is the only value out of Int64's range.
  let errorSign: Int
  if nearest >= 0x1p63 {
    errorSign = -1
  } else {
    let back = Int64(nearest)
    errorSign = integer > back ? 1 : (integer < back ? -1 : 0)
  }
  if errorSign != 0 { flags.post |= MXCSRBit.precision }
  return directed(nearest, errorSign: errorSign, env.rounding).lane
}

/// `T` to a 32- or 64-bit integer, rounded by MXCSR.RC or truncated (CVTT*).
func floatToInteger<T: SSEScalar>(
  _ bits: UInt64, _: T.Type, size: UInt8, truncate: Bool, _ env: FloatEnvironment, _ flags: inout FloatFlags
) -> UInt64 {
  let indefinite: UInt64 = size == 8 ? 0x8000_0000_0000_0000 : 0x8000_0000
  let raw = T(lane: bits)
  if raw.isNaN {
    flags.pre |= MXCSRBit.invalid
    return indefinite
  }
  // DAZ applies to the source; a denormal here is no DE (the conversions do not report it).
  let value = raw.isSubnormal && env.denormalsAreZero ? 0 : raw
  let rule: FloatingPointRoundingRule
  switch truncate ? .towardZero : env.rounding {
  case .nearest: rule = .toNearestOrEven
  case .down: rule = .down
  case .up: rule = .up
  case .towardZero: rule = .towardZero
  }
  let rounded = value.rounded(rule)
  let bound: T = size == 8 ? 0x1p63 : 0x1p31
  guard rounded >= -bound && rounded < bound else {
    flags.pre |= MXCSRBit.invalid
    return indefinite
  }
  if rounded != value { flags.post |= MXCSRBit.precision }
  return UInt64(bitPattern: Int64(rounded)) & sizeMask(size)
}

/// Single to double: exact; an SNaN is quieted with IE, a denormal sets DE (or is a zero under DAZ).
func widen(_ bits: UInt64, _ env: FloatEnvironment, _ flags: inout FloatFlags) -> UInt64 {
  let raw = Float(lane: bits)
  if raw.isNaN {
    if raw.isSignalingNaN { flags.pre |= MXCSRBit.invalid }
    // Sign, and the payload moved to the top of the wider fraction, quieted.
    let sign = (bits >> 31) << 63
    let payload = (bits & 0x7f_ffff) << 29
    return sign | 0x7ff8_0000_0000_0000 | payload
  }
  let value: Float = loadOperand(bits, env, &flags)
  return Double(value).bitPattern
}

/// Double to single, rounded by MXCSR.RC, with OE/UE/PE and FTZ.
func narrow(_ bits: UInt64, _ env: FloatEnvironment, _ flags: inout FloatFlags) -> UInt64 {
  let raw = Double(bitPattern: bits)
  if raw.isNaN {
    if raw.isSignalingNaN { flags.pre |= MXCSRBit.invalid }
    let sign = (bits >> 63) << 31
    let payload = (bits >> 29) & 0x7f_ffff
    return sign | 0x7fc0_0000 | payload
  }
  let value: Double = loadOperand(bits, env, &flags)
  if value.isInfinite || value == 0 { return Float(value).lane }
  let nearest = Float(value)
  if nearest.isInfinite {
    // Bring the value to exponent 64, where single precision holds it, to round it there.
    let shift = Int(value.exponent) - 64
    let scaled = value * Double(sign: .plus, exponent: -shift, significand: 1)
    let scaledNearest = Float(scaled)
    let errorSign = signum(scaled - Double(scaledNearest))
    return finishOverflow(scaledNearest, errorSign: errorSign, scaleDown: shift, env, &flags).lane
  }
  if nearest.magnitude < 2 * Float.leastNormalMagnitude {
    let scaled = value * 0x1p74
    let scaledNearest = Float(scaled)
    if scaledNearest.magnitude < Float.leastNormalMagnitude {
      // Exact with unbounded exponent when the double's significand fits in 24 bits.
      let exact = value.significandWidth <= Float.significandBitCount
      return (deepUnderflow(negative: value < 0, exactUnbounded: exact, env, &flags) as Float).lane
    }
    return finish(scaledNearest, errorSign: signum(scaled - Double(scaledNearest)), scale: 74, env, &flags).lane
  }
  return finish(nearest, errorSign: signum(value - Double(nearest)), scale: 0, env, &flags).lane
}
