/// The Advanced SIMD vector instructions (C7.2): element by element as the ARM ARM's
/// pseudocode loops, on `Vector128` values; a 64-bit form (Q = 0) works on the low half and
/// zeroes the upper one.
extension A64Core {
  /// PolynomialMult of two bytes: the carry-less product (16 bits).
  static func carrylessMultiply(_ a: UInt64, _ b: UInt64) -> UInt64 {
    var product: UInt64 = 0
    for bit in 0..<8 where b >> UInt64(bit) & 1 != 0 { product ^= a << UInt64(bit) }
    return product
  }

  /// SQDMULH and SQRDMULH of two elements: the high half of 2 × a × b (rounded), saturated.
  static func doublingMultiplyHigh(_ a: UInt64, _ b: UInt64, _ size: Int, rounding: Bool, _ saturated: Bool) -> (
    UInt64, Bool
  ) {
    let bits = 8 << size
    let product = 2 * Int128(signed(a, size)) * Int128(signed(b, size))
    let rounded = product + (rounding ? 1 << Int128(bits - 1) : 0)
    return saturate(rounded >> Int128(bits), size, signed: true, saturated)
  }

  /// SQDMULL, SQDMLAL (`sign` 1), SQDMLSL (-1): 2 × a × b saturated to the double width,
  /// then added to or subtracted from `accumulate` with saturation again.
  static func doublingMultiplyLong(
    _ a: UInt64, _ b: UInt64, _ size: Int, accumulate: UInt64, _ sign: Int, _ saturated: Bool
  ) -> (UInt64, Bool) {
    var (product, saturated) = saturate(
      2 * Int128(signed(a, size)) * Int128(signed(b, size)), size + 1, signed: true, saturated)
    if sign != 0 {
      let old = Int128(signed(accumulate, size + 1))
      let term = Int128(signed(product, size + 1))
      (product, saturated) = saturate(sign > 0 ? old + term : old - term, size + 1, signed: true, saturated)
    }
    return (product, saturated)
  }

  /// FPSR.QC: a saturating instruction clamped a result.
  static let cumulativeSaturation: UInt64 = 1 << 27

  /// SignedSatQ/UnsignedSatQ of an exact (128-bit) value.
  @inline(__always)
  static func saturate(_ value: Int128, _ size: Int, signed: Bool, _ saturated: Bool) -> (UInt64, Bool) {
    let bits = 8 << size
    let maximum: Int128 = signed ? (1 << Int128(bits - 1)) - 1 : (1 << Int128(bits)) - 1
    let minimum: Int128 = signed ? -(1 << Int128(bits - 1)) : 0
    if value > maximum { return (UInt64(truncatingIfNeeded: maximum), true) }
    if value < minimum { return (UInt64(truncatingIfNeeded: minimum), true) }
    return (UInt64(truncatingIfNeeded: value), saturated)
  }

  /// SignedSatQ/UnsignedSatQ: `value` clamped to an element of 8 << `size` bits; whether it
  /// was clamped is ORed into `saturated`.
  @inline(__always)
  static func saturate(_ value: Int64, _ size: Int, signed: Bool, _ saturated: Bool) -> (UInt64, Bool) {
    let bits = 8 << size
    let maximum: Int64 =
      signed ? (bits == 64 ? .max : (1 << Int64(bits - 1)) - 1) : (bits >= 64 ? .max : (1 << Int64(bits)) - 1)
    let minimum: Int64 = signed ? (bits == 64 ? .min : -(1 << Int64(bits - 1))) : 0
    if value > maximum { return (UInt64(bitPattern: maximum), true) }
    if value < minimum { return (UInt64(bitPattern: minimum), true) }
    return (UInt64(bitPattern: value), saturated)
  }

  /// How many elements an instruction works on: one for the scalar forms (`setFlags`),
  /// else 64 or 128 bits' worth.
  @inline(__always) static func lanes(_ i: A64Instruction) -> Int {
    i.setFlags ? 1 : (i.is64 ? 16 : 8) >> Int(i.size)
  }

  mutating func simdThreeSame(_ i: A64Instruction) throws(A64Exception) {
    try checkFloatingPointAccess()
    let operation = SIMDThreeSame(rawValue: i.variant) ?? .and
    let n = vector(i.rn)
    let m = vector(i.rm)
    let d = vector(i.rd)
    let size = Int(i.size)
    let elements = A64Core.lanes(i)
    var result = Vector128.zero
    let pairwise: Bool
    switch operation {
    case .addp, .faddp, .smaxp, .umaxp, .sminp, .uminp, .fmaxp, .fminp, .fmaxnmp, .fminnmp: pairwise = true
    default: pairwise = false
    }
    /// The pairwise forms' operands: adjacent elements of Vm:Vn (Vn low).
    func pair(_ e: Int) -> (UInt64, UInt64) {
      let first = 2 * e < elements ? n.element(2 * e, size) : m.element(2 * e - elements, size)
      let second = 2 * e + 1 < elements ? n.element(2 * e + 1, size) : m.element(2 * e + 1 - elements, size)
      return (first, second)
    }
    func bitwise(_ f: (UInt64, UInt64, UInt64) -> UInt64) -> Vector128 {
      Vector128(low: f(n.low, m.low, d.low), high: f(n.high, m.high, d.high))
    }
    switch operation {
    case .and: result = bitwise { a, b, _ in a & b }
    case .bic: result = bitwise { a, b, _ in a & ~b }
    case .orr: result = bitwise { a, b, _ in a | b }
    case .orn: result = bitwise { a, b, _ in a | ~b }
    case .eor: result = bitwise { a, b, _ in a ^ b }
    // BSL takes Vn where Vd is 1, BIT inserts Vn where Vm is 1, BIF where Vm is 0.
    case .bsl: result = bitwise { a, b, c in b ^ ((b ^ a) & c) }
    case .bit: result = bitwise { a, b, c in c ^ ((c ^ a) & b) }
    case .bif: result = bitwise { a, b, c in c ^ ((c ^ a) & ~b) }
    case .fadd, .fsub, .fmul, .fdiv, .fmax, .fmin, .fmaxnm, .fminnm, .fmla, .fmls, .faddp, .fcmeq, .fcmge, .fcmgt,
      .fmaxp, .fminp, .fmaxnmp, .fminnmp, .fabd, .facge, .facgt, .fmulx, .frecps, .frsqrts:
      let format = FPFormat(rawValue: i.size) ?? .single
      var environment = fpEnvironment
      for e in 0..<elements {
        var a = n.element(e, size)
        var b = m.element(e, size)
        if pairwise { (a, b) = pair(e) }
        let value: UInt64
        switch operation {
        case .fadd: value = environment.add(a, b, format)
        case .fsub: value = environment.subtract(a, b, format)
        case .fmul: value = environment.multiply(a, b, format)
        case .fdiv: value = environment.divide(a, b, format)
        case .fmax: value = environment.maxMin(a, b, format, maximum: true, numeric: false)
        case .fmin: value = environment.maxMin(a, b, format, maximum: false, numeric: false)
        case .fmaxnm: value = environment.maxMin(a, b, format, maximum: true, numeric: true)
        case .fminnm: value = environment.maxMin(a, b, format, maximum: false, numeric: true)
        case .fmla: value = environment.multiplyAdd(d.element(e, size), a, b, format)
        case .fmls: value = environment.multiplyAdd(d.element(e, size), a ^ format.signBit, b, format)
        case .faddp: value = environment.add(a, b, format)
        case .fmaxp: value = environment.maxMin(a, b, format, maximum: true, numeric: false)
        case .fminp: value = environment.maxMin(a, b, format, maximum: false, numeric: false)
        case .fmaxnmp: value = environment.maxMin(a, b, format, maximum: true, numeric: true)
        case .fminnmp: value = environment.maxMin(a, b, format, maximum: false, numeric: true)
        case .fabd: value = environment.subtract(a, b, format) & ~format.signBit
        case .facge:
          value = environment.compareGreaterOrEqual(a & ~format.signBit, b & ~format.signBit, format) ? .max : 0
        case .facgt: value = environment.compareGreater(a & ~format.signBit, b & ~format.signBit, format) ? .max : 0
        case .fmulx: value = environment.multiplyExtended(a, b, format)
        case .frecps: value = environment.reciprocalStep(a, b, format, squareRoot: false)
        case .frsqrts: value = environment.reciprocalStep(a, b, format, squareRoot: true)
        // FPCompareEQ is quiet; FPCompareGE and GT signal on any NaN.
        case .fcmeq: value = environment.compareEqual(a, b, format) ? .max : 0
        case .fcmge: value = environment.compareGreaterOrEqual(a, b, format) ? .max : 0
        default: value = environment.compareGreater(a, b, format) ? .max : 0
        }
        result.setElement(e, size, value)
      }
      accumulate(environment)
    case .sqdmulh, .sqrdmulh:
      // (2 × a × b [+ rounding]) >> esize, saturated: only (-1) × (-1) in fixed point overflows.
      var saturated = false
      for e in 0..<elements {
        let value: UInt64
        (value, saturated) = A64Core.doublingMultiplyHigh(
          n.element(e, size), m.element(e, size), size, rounding: operation == .sqrdmulh, saturated)
        result.setElement(e, size, value)
      }
      if saturated { state.fpsr |= A64Core.cumulativeSaturation }
    case .sshl, .ushl, .srshl, .urshl, .sqshl, .uqshl, .sqrshl, .uqrshl:
      // Shift by the signed low byte of Vm's element: left if positive, else right (rounded
      // for the R forms); the Q forms saturate the exact result, the others truncate it.
      var saturated = false
      let bits = 8 << size
      let unsigned = operation == .ushl || operation == .urshl || operation == .uqshl || operation == .uqrshl
      let rounding = operation == .srshl || operation == .urshl || operation == .sqrshl || operation == .uqrshl
      let saturating = operation == .sqshl || operation == .uqshl || operation == .sqrshl || operation == .uqrshl
      for e in 0..<elements {
        let a = n.element(e, size)
        let x = unsigned ? Int128(a) : Int128(A64Core.signed(a, size))
        let shift = Int(Int8(truncatingIfNeeded: m.element(e, size)))
        var exact: Int128
        if shift >= 0 {
          // Past 64 only the sign (and whether x is zero) matters for saturation.
          exact = shift >= 64 ? (x == 0 ? 0 : x > 0 ? 1 << 100 : -(1 << 100)) : x << Int128(shift)
          if !saturating && shift >= bits { exact = 0 }
        } else {
          let right = min(-shift, 100)
          exact = (x + (rounding ? 1 << Int128(right - 1) : 0)) >> Int128(right)
        }
        let value: UInt64
        if saturating {
          (value, saturated) = A64Core.saturate(exact, size, signed: !unsigned, saturated)
        } else {
          value = UInt64(truncatingIfNeeded: exact)
        }
        result.setElement(e, size, value)
      }
      if saturated { state.fpsr |= A64Core.cumulativeSaturation }
    case .pmul:
      for e in 0..<elements {
        result.setElement(e, 0, A64Core.carrylessMultiply(n.element(e, 0), m.element(e, 0)))
      }
    case .sqadd, .uqadd, .sqsub, .uqsub:
      var saturated = false
      for e in 0..<elements {
        let a = n.element(e, size)
        let b = m.element(e, size)
        let value: UInt64
        switch operation {
        case .sqadd, .sqsub:
          let sa = A64Core.signed(a, size)
          let sb = A64Core.signed(b, size)
          let (exact, overflow) =
            operation == .sqadd ? sa.addingReportingOverflow(sb) : sa.subtractingReportingOverflow(sb)
          if overflow {
            // Only 64-bit elements overflow Int64; the true sum has the sign of `sa` then.
            value = UInt64(bitPattern: sa < 0 ? Int64.min : Int64.max)
            saturated = true
          } else {
            (value, saturated) = A64Core.saturate(exact, size, signed: true, saturated)
          }
        case .uqadd:
          let (sum, overflow) = a.addingReportingOverflow(b)
          let limit: UInt64 = size == 3 ? .max : (1 << UInt64(8 << size)) - 1
          if overflow || sum > limit {
            value = limit
            saturated = true
          } else {
            value = sum
          }
        default:
          if a < b {
            value = 0
            saturated = true
          } else {
            value = a - b
          }
        }
        result.setElement(e, size, value)
      }
      if saturated { state.fpsr |= A64Core.cumulativeSaturation }
    default:
      for e in 0..<elements {
        let (a, b) = pairwise ? pair(e) : (n.element(e, size), m.element(e, size))
        let sa = A64Core.signed(a, size)
        let sb = A64Core.signed(b, size)
        let value: UInt64
        switch operation {
        case .add, .addp: value = a &+ b
        case .shadd, .uhadd, .srhadd, .urhadd, .shsub, .uhsub:
          // Halving: the exact sum or difference (elements are at most 32 bits) shifted right.
          let signed = operation == .shadd || operation == .srhadd || operation == .shsub
          let x = signed ? sa : Int64(a)
          let y = signed ? sb : Int64(b)
          let rounding: Int64 = operation == .srhadd || operation == .urhadd ? 1 : 0
          let exact = operation == .shsub || operation == .uhsub ? x - y : x + y + rounding
          value = UInt64(bitPattern: exact >> 1)
        case .sabd: value = sa > sb ? UInt64(bitPattern: sa &- sb) : UInt64(bitPattern: sb &- sa)
        case .uabd: value = a > b ? a - b : b - a
        case .saba:
          value = d.element(e, size) &+ (sa > sb ? UInt64(bitPattern: sa &- sb) : UInt64(bitPattern: sb &- sa))
        case .uaba: value = d.element(e, size) &+ (a > b ? a - b : b - a)
        case .sub: value = a &- b
        case .mul: value = a &* b
        case .cmgt: value = sa > sb ? .max : 0
        case .cmhi: value = a > b ? .max : 0
        case .cmge: value = sa >= sb ? .max : 0
        case .cmhs: value = a >= b ? .max : 0
        case .cmtst: value = a & b != 0 ? .max : 0
        case .cmeq: value = a == b ? .max : 0
        case .smax, .smaxp: value = sa > sb ? a : b
        case .umax, .umaxp: value = a > b ? a : b
        case .smin, .sminp: value = sa < sb ? a : b
        case .mla: value = d.element(e, size) &+ a &* b
        case .mls: value = d.element(e, size) &- a &* b
        default: value = a < b ? a : b  // UMIN, UMINP
        }
        result.setElement(e, size, value)
      }
    }
    setVector(i.rd, result, full: i.is64)
  }

  mutating func simdTwoRegisterMisc(_ i: A64Instruction) throws(A64Exception) {
    try checkFloatingPointAccess()
    let operation = SIMDTwoRegisterMisc(rawValue: i.variant) ?? .not
    let n = vector(i.rn)
    let size = Int(i.size)
    let bits = 8 << size
    let elements = A64Core.lanes(i)
    var result = Vector128.zero
    switch operation {
    case .shll:
      // SHLL: the low (upper, Q = 1) half's elements widened and shifted left by their size.
      let count = 8 >> size
      for e in 0..<count {
        result.setElement(e, size + 1, n.element((i.is64 ? count : 0) + e, size) << UInt64(bits))
      }
      setVector(i.rd, result, full: true)
      return
    case .xtn, .sqxtn, .uqxtn, .sqxtun:
      // XTN writes the low half (XTN2, Q = 1: the upper half, keeping the low one); the
      // saturating forms clamp to the narrow range (SQXTUN: a signed source, an unsigned
      // result) and set FPSR.QC when they do. The scalar forms narrow one element.
      var d = i.is64 ? vector(i.rd) : Vector128.zero
      let count = i.setFlags ? 1 : 8 >> size
      var saturated = false
      for e in 0..<count {
        let wide = n.element(e, size + 1)
        var value = wide
        switch operation {
        case .sqxtn:
          (value, saturated) = A64Core.saturate(A64Core.signed(wide, size + 1), size, signed: true, saturated)
        case .sqxtun:
          (value, saturated) = A64Core.saturate(A64Core.signed(wide, size + 1), size, signed: false, saturated)
        case .uqxtn:
          let limit: UInt64 = (1 << UInt64(bits)) - 1
          if wide > limit {
            value = limit
            saturated = true
          }
        default: break
        }
        d.setElement(i.is64 ? count + e : e, size, value)
      }
      if saturated { state.fpsr |= A64Core.cumulativeSaturation }
      setVector(i.rd, d, full: true)
      return
    case .suqadd, .usqadd:
      // SUQADD: signed Vd plus unsigned Vn, saturated signed; USQADD: the other way round.
      let d = vector(i.rd)
      var saturated = false
      for e in 0..<elements {
        let signedSum: Bool = operation == .suqadd
        let x = signedSum ? Int128(A64Core.signed(d.element(e, size), size)) : Int128(d.element(e, size))
        let y = signedSum ? Int128(n.element(e, size)) : Int128(A64Core.signed(n.element(e, size), size))
        let value: UInt64
        (value, saturated) = A64Core.saturate(x + y, size, signed: signedSum, saturated)
        result.setElement(e, size, value)
      }
      if saturated { state.fpsr |= A64Core.cumulativeSaturation }
    case .sqabs, .sqneg:
      var saturated = false
      for e in 0..<elements {
        let a = A64Core.signed(n.element(e, size), size)
        let minimum = Int64.min >> Int64(64 - bits)
        let value: UInt64
        if a == minimum {
          value = UInt64(bitPattern: ~minimum)
          saturated = true
        } else {
          value = UInt64(bitPattern: operation == .sqneg || a < 0 ? -a : a)
        }
        result.setElement(e, size, value)
      }
      if saturated { state.fpsr |= A64Core.cumulativeSaturation }
    case .saddlp, .uaddlp, .sadalp, .uadalp:
      // Adjacent pairs summed into elements of twice the size (and added to Vd's for ADALP).
      let d = vector(i.rd)
      let signed = operation == .saddlp || operation == .sadalp
      for e in 0..<elements / 2 {
        func widened(_ k: Int) -> UInt64 {
          signed ? UInt64(bitPattern: A64Core.signed(n.element(k, size), size)) : n.element(k, size)
        }
        var sum = widened(2 * e) &+ widened(2 * e + 1)
        if operation == .sadalp || operation == .uadalp { sum &+= d.element(e, size + 1) }
        result.setElement(e, size + 1, sum)
      }
    case .rev64, .rev32, .rev16:
      let container = operation == .rev64 ? 64 : operation == .rev32 ? 32 : 16
      let perContainer = container / bits
      for e in 0..<elements {
        let base = e / perContainer * perContainer
        result.setElement(e, size, n.element(base + perContainer - 1 - e % perContainer, size))
      }
    case .fcvtl, .fcvtn, .fcvtxn:
      // FCVTL widens the low (Q = 0) or upper half of Vn; FCVTN narrows all of Vn into the
      // low half, or (FCVTN2) the upper one, keeping the low; FCVTXN rounds to odd.
      let wide = FPFormat(rawValue: i.size) ?? .double
      let narrow = FPFormat(rawValue: i.size - 1) ?? .single
      let count = i.setFlags ? 1 : 8 >> (size - 1)
      var environment = fpEnvironment
      if operation == .fcvtl {
        for e in 0..<count {
          let value = n.element((i.is64 ? count : 0) + e, size - 1)
          result.setElement(e, size, environment.convert(value, from: narrow, to: wide))
        }
      } else {
        result = i.is64 ? vector(i.rd) : .zero
        for e in 0..<count {
          let value = environment.convert(
            n.element(e, size), from: wide, to: narrow, rounding: operation == .fcvtxn ? .odd : nil)
          result.setElement((i.is64 ? count : 0) + e, size - 1, value)
        }
      }
      accumulate(environment)
      setVector(i.rd, result, full: true)
      return
    case .urecpe, .ursqrte:
      for e in 0..<elements {
        result.setElement(e, 2, FPEnvironment.unsignedEstimate(n.element(e, 2), squareRoot: operation == .ursqrte))
      }
    case .fabs, .fneg, .fsqrt, .scvtf, .ucvtf, .fcvtzs, .fcvtzu, .fcmgtZero, .fcmgeZero, .fcmeqZero, .fcmleZero,
      .fcmltZero, .frint, .frecpe, .frsqrte, .frecpx:
      let format = FPFormat(rawValue: i.size) ?? .single
      var environment = fpEnvironment
      for e in 0..<elements {
        let a = n.element(e, size)
        let value: UInt64
        switch operation {
        case .fabs: value = a & ~format.signBit
        case .fneg: value = a ^ format.signBit
        case .fsqrt: value = environment.squareRoot(a, format)
        case .frecpe: value = environment.reciprocalEstimate(a, format)
        case .frsqrte: value = environment.reciprocalSquareRootEstimate(a, format)
        case .frecpx: value = environment.reciprocalExponent(a, format)
        case .fcmgtZero: value = environment.compareGreater(a, 0, format) ? .max : 0
        case .fcmgeZero: value = environment.compareGreaterOrEqual(a, 0, format) ? .max : 0
        case .fcmeqZero: value = environment.compareEqual(a, 0, format) ? .max : 0
        case .fcmleZero: value = environment.compareGreaterOrEqual(0, a, format) ? .max : 0
        case .fcmltZero: value = environment.compareGreater(0, a, format) ? .max : 0
        case .scvtf, .ucvtf:
          value = environment.fromFixed(
            a, bits: bits, fractionBits: 0, unsigned: operation == .ucvtf, format, rounding: environment.rounding)
        case .frint:
          let rounding = FPEnvironment.Rounding(rawValue: i.condition) ?? environment.rounding
          value = environment.roundToIntegral(a, format, rounding: rounding, exact: i.amount == 1)
        default:
          value = environment.toFixed(
            a, format, fractionBits: 0, unsigned: operation == .fcvtzu, bits: bits,
            rounding: FPEnvironment.Rounding(rawValue: i.condition) ?? .zero)
        }
        result.setElement(e, size, value)
      }
      accumulate(environment)
    default:
      for e in 0..<elements {
        let a = n.element(e, size)
        let sa = A64Core.signed(a, size)
        let value: UInt64
        switch operation {
        case .cnt: value = UInt64(a.nonzeroBitCount)
        case .not: value = ~a
        case .rbit: value = UInt64(UInt8(truncatingIfNeeded: a).bitReversed)
        case .clz: value = UInt64(a.leadingZeroBitCount - (64 - bits))
        case .cls:
          let sameAsSign = sa < 0 ? ~a : a
          value = UInt64(min((sameAsSign << UInt64(64 - bits)).leadingZeroBitCount, bits) - 1)
        case .cmgtZero: value = sa > 0 ? .max : 0
        case .cmgeZero: value = sa >= 0 ? .max : 0
        case .cmeqZero: value = a == 0 ? .max : 0
        case .cmleZero: value = sa <= 0 ? .max : 0
        case .cmltZero: value = sa < 0 ? .max : 0
        case .abs: value = sa < 0 ? 0 &- a : a
        default: value = 0 &- a  // NEG
        }
        result.setElement(e, size, value)
      }
    }
    setVector(i.rd, result, full: i.is64)
  }

  mutating func simdAcrossLanes(_ i: A64Instruction) throws(A64Exception) {
    try checkFloatingPointAccess()
    let operation = SIMDAcrossLanes(rawValue: i.variant) ?? .addv
    let n = vector(i.rn)
    let size = Int(i.size)
    switch operation {
    case .faddp, .fmaxv, .fminv, .fmaxnmv, .fminnmv:
      // Reduce: each half reduced, then the two halves combined (two or four elements).
      let format = FPFormat(rawValue: i.size) ?? .single
      var environment = fpEnvironment
      func combine(_ a: UInt64, _ b: UInt64) -> UInt64 {
        switch operation {
        case .faddp: return environment.add(a, b, format)
        case .fmaxv: return environment.maxMin(a, b, format, maximum: true, numeric: false)
        case .fminv: return environment.maxMin(a, b, format, maximum: false, numeric: false)
        case .fmaxnmv: return environment.maxMin(a, b, format, maximum: true, numeric: true)
        default: return environment.maxMin(a, b, format, maximum: false, numeric: true)
        }
      }
      let elements = (i.is64 ? 16 : 8) >> size
      var value = combine(n.element(0, size), n.element(1, size))
      if elements == 4 { value = combine(value, combine(n.element(2, size), n.element(3, size))) }
      accumulate(environment)
      setScalar(i.rd, value)
      return
    default: break
    }
    let elements = (i.is64 ? 16 : 8) >> size
    var accumulator = n.element(0, size)
    var signedAccumulator = A64Core.signed(accumulator, size)
    if operation == .saddlv { accumulator = UInt64(bitPattern: signedAccumulator) }
    for e in 1..<elements {
      let a = n.element(e, size)
      let sa = A64Core.signed(a, size)
      switch operation {
      case .addv, .uaddlv: accumulator &+= a
      case .saddlv: accumulator &+= UInt64(bitPattern: sa)
      case .umaxv: accumulator = max(accumulator, a)
      case .uminv: accumulator = min(accumulator, a)
      case .smaxv: signedAccumulator = max(signedAccumulator, sa)
      case .sminv: signedAccumulator = min(signedAccumulator, sa)
      default: break
      }
    }
    if operation == .smaxv || operation == .sminv { accumulator = UInt64(bitPattern: signedAccumulator) }
    let resultSize = operation == .saddlv || operation == .uaddlv ? size + 1 : size
    var result = Vector128.zero
    result.setElement(0, resultSize, accumulator)
    setVector(i.rd, result, full: false)
  }

  mutating func simdCopy(_ i: A64Instruction) throws(A64Exception) {
    try checkFloatingPointAccess()
    let size = Int(i.size)
    let index = Int(i.imm)
    let elements = A64Core.lanes(i)
    switch SIMDCopy(rawValue: i.variant) ?? .dupElement {
    case .dupElement, .dupGeneral:
      let value = i.variant == SIMDCopy.dupElement.rawValue ? vector(i.rn).element(index, size) : reg(i.rn)
      var result = Vector128.zero
      for e in 0..<elements { result.setElement(e, size, value) }
      setVector(i.rd, result, full: i.is64)
    case .smov:
      let value = UInt64(bitPattern: A64Core.signed(vector(i.rn).element(index, size), size))
      state.setRegister(i.rd, i.is64 ? value : value & 0xffff_ffff)
    case .umov:
      state.setRegister(i.rd, vector(i.rn).element(index, size))
    case .insGeneral:
      var result = vector(i.rd)
      result.setElement(index, size, reg(i.rn))
      setVector(i.rd, result, full: true)
    case .insElement:
      var result = vector(i.rd)
      result.setElement(index, size, vector(i.rn).element(Int(i.imm2), size))
      setVector(i.rd, result, full: true)
    }
  }

  mutating func simdModifiedImmediate(_ i: A64Instruction) throws(A64Exception) {
    try checkFloatingPointAccess()
    let d = vector(i.rd)
    let result: Vector128
    switch SIMDImmediate(rawValue: i.variant) ?? .move {
    case .move: result = Vector128(low: i.imm, high: i.imm)
    case .orr: result = Vector128(low: d.low | i.imm, high: d.high | i.imm)
    case .bic: result = Vector128(low: d.low & ~i.imm, high: d.high & ~i.imm)
    }
    setVector(i.rd, result, full: i.is64)
  }

  mutating func simdShiftImmediate(_ i: A64Instruction) throws(A64Exception) {
    try checkFloatingPointAccess()
    let operation = SIMDShiftImmediate(rawValue: i.variant) ?? .shl
    let n = vector(i.rn)
    let d = vector(i.rd)
    let size = Int(i.size)
    let bits = 8 << size
    let shift = Int(i.amount)
    let elementMask: UInt64 = bits == 64 ? .max : (1 << UInt64(bits)) - 1
    func right(_ value: UInt64, signed: Bool) -> UInt64 {
      // A shift by the element's width gives the sign fill (or zero).
      if signed {
        return UInt64(bitPattern: A64Core.signed(value, size) >> Int64(min(shift, 63)))
      }
      return shift >= 64 ? 0 : value >> UInt64(shift)
    }
    var result = Vector128.zero
    /// An element as an exact integer: rounding constants and saturation need the bits
    /// above 64 that an element of 64 bits can reach.
    func wide(_ value: UInt64, _ size: Int, signed: Bool) -> Int128 {
      signed ? Int128(A64Core.signed(value, size)) : Int128(value)
    }
    func shiftRight(_ value: Int128, round: Bool) -> Int128 {
      (value + (round ? 1 << Int128(shift - 1) : 0)) >> Int128(shift)
    }
    var saturated = false
    switch operation {
    case .rshrn, .sqshrn, .uqshrn, .sqrshrn, .uqrshrn, .sqshrun, .sqrshrun:
      // Narrowing: elements of twice the size, shifted right (rounded for the R forms), then
      // truncated (RSHRN) or saturated to the narrow signed or unsigned range.
      result = i.is64 ? d : .zero
      let count = i.setFlags ? 1 : 8 >> size
      let signedSource = operation != .uqshrn && operation != .uqrshrn && operation != .rshrn
      let round = operation == .rshrn || operation == .sqrshrn || operation == .uqrshrn || operation == .sqrshrun
      for e in 0..<count {
        let value = shiftRight(wide(n.element(e, size + 1), size + 1, signed: signedSource), round: round)
        let narrowed: UInt64
        switch operation {
        case .rshrn: narrowed = UInt64(truncatingIfNeeded: value)
        case .sqshrn, .sqrshrn: (narrowed, saturated) = A64Core.saturate(value, size, signed: true, saturated)
        default: (narrowed, saturated) = A64Core.saturate(value, size, signed: false, saturated)
        }
        result.setElement(i.is64 ? count + e : e, size, narrowed)
      }
      if saturated { state.fpsr |= A64Core.cumulativeSaturation }
      setVector(i.rd, result, full: true)
      return
    case .srshr, .urshr, .srsra, .ursra, .sqshl, .uqshl, .sqshlu:
      for e in 0..<A64Core.lanes(i) {
        let a = n.element(e, size)
        let value: UInt64
        switch operation {
        case .srshr, .urshr, .srsra, .ursra:
          let signed = operation == .srshr || operation == .srsra
          let shifted = UInt64(truncatingIfNeeded: shiftRight(wide(a, size, signed: signed), round: true))
          value = operation == .srsra || operation == .ursra ? d.element(e, size) &+ shifted : shifted
        default:
          let shifted = wide(a, size, signed: operation != .uqshl) << Int128(shift)
          (value, saturated) = A64Core.saturate(shifted, size, signed: operation == .sqshl, saturated)
        }
        result.setElement(e, size, value)
      }
      if saturated { state.fpsr |= A64Core.cumulativeSaturation }
    case .shrn:
      result = i.is64 ? d : .zero
      let count = 8 >> size
      for e in 0..<count {
        result.setElement(i.is64 ? count + e : e, size, n.element(e, size + 1) >> UInt64(shift))
      }
      setVector(i.rd, result, full: true)
      return
    case .sshll, .ushll:
      let count = 8 >> size
      for e in 0..<count {
        let a = n.element(i.is64 ? count + e : e, size)
        let wide = operation == .sshll ? UInt64(bitPattern: A64Core.signed(a, size)) : a
        result.setElement(e, size + 1, wide << UInt64(shift))
      }
      setVector(i.rd, result, full: true)
      return
    case .scvtf, .ucvtf, .fcvtzs, .fcvtzu:
      let format = FPFormat(rawValue: i.size) ?? .single
      var environment = fpEnvironment
      for e in 0..<A64Core.lanes(i) {
        let a = n.element(e, size)
        let value =
          operation == .scvtf || operation == .ucvtf
          ? environment.fromFixed(
            a, bits: bits, fractionBits: shift, unsigned: operation == .ucvtf, format, rounding: environment.rounding)
          : environment.toFixed(
            a, format, fractionBits: shift, unsigned: operation == .fcvtzu, bits: bits, rounding: .zero)
        result.setElement(e, size, value)
      }
      accumulate(environment)
    default:
      let elements = A64Core.lanes(i)
      for e in 0..<elements {
        let a = n.element(e, size)
        let old = d.element(e, size)
        let value: UInt64
        switch operation {
        case .sshr: value = right(a, signed: true)
        case .ushr: value = right(a, signed: false)
        case .ssra: value = old &+ right(a, signed: true)
        case .usra: value = old &+ right(a, signed: false)
        case .shl: value = a << UInt64(shift)
        case .sli:
          let mask = (elementMask << UInt64(shift)) & elementMask
          value = old & ~mask | (a << UInt64(shift)) & mask
        default:
          // SRI: a shift by the element's width inserts nothing.
          let mask = shift >= 64 ? 0 : elementMask >> UInt64(shift)
          value = old & ~mask | right(a, signed: false) & mask
        }
        result.setElement(e, size, value)
      }
    }
    setVector(i.rd, result, full: i.is64)
  }

  mutating func simdPermute(_ i: A64Instruction) throws(A64Exception) {
    try checkFloatingPointAccess()
    let n = vector(i.rn)
    let m = vector(i.rm)
    let size = Int(i.size)
    let elements = (i.is64 ? 16 : 8) >> size
    let part = Int(i.variant >> 2)
    var result = Vector128.zero
    for e in 0..<elements {
      let value: UInt64
      switch i.variant & 3 {
      case 1:
        // UZP: the even (odd) elements of Vm:Vn.
        let source = 2 * e + part
        value = source < elements ? n.element(source, size) : m.element(source - elements, size)
      case 2:
        // TRN: pairs from even (odd) positions of both.
        let source = e & ~1 + part
        value = e & 1 == 0 ? n.element(source, size) : m.element(source, size)
      default:
        // ZIP: interleave the low (high) halves.
        let source = part * elements / 2 + e / 2
        value = e & 1 == 0 ? n.element(source, size) : m.element(source, size)
      }
      result.setElement(e, size, value)
    }
    setVector(i.rd, result, full: i.is64)
  }

  /// LD1-LD4/ST1-ST4 of one lane (the other lanes kept) and LD1R-LD4R (every lane, Q's
  /// width): consecutive elements to or from consecutive registers.
  mutating func simdLoadStoreSingle(_ i: A64Instruction) throws(A64Exception) {
    try checkFloatingPointAccess()
    let address = try baseRegister(i.rn)
    let size = Int(i.size)
    let bytes = 1 << size
    let count = Int(i.amount)
    let load = i.variant == LoadStoreKind.loadVector.rawValue
    var values: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    for s in 0..<count {
      let register = UInt8((Int(i.rd) + s) % 32)
      let at = address &+ UInt64(s * bytes)
      if load {
        let value = try read(at, size: bytes)
        switch s {
        case 0: values.0 = value
        case 1: values.1 = value
        case 2: values.2 = value
        default: values.3 = value
        }
      } else {
        try write(at, size: bytes, vector(register).element(Int(i.imm), size))
      }
    }
    if load {
      for s in 0..<count {
        let register = UInt8((Int(i.rd) + s) % 32)
        let value = [values.0, values.1, values.2, values.3][s]
        if i.condition == 1 {
          var result = Vector128.zero
          for e in 0..<((i.is64 ? 16 : 8) >> size) { result.setElement(e, size, value) }
          setVector(register, result, full: i.is64)
        } else {
          var result = vector(register)
          result.setElement(Int(i.imm), size, value)
          setVector(register, result, full: true)
        }
      }
    }
    if i.addressing == .postIndex {
      state.setRegisterOrSP(i.rn, address &+ (i.rm == 31 ? UInt64(count * bytes) : reg(i.rm)))
    }
  }

  /// Vector (or, for FP, scalar) by element: Vm's element `imm` against each element of Vn;
  /// the long forms widen Vn's low (Q = 0) or upper (Q = 1) half into double-width elements.
  mutating func simdByElement(_ i: A64Instruction) throws(A64Exception) {
    try checkFloatingPointAccess()
    let operation = SIMDByElement(rawValue: i.variant) ?? .mul
    let n = vector(i.rn)
    let d = vector(i.rd)
    let size = Int(i.size)
    let b = vector(i.rm).element(Int(i.imm), size)
    var result = Vector128.zero
    switch operation {
    case .fmla, .fmls, .fmul, .fmulx:
      let format = FPFormat(rawValue: i.size) ?? .single
      var environment = fpEnvironment
      for e in 0..<A64Core.lanes(i) {
        let a = n.element(e, size)
        let value: UInt64
        switch operation {
        case .fmul: value = environment.multiply(a, b, format)
        case .fmulx: value = environment.multiplyExtended(a, b, format)
        case .fmla: value = environment.multiplyAdd(d.element(e, size), a, b, format)
        default: value = environment.multiplyAdd(d.element(e, size), a ^ format.signBit, b, format)
        }
        result.setElement(e, size, value)
      }
      accumulate(environment)
      setVector(i.rd, result, full: i.is64)
    case .mla, .mls, .mul:
      for e in 0..<A64Core.lanes(i) {
        let product = n.element(e, size) &* b
        let old = d.element(e, size)
        result.setElement(e, size, operation == .mul ? product : operation == .mla ? old &+ product : old &- product)
      }
      setVector(i.rd, result, full: i.is64)
    case .sqdmulh, .sqrdmulh:
      var saturated = false
      for e in 0..<A64Core.lanes(i) {
        let value: UInt64
        (value, saturated) = A64Core.doublingMultiplyHigh(
          n.element(e, size), b, size, rounding: operation == .sqrdmulh, saturated)
        result.setElement(e, size, value)
      }
      if saturated { state.fpsr |= A64Core.cumulativeSaturation }
      setVector(i.rd, result, full: i.is64)
    case .sqdmull, .sqdmlal, .sqdmlsl:
      var saturated = false
      let count = i.setFlags ? 1 : 8 >> size
      for e in 0..<count {
        let value: UInt64
        (value, saturated) = A64Core.doublingMultiplyLong(
          n.element((i.is64 ? count : 0) + e, size), b, size, accumulate: d.element(e, size + 1),
          operation == .sqdmull ? 0 : operation == .sqdmlal ? 1 : -1, saturated)
        result.setElement(e, size + 1, value)
      }
      if saturated { state.fpsr |= A64Core.cumulativeSaturation }
      setVector(i.rd, result, full: !i.setFlags)
    default:
      let unsigned = operation == .umlal || operation == .umlsl || operation == .umull
      func widen(_ value: UInt64) -> UInt64 {
        unsigned ? value : UInt64(bitPattern: A64Core.signed(value, size))
      }
      let count = 8 >> size
      for e in 0..<count {
        let product = widen(n.element((i.is64 ? count : 0) + e, size)) &* widen(b)
        let old = d.element(e, size + 1)
        let value: UInt64
        switch operation {
        case .smlal, .umlal: value = old &+ product
        case .smlsl, .umlsl: value = old &- product
        default: value = product
        }
        result.setElement(e, size + 1, value)
      }
      setVector(i.rd, result, full: true)
    }
  }

  /// The widening forms: elements of the low (Q = 0) or upper (Q = 1) halves of Vn and Vm
  /// (Vm only for the W forms, whose Vn already has double-width elements), extended by
  /// sign or zero, then added, subtracted or multiplied into double-width elements.
  mutating func simdThreeDifferent(_ i: A64Instruction) throws(A64Exception) {
    try checkFloatingPointAccess()
    let operation = SIMDThreeDifferent(rawValue: i.variant & 0x7f) ?? .addl
    let unsigned = i.variant & 0x80 != 0
    let n = vector(i.rn)
    let m = vector(i.rm)
    let d = vector(i.rd)
    let size = Int(i.size)
    let count = i.setFlags ? 1 : 8 >> size
    let first = i.is64 ? count : 0
    func widen(_ v: Vector128, _ e: Int) -> UInt64 {
      let value = v.element(first + e, size)
      return unsigned ? value : UInt64(bitPattern: A64Core.signed(value, size))
    }
    var result = Vector128.zero
    if operation == .pmull {
      for e in 0..<count {
        result.setElement(e, 1, A64Core.carrylessMultiply(n.element(first + e, 0), m.element(first + e, 0)))
      }
      setVector(i.rd, result, full: true)
      return
    }
    if operation == .sqdmull || operation == .sqdmlal || operation == .sqdmlsl {
      var saturated = false
      for e in 0..<count {
        let value: UInt64
        (value, saturated) = A64Core.doublingMultiplyLong(
          n.element(first + e, size), m.element(first + e, size), size, accumulate: d.element(e, size + 1),
          operation == .sqdmull ? 0 : operation == .sqdmlal ? 1 : -1, saturated)
        result.setElement(e, size + 1, value)
      }
      if saturated { state.fpsr |= A64Core.cumulativeSaturation }
      setVector(i.rd, result, full: !i.setFlags)
      return
    }
    if operation == .addhn || operation == .subhn {
      // ADDHN, SUBHN (U: RADDHN, RSUBHN): the high halves of double-width sums, into the low
      // half of Vd (the upper one for the "2" forms, keeping the low).
      result = i.is64 ? d : .zero
      let bits = 8 << size
      for e in 0..<count {
        let a = n.element(e, size + 1)
        let b = m.element(e, size + 1)
        let exact = (operation == .addhn ? a &+ b : a &- b) &+ (unsigned ? 1 << UInt64(bits - 1) : 0)
        result.setElement(first + e, size, exact >> UInt64(bits))
      }
      setVector(i.rd, result, full: true)
      return
    }
    for e in 0..<count {
      let b = widen(m, e)
      let a = operation == .addw || operation == .subw ? n.element(e, size + 1) : widen(n, e)
      let value: UInt64
      switch operation {
      case .addl, .addw: value = a &+ b
      case .subl, .subw: value = a &- b
      case .mlal: value = d.element(e, size + 1) &+ a &* b
      case .mlsl: value = d.element(e, size + 1) &- a &* b
      case .mull: value = a &* b
      case .abdl, .abal:
        // The absolute difference of the widened elements (exact: they fit in 33 bits).
        let difference =
          unsigned ? (a > b ? a - b : b - a) : UInt64((Int64(bitPattern: a) - Int64(bitPattern: b)).magnitude)
        value = operation == .abal ? d.element(e, size + 1) &+ difference : difference
      case .addhn, .subhn, .pmull, .sqdmull, .sqdmlal, .sqdmlsl: value = 0  // handled above
      }
      result.setElement(e, size + 1, value)
    }
    setVector(i.rd, result, full: true)
  }

  /// EXT: bytes from position imm4 of Vm:Vn (Vn low).
  mutating func simdExtract(_ i: A64Instruction) throws(A64Exception) {
    try checkFloatingPointAccess()
    let n = vector(i.rn)
    let m = vector(i.rm)
    let bytes = i.is64 ? 16 : 8
    var result = Vector128.zero
    for e in 0..<bytes {
      let source = Int(i.amount) + e
      let value = source < bytes ? n.element(source, 0) : m.element(source - bytes, 0)
      result.setElement(e, 0, value)
    }
    setVector(i.rd, result, full: i.is64)
  }

  /// TBL, TBX: each byte of Vm indexes the table of 1-4 registers from Vn (wrapping at V31);
  /// an index past it gives 0 (TBL) or keeps Vd's byte (TBX).
  mutating func simdTableLookup(_ i: A64Instruction) throws(A64Exception) {
    try checkFloatingPointAccess()
    let indices = vector(i.rm)
    let d = vector(i.rd)
    let registers = Int(i.amount)
    var result = Vector128.zero
    for e in 0..<(i.is64 ? 16 : 8) {
      let index = Int(indices.element(e, 0))
      if index < 16 * registers {
        let table = vector(UInt8((Int(i.rn) + index / 16) % 32))
        result.setElement(e, 0, table.element(index % 16, 0))
      } else if i.variant == 1 {
        result.setElement(e, 0, d.element(e, 0))
      }
    }
    setVector(i.rd, result, full: i.is64)
  }

  /// LD1-LD4 and ST1-ST4 (multiple structures): element by element in the pseudocode's
  /// order; loads build the registers aside and write them only after every access succeeded.
  mutating func simdLoadStoreMultiple(_ i: A64Instruction) throws(A64Exception) {
    try checkFloatingPointAccess()
    let address = try baseRegister(i.rn)
    let size = Int(i.size)
    let bytes = 1 << size
    let elements = (i.is64 ? 16 : 8) >> size
    let structure = Int(i.ra)
    let repeats = structure == 1 ? Int(i.amount) : 1
    let load = i.variant == LoadStoreKind.loadVector.rawValue
    var registers = (0..<Int(i.amount)).map { vector(UInt8((Int(i.rd) + $0) % 32)) }
    var offset: UInt64 = 0
    for r in 0..<repeats {
      for e in 0..<elements {
        for s in 0..<structure {
          let k = r + s
          if load {
            registers[k].setElement(e, size, try read(address &+ offset, size: bytes))
          } else {
            try write(address &+ offset, size: bytes, registers[k].element(e, size))
          }
          offset &+= UInt64(bytes)
        }
      }
    }
    if load {
      for (k, value) in registers.enumerated() { setVector(UInt8((Int(i.rd) + k) % 32), value, full: i.is64) }
    }
    if i.addressing == .postIndex {
      state.setRegisterOrSP(i.rn, address &+ (i.rm == 31 ? offset : reg(i.rm)))
    }
  }
}
