/// The second-level switch for `.sse`: opcode byte and mandatory prefix (none, 66, F3, F2)
/// select the instruction (SDM Vol. 2, appendix A, table A-3). MMX forms (integer opcodes
/// without 66) are not implemented and not advertised in CPUID, so they are #UD, as are the
/// SSE3+ encodings that share these opcodes.
extension X86Core {
  mutating func sse(_ d: DecodedInstruction) throws(X86Exception) {
    let prefix = d.immediate2 & SSEPrefix.mask
    let opcode = d.sub
    // Instructions outside the SSE execution environment's CR0/CR4 rules come first.
    if opcode == 0xae { return try group15(d, prefix: prefix) }
    if opcode == 0xc3 {
      // MOVNTI m32/m64, r: an integer store with a non-temporal hint (SDM Vol. 2, MOVNTI).
      guard prefix == SSEPrefix.none && d.isMemory && d.operandSize >= 4 else { throw .invalidOpcode }
      return try write(d.segment, effectiveAddress(d), size: d.operandSize, regOperand(d))
    }
    guard isDefinedSSE(opcode, prefix, memory: d.isMemory) else { throw .invalidOpcode }
    try checkSSEAvailable()
    let packedDouble = prefix == SSEPrefix.p66
    switch opcode {
    case 0x10...0x13, 0x16, 0x17, 0x28, 0x29, 0x2b, 0x50, 0x6e, 0x6f, 0x7e, 0x7f, 0xc4, 0xc5, 0xd6, 0xd7, 0xe7, 0xf7:
      try sseMove(d, prefix: prefix)
    case 0x2a...0x2d, 0x5a, 0x5b, 0xe6: try sseConvert(d, prefix: prefix)
    case 0x2e, 0x2f:
      try compareOrdered(d, double: packedDouble, signalling: opcode == 0x2f)
    case 0x51, 0x58, 0x59, 0x5c...0x5f:
      let operation: FloatOperation =
        switch opcode {
        case 0x51: .sqrt
        case 0x58: .add
        case 0x59: .mul
        case 0x5c: .sub
        case 0x5d: .min
        case 0x5e: .div
        default: .max
        }
      try floatArithmetic(d, operation, prefix: prefix)
    case 0x52, 0x53: try reciprocalEstimate(d, squareRoot: opcode == 0x52, scalar: prefix == SSEPrefix.f3)
    case 0x54...0x57:
      let a = xmm(d.reg)
      let b = try vectorSource(d)
      let result: UInt128 =
        switch opcode {
        case 0x54: a & b
        case 0x55: ~a & b
        case 0x56: a | b
        default: a ^ b
        }
      setXMM(d.reg, result)
    case 0xc2: try floatCompare(d, prefix: prefix)
    case 0xc6:
      let a = xmm(d.reg)
      let b = try vectorSource(d)
      let imm = Int(d.immediate)
      if packedDouble {
        // SHUFPD: low from the destination, high from the source, each picked by one bit.
        setXMM(d.reg, UInt128(lane(b, (imm >> 1) & 1, width: 64)) << 64 | UInt128(lane(a, imm & 1, width: 64)))
      } else {
        var result: UInt128 = 0
        for index in 0..<4 {
          let pick = (imm >> (index * 2)) & 3
          result = withLane(result, index, width: 32, lane(index < 2 ? a : b, pick, width: 32))
        }
        setXMM(d.reg, result)
      }
    case 0x14, 0x15:
      // UNPCKL/HPS and PD interleave like PUNPCKL/HDQ and PUNPCKL/HQDQ.
      setXMM(d.reg, interleave(xmm(d.reg), try vectorSource(d), width: packedDouble ? 64 : 32, high: opcode == 0x15))
    default:
      try sseInteger(d, opcode: opcode)
    }
  }

  /// Whether `opcode` with `prefix` is an SSE/SSE2 instruction (and the register/memory form
  /// it was given is allowed): everything else here is #UD.
  func isDefinedSSE(_ opcode: UInt8, _ prefix: UInt16, memory: Bool) -> Bool {
    let none = prefix == SSEPrefix.none
    let p66 = prefix == SSEPrefix.p66
    let f3 = prefix == SSEPrefix.f3
    let f2 = prefix == SSEPrefix.f2
    switch opcode {
    case 0x10, 0x11, 0x58, 0x59, 0x5c...0x5f, 0x51, 0xc2: return true
    case 0x12, 0x16: return none || (p66 && memory)
    case 0x13, 0x17, 0x2b: return (none || p66) && memory
    case 0x14, 0x15, 0x28, 0x29, 0x2e, 0x2f, 0x54...0x57, 0xc6: return none || p66
    case 0x2a, 0x2c, 0x2d: return f3 || f2
    case 0x50: return (none || p66) && !memory
    case 0x52, 0x53: return none || f3
    case 0x5a: return true
    case 0x5b: return !f2
    case 0x6f, 0x7f: return p66 || f3
    case 0x70: return !none
    case 0x71...0x73: return p66 && !memory
    case 0x7e: return p66 || f3
    case 0xc5, 0xd7, 0xf7: return p66 && !memory
    case 0xd6: return p66
    case 0xe6: return !none
    case 0xe7: return p66 && memory
    case 0xd0, 0x77...0x7d, 0xf0, 0xff: return false  // SSE3 ADDSUB/HADD/LDDQU, EMMS (MMX), UD0
    case 0x60...0x6e, 0x74...0x76, 0xc4, 0xd1...0xd5, 0xd8...0xdf, 0xe0...0xe5, 0xe8...0xef, 0xf1...0xfe: return p66
    default: return false
    }
  }
}
