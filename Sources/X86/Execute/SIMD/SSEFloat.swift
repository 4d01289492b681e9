/// SSE/SSE2 floating-point instructions: arithmetic, compares, COMIS/UCOMIS, RCP/RSQRT.
/// Conversions are in SSEConvert.swift, the per-lane IEEE work in SSEFloatFormat.swift.
///
/// Exceptions (SDM Vol. 1, 11.5): every lane is computed, then the raised flags are checked
/// against the MXCSR masks. An unmasked pre-computation exception (IE, DE, ZE) sets only those
/// flags; an unmasked post-computation one (OE, UE, PE) sets all raised flags (less PE for an
/// element with an unmasked OE or UE while PE is masked, see `finish`); either way the
/// destination is left alone and the instruction faults with #XM (vector 19), or #UD when
/// CR4.OSXMMEXCPT is clear (SDM Vol. 3, 6.15 "Interrupt 19"). Masked, the flags are ORed into
/// MXCSR and the results written.
extension X86Core {
  /// Commits `flags` to MXCSR, raising #XM/#UD for an unmasked one (the caller has not yet
  /// written its result and must not when this throws).
  mutating func commitFloatFlags(_ flags: FloatFlags) throws(X86Exception) {
    let masks = (state.fpu.mxcsr >> MXCSRBit.maskShift) & MXCSRBit.flags
    if flags.pre & ~masks != 0 {
      state.fpu.mxcsr |= flags.pre
      throw simdFloatingPointException()
    }
    let all = flags.pre | flags.post
    state.fpu.mxcsr |= all
    if all & ~masks != 0 { throw simdFloatingPointException() }
  }

  mutating func simdFloatingPointException() -> X86Exception {
    state.cr4 & FPUControlBit.cr4OSXMMEXCPT != 0
      ? X86Exception(vector: X86Exception.Vector.simdFloatingPoint) : .invalidOpcode
  }

  /// The source for an FP instruction: the whole xmm/m128 (aligned) for packed forms, or the
  /// scalar for SS/SD forms (a memory scalar reads only its 4 or 8 bytes).
  mutating func floatSource(_ d: DecodedInstruction, scalarSize: UInt8?) throws(X86Exception) -> UInt128 {
    if let size = scalarSize { return UInt128(try scalarSource(d, size: size)) }
    return try vectorSource(d)
  }

  /// ADD/SUB/MUL/DIV/MIN/MAX/SQRT PS/PD/SS/SD. Scalar forms keep the destination's other lanes
  /// (SQRTSS/SD take them from the destination too).
  mutating func floatArithmetic(_ d: DecodedInstruction, _ op: FloatOperation, prefix: UInt16) throws(X86Exception) {
    let double = prefix == SSEPrefix.p66 || prefix == SSEPrefix.f2
    let scalar = prefix == SSEPrefix.f3 || prefix == SSEPrefix.f2
    let width = double ? 64 : 32
    let a = xmm(d.reg)
    let b = try floatSource(d, scalarSize: scalar ? UInt8(width / 8) : nil)
    let env = FloatEnvironment(mxcsr: state.fpu.mxcsr)
    var flags = FloatFlags()
    var result = a
    for index in 0..<(scalar ? 1 : 128 / width) {
      let x = lane(a, index, width: width)
      let y = lane(b, index, width: width)
      var laneFlags = FloatFlags()
      let value =
        double
        ? scalarArithmetic(op, x, y, Double.self, env, &laneFlags)
        : scalarArithmetic(op, x, y, Float.self, env, &laneFlags)
      // One element reports only its highest-priority pre-computation exception: an invalid
      // operation or a division by zero hides a denormal operand (SDM Vol. 1, 4.9.2, 11.5.2).
      if laneFlags.pre & (MXCSRBit.invalid | MXCSRBit.divideByZero) != 0 { laneFlags.pre &= ~MXCSRBit.denormal }
      flags.pre |= laneFlags.pre
      flags.post |= laneFlags.post
      result = withLane(result, index, width: width, value)
    }
    try commitFloatFlags(flags)
    setXMM(d.reg, result)
  }

  /// CMPPS/PD/SS/SD with predicates 0-7 (SDM Vol. 2, CMPPS table 3-1): EQ, LT, LE, UNORD,
  /// NEQ, NLT, NLE, ORD. LT/LE/NLT/NLE signal IE on any NaN, the others only on an SNaN.
  mutating func floatCompare(_ d: DecodedInstruction, prefix: UInt16) throws(X86Exception) {
    let double = prefix == SSEPrefix.p66 || prefix == SSEPrefix.f2
    let scalar = prefix == SSEPrefix.f3 || prefix == SSEPrefix.f2
    let width = double ? 64 : 32
    let a = xmm(d.reg)
    let b = try floatSource(d, scalarSize: scalar ? UInt8(width / 8) : nil)
    let env = FloatEnvironment(mxcsr: state.fpu.mxcsr)
    let predicate = d.immediate & 7
    var flags = FloatFlags()
    var result = a
    for index in 0..<(scalar ? 1 : 128 / width) {
      let x = lane(a, index, width: width)
      let y = lane(b, index, width: width)
      let holds =
        double
        ? comparePredicate(predicate, x, y, Double.self, env, &flags)
        : comparePredicate(predicate, x, y, Float.self, env, &flags)
      result = withLane(result, index, width: width, holds ? ~0 : 0)
    }
    try commitFloatFlags(flags)
    setXMM(d.reg, result)
  }

  /// COMISS/COMISD (IE on any NaN) and UCOMISS/UCOMISD (IE on an SNaN): ZF PF CF = 111
  /// unordered, 000 greater, 001 less, 100 equal; OF SF AF cleared (SDM Vol. 2, COMISS).
  mutating func compareOrdered(_ d: DecodedInstruction, double: Bool, signalling: Bool) throws(X86Exception) {
    let size: UInt8 = double ? 8 : 4
    let x = UInt64(truncatingIfNeeded: xmm(d.reg)) & sizeMask(size)
    let y = try scalarSource(d, size: size)
    let env = FloatEnvironment(mxcsr: state.fpu.mxcsr)
    var flags = FloatFlags()
    let relation =
      double
      ? orderedRelation(x, y, Double.self, signalling, env, &flags)
      : orderedRelation(x, y, Float.self, signalling, env, &flags)
    try commitFloatFlags(flags)
    let bits: UInt64 =
      switch relation {
      case .unordered: RFlagsBit.zero | RFlagsBit.parity | RFlagsBit.carry
      case .less: RFlagsBit.carry
      case .equal: RFlagsBit.zero
      case .greater: 0
      }
    state.rflags = state.rflags & ~(RFlagsBit.status) | bits
  }

  /// RCPPS/RCPSS/RSQRTPS/RSQRTSS. The hardware's tables are not architectural (the SDM only
  /// bounds the relative error by 1.5 · 2^-12); this model returns the correctly rounded
  /// reciprocal (square root), which is within that bound. Denormal inputs count as zeros and
  /// tiny results are flushed to zero, as the SDM describes; no MXCSR flag is ever set.
  mutating func reciprocalEstimate(_ d: DecodedInstruction, squareRoot: Bool, scalar: Bool) throws(X86Exception) {
    let a = xmm(d.reg)
    let b = try floatSource(d, scalarSize: scalar ? 4 : nil)
    var result = a
    for index in 0..<(scalar ? 1 : 4) {
      let x = Float(lane: lane(b, index, width: 32))
      let value: Float
      if x.isNaN {
        value = Float(lane: quieted(x.lane, Float.self))
      } else if x == 0 || x.isSubnormal {
        value = x.sign == .minus ? -.infinity : .infinity
      } else if squareRoot && x < 0 {
        value = Float(lane: Float.indefinite)
      } else {
        let estimate = squareRoot ? Float(1 / Double(x).squareRoot()) : Float(1 / Double(x))
        value = estimate.isSubnormal ? (estimate < 0 ? -0.0 : 0.0) : estimate
      }
      result = withLane(result, index, width: 32, value.lane)
    }
    setXMM(d.reg, result)
  }
}

enum FloatRelation { case unordered, less, equal, greater }

func orderedRelation<T: SSEScalar>(
  _ xBits: UInt64, _ yBits: UInt64, _: T.Type, _ signalling: Bool, _ env: FloatEnvironment, _ flags: inout FloatFlags
) -> FloatRelation {
  let rawX = T(lane: xBits)
  let rawY = T(lane: yBits)
  if rawX.isNaN || rawY.isNaN {
    if signalling || rawX.isSignalingNaN || rawY.isSignalingNaN { flags.pre |= MXCSRBit.invalid }
    return .unordered
  }
  let x: T = loadOperand(xBits, env, &flags)
  let y: T = loadOperand(yBits, env, &flags)
  return x < y ? .less : (x == y ? .equal : .greater)
}

func comparePredicate<T: SSEScalar>(
  _ predicate: UInt64, _ xBits: UInt64, _ yBits: UInt64, _: T.Type, _ env: FloatEnvironment, _ flags: inout FloatFlags
) -> Bool {
  let signalling = predicate == 1 || predicate == 2 || predicate == 5 || predicate == 6
  let relation = orderedRelation(xBits, yBits, T.self, signalling, env, &flags)
  switch predicate {
  case 0: return relation == .equal
  case 1: return relation == .less
  case 2: return relation == .less || relation == .equal
  case 3: return relation == .unordered
  case 4: return relation != .equal
  case 5: return relation != .less
  case 6: return relation != .less && relation != .equal
  default: return relation != .unordered
  }
}
