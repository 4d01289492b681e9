/// The Advanced SIMD shifts by immediate (C7.2): plain, rounding, accumulating, inserting,
/// narrowing, widening and saturating, and the fixed-point conversions that share the group.
extension A64Core {
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
}
