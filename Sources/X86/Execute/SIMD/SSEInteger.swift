/// SSE2 integer SIMD on XMM registers (66-prefixed forms; SDM Vol. 1, 11.4.3 and the Vol. 2
/// pages of each instruction). Lanes are handled by plain loops over a `PackedIntegerOp`
/// switch: no closures on the per-instruction path.
enum PackedIntegerOp {
  case add, sub, addSigned, addUnsigned, subSigned, subUnsigned
  case equal, greaterSigned, minUnsigned, maxUnsigned, minSigned, maxSigned, average
  case mulLow, mulHighSigned, mulHighUnsigned
}

@inline(__always) func signExtendLane(_ value: UInt64, width: Int) -> Int64 {
  width == 64 ? Int64(bitPattern: value) : Int64(bitPattern: value << UInt64(64 - width)) >> Int64(64 - width)
}

@inline(__always) func saturateSigned(_ value: Int64, width: Int) -> UInt64 {
  let maximum = Int64(1) << Int64(width - 1) - 1
  let minimum = -maximum - 1
  return UInt64(bitPattern: min(max(value, minimum), maximum)) & ((1 << UInt64(width)) - 1)
}

@inline(__always) func saturateUnsigned(_ value: Int64, width: Int) -> UInt64 {
  UInt64(min(max(value, 0), Int64(1) << Int64(width) - 1))
}

func packedInteger(_ op: PackedIntegerOp, _ a: UInt128, _ b: UInt128, width: Int) -> UInt128 {
  let mask: UInt64 = width == 64 ? ~0 : (1 << UInt64(width)) - 1
  var result: UInt128 = 0
  for index in 0..<(128 / width) {
    let x = lane(a, index, width: width)
    let y = lane(b, index, width: width)
    let value: UInt64
    switch op {
    case .add: value = x &+ y
    case .sub: value = x &- y
    case .addSigned:
      value = saturateSigned(signExtendLane(x, width: width) + signExtendLane(y, width: width), width: width)
    case .subSigned:
      value = saturateSigned(signExtendLane(x, width: width) - signExtendLane(y, width: width), width: width)
    case .addUnsigned: value = saturateUnsigned(Int64(x) + Int64(y), width: width)
    case .subUnsigned: value = saturateUnsigned(Int64(x) - Int64(y), width: width)
    case .equal: value = x == y ? mask : 0
    case .greaterSigned: value = signExtendLane(x, width: width) > signExtendLane(y, width: width) ? mask : 0
    case .minUnsigned: value = min(x, y)
    case .maxUnsigned: value = max(x, y)
    case .minSigned: value = signExtendLane(x, width: width) < signExtendLane(y, width: width) ? x : y
    case .maxSigned: value = signExtendLane(x, width: width) > signExtendLane(y, width: width) ? x : y
    case .average: value = (x + y + 1) >> 1
    case .mulLow: value = x &* y
    case .mulHighSigned:
      value = UInt64(bitPattern: (signExtendLane(x, width: width) * signExtendLane(y, width: width)) >> Int64(width))
    case .mulHighUnsigned: value = (x * y) >> UInt64(width)
    }
    result |= UInt128(value & mask) << (index * width)
  }
  return result
}

/// PUNPCKL/H*: lanes of the low (or high) halves of `a` and `b`, alternating, `a` first.
func interleave(_ a: UInt128, _ b: UInt128, width: Int, high: Bool) -> UInt128 {
  let count = 64 / width
  let first = high ? count : 0
  var result: UInt128 = 0
  for index in 0..<count {
    result = withLane(result, 2 * index, width: width, lane(a, first + index, width: width))
    result = withLane(result, 2 * index + 1, width: width, lane(b, first + index, width: width))
  }
  return result
}

/// PACKSSWB/PACKUSWB/PACKSSDW: the destination's lanes narrowed into the low half, the
/// source's into the high half, each saturated.
func pack(_ a: UInt128, _ b: UInt128, width: Int, unsignedResult: Bool) -> UInt128 {
  let count = 128 / width
  var result: UInt128 = 0
  for index in 0..<(2 * count) {
    let source = index < count ? a : b
    let value = signExtendLane(lane(source, index % count, width: width), width: width)
    let narrow =
      unsignedResult ? saturateUnsigned(value, width: width / 2) : saturateSigned(value, width: width / 2)
    result = withLane(result, index, width: width / 2, narrow)
  }
  return result
}

/// Shifts every lane by `count` (counts past the lane width give 0, or the sign for SRA).
func shiftLanes(_ v: UInt128, width: Int, count: UInt64, kind: UInt8) -> UInt128 {
  var result: UInt128 = 0
  for index in 0..<(128 / width) {
    let x = lane(v, index, width: width)
    let value: UInt64
    switch kind {
    case 2: value = count >= UInt64(width) ? 0 : x >> count  // PSRL
    case 4:  // PSRA
      let shift = min(count, UInt64(width - 1))
      value = UInt64(bitPattern: signExtendLane(x, width: width) >> Int64(shift))
    default: value = count >= UInt64(width) ? 0 : x << count  // PSLL
    }
    result = withLane(result, index, width: width, value)
  }
  return result
}

extension X86Core {
  mutating func sseInteger(_ d: DecodedInstruction, opcode: UInt8) throws(X86Exception) {
    if opcode >= 0x71 && opcode <= 0x73 { return try shiftImmediate(d, opcode: opcode) }
    let a = xmm(d.reg)
    let b = try vectorSource(d)
    let result: UInt128
    switch opcode {
    case 0x60, 0x61, 0x62, 0x6c:
      result = interleave(a, b, width: opcode == 0x6c ? 64 : 8 << Int(opcode & 3), high: false)
    case 0x68, 0x69, 0x6a, 0x6d:
      result = interleave(a, b, width: opcode == 0x6d ? 64 : 8 << Int(opcode & 3), high: true)
    case 0x63: result = pack(a, b, width: 16, unsignedResult: false)
    case 0x67: result = pack(a, b, width: 16, unsignedResult: true)
    case 0x6b: result = pack(a, b, width: 32, unsignedResult: false)
    case 0x64, 0x65, 0x66: result = packedInteger(.greaterSigned, a, b, width: 8 << Int(opcode & 3))
    case 0x74, 0x75, 0x76: result = packedInteger(.equal, a, b, width: 8 << Int(opcode & 3))
    case 0x70:
      let imm = Int(d.immediate)
      let prefix = d.immediate2 & SSEPrefix.mask
      var value = b
      if prefix == SSEPrefix.p66 {
        // PSHUFD: each destination dword picks a source dword by two immediate bits.
        for index in 0..<4 { value = withLane(value, index, width: 32, lane(b, (imm >> (2 * index)) & 3, width: 32)) }
      } else {
        // PSHUFLW (F2) shuffles the low four words, PSHUFHW (F3) the high four.
        let base = prefix == SSEPrefix.f2 ? 0 : 4
        for index in 0..<4 {
          value = withLane(value, base + index, width: 16, lane(b, base + (imm >> (2 * index)) & 3, width: 16))
        }
      }
      result = value
    case 0xd1, 0xd2, 0xd3, 0xe1, 0xe2, 0xf1, 0xf2, 0xf3:
      // Shift by the source's low quadword.
      let count = UInt64(truncatingIfNeeded: b)
      let width = 8 << Int(opcode & 3)
      result = shiftLanes(a, width: width, count: count, kind: opcode < 0xe0 ? 2 : (opcode < 0xf0 ? 4 : 6))
    case 0xd4: result = packedInteger(.add, a, b, width: 64)
    case 0xfb: result = packedInteger(.sub, a, b, width: 64)
    case 0xd5: result = packedInteger(.mulLow, a, b, width: 16)
    case 0xe5: result = packedInteger(.mulHighSigned, a, b, width: 16)
    case 0xe4: result = packedInteger(.mulHighUnsigned, a, b, width: 16)
    case 0xd8, 0xd9: result = packedInteger(.subUnsigned, a, b, width: opcode == 0xd8 ? 8 : 16)
    case 0xdc, 0xdd: result = packedInteger(.addUnsigned, a, b, width: opcode == 0xdc ? 8 : 16)
    case 0xe8, 0xe9: result = packedInteger(.subSigned, a, b, width: opcode == 0xe8 ? 8 : 16)
    case 0xec, 0xed: result = packedInteger(.addSigned, a, b, width: opcode == 0xec ? 8 : 16)
    case 0xda: result = packedInteger(.minUnsigned, a, b, width: 8)
    case 0xde: result = packedInteger(.maxUnsigned, a, b, width: 8)
    case 0xea: result = packedInteger(.minSigned, a, b, width: 16)
    case 0xee: result = packedInteger(.maxSigned, a, b, width: 16)
    case 0xe0, 0xe3: result = packedInteger(.average, a, b, width: opcode == 0xe0 ? 8 : 16)
    case 0xdb: result = a & b
    case 0xdf: result = ~a & b
    case 0xeb: result = a | b
    case 0xef: result = a ^ b
    case 0xf4:
      // PMULUDQ: the even dwords, multiplied to full quadwords.
      result =
        UInt128(lane(a, 0, width: 32) * lane(b, 0, width: 32))
        | UInt128(lane(a, 2, width: 32) * lane(b, 2, width: 32)) << 64
    case 0xf5:
      // PMADDWD: signed word products, adjacent pairs added (0x8000·0x8000·2 wraps to 0x80000000).
      var value: UInt128 = 0
      for index in 0..<4 {
        let low =
          signExtendLane(lane(a, 2 * index, width: 16), width: 16)
          * signExtendLane(lane(b, 2 * index, width: 16), width: 16)
        let high =
          signExtendLane(lane(a, 2 * index + 1, width: 16), width: 16)
          * signExtendLane(lane(b, 2 * index + 1, width: 16), width: 16)
        value = withLane(value, index, width: 32, UInt64(bitPattern: low &+ high))
      }
      result = value
    case 0xf6:
      // PSADBW: per quadword, the sum of absolute byte differences in its low word.
      var value: UInt128 = 0
      for half in 0..<2 {
        var sum: UInt64 = 0
        for index in 0..<8 {
          let x = lane(a, half * 8 + index, width: 8)
          let y = lane(b, half * 8 + index, width: 8)
          sum += x > y ? x - y : y - x
        }
        value |= UInt128(sum) << (64 * half)
      }
      result = value
    case 0xf8...0xfa: result = packedInteger(.sub, a, b, width: 8 << Int(opcode & 3))
    case 0xfc...0xfe: result = packedInteger(.add, a, b, width: 8 << Int(opcode & 3))
    default: throw .invalidOpcode
    }
    setXMM(d.reg, result)
  }

  /// 66 0F 71-73 /r ib: PSRLW/PSRAW/PSLLW, PSRLD/PSRAD/PSLLD, PSRLQ/PSRLDQ/PSLLQ/PSLLDQ by imm8.
  mutating func shiftImmediate(_ d: DecodedInstruction, opcode: UInt8) throws(X86Exception) {
    let kind = d.reg & 7
    let value = xmm(d.rm)
    let count = d.immediate & 0xff
    var result: UInt128 = 0
    switch (opcode, kind) {
    case (0x71, 2), (0x71, 4), (0x71, 6): result = shiftLanes(value, width: 16, count: count, kind: kind)
    case (0x72, 2), (0x72, 4), (0x72, 6): result = shiftLanes(value, width: 32, count: count, kind: kind)
    case (0x73, 2), (0x73, 6): result = shiftLanes(value, width: 64, count: count, kind: kind)
    case (0x73, 3): result = count > 15 ? 0 : value >> (count * 8)  // PSRLDQ: bytes
    case (0x73, 7): result = count > 15 ? 0 : value << (count * 8)  // PSLLDQ
    default:
      // Other /r values in these groups are undefined (MMX-only or reserved): #UD.
      throw .invalidOpcode
    }
    setXMM(d.rm, result)
  }
}
