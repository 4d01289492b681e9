/// The Advanced SIMD arithmetic (C7.2): three same, two-register misc, across lanes, three
/// different and by element, integer and FP, element by element as the ARM ARM's pseudocode
/// loops, on `Vector128` values; a 64-bit form (Q = 0) works on the low half and zeroes the
/// upper one, a scalar form (`setFlags`) on one element.
extension A64Core {
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
}
