/// ROL ROR RCL RCR SHL SHR SAR, SHLD, SHRD (SDM Vol. 2, "RCL/RCR/ROL/ROR", "SAL/SAR/SHL/SHR",
/// SHLD, SHRD). Flags are written eagerly; a masked count of 0 changes no flag and no value
/// (a 32-bit register destination is still zero-extended, as on hardware). Where the SDM
/// leaves a flag undefined (OF for counts above 1, AF after shifts, CF for byte/word shifts
/// past the width), we write a deterministic value; `UndefinedFlags` lists which.
extension X86Core {
  private mutating func shiftCount(_ d: DecodedInstruction) -> UInt64 {
    let raw = d.has(DecodedInstruction.Flag.countInCL) ? state.gpr[1] : d.immediate
    return raw & (d.operandSize == 8 ? 0x3f : 0x1f)
  }

  private mutating func setCarryOverflow(carry: Bool, overflow: Bool) {
    state.materializeFlags()
    var bits = state.flagBits & ~(RFlagsBit.carry | RFlagsBit.overflow)
    if carry { bits |= RFlagsBit.carry }
    if overflow { bits |= RFlagsBit.overflow }
    state.flagBits = bits
  }

  /// The destination of a shift (its address when in memory) and its value; nil for a count
  /// of 0, which changes neither value nor flags but still writes a register destination
  /// back, so a 32-bit one has its upper half cleared (seen on hardware by the native
  /// cross-check).
  @inline(__always)
  private mutating func shiftDestination(_ d: DecodedInstruction, count: UInt64) throws(X86Exception) -> (
    address: UInt64, value: UInt64
  )? {
    let size = d.operandSize
    let address = d.isMemory ? effectiveAddress(d) : 0
    let value = d.isMemory ? try readOperand(d, address, size: size) : register(d.rm, size: size, d)
    if count == 0 {
      if !d.isMemory { setRegister(d.rm, size: size, d, value) }
      return nil
    }
    return (address, value)
  }

  mutating func shiftRm(_ d: DecodedInstruction) throws(X86Exception) {
    let count = shiftCount(d)
    let size = d.operandSize
    guard let (address, value) = try shiftDestination(d, count: count) else { return }
    let bits = UInt64(size) * 8
    let mask = sizeMask(size)
    var result: UInt64
    switch d.sub {
    case 0:  // ROL
      let rotate = count % bits
      result = rotate == 0 ? value : (value << rotate | value >> (bits - rotate)) & mask
      let carry = result & 1 != 0
      setCarryOverflow(carry: carry, overflow: topBit(result, bits) != carry)
    case 1:  // ROR
      let rotate = count % bits
      result = rotate == 0 ? value : (value >> rotate | value << (bits - rotate)) & mask
      setCarryOverflow(carry: topBit(result, bits), overflow: topBit(result, bits) != (result >> (bits - 2) & 1 != 0))
    case 2, 3:  // RCL, RCR: rotate through CF, one bit per step (count is at most 63)
      let rotate = size <= 2 ? count % (bits + 1) : count
      var carry = carryFlag
      result = value
      let overflowBefore = topBit(value, bits) != carry
      if d.sub == 2 {
        for _ in 0..<rotate {
          let out = topBit(result, bits)
          result = (result << 1 | (carry ? 1 : 0)) & mask
          carry = out
        }
        setCarryOverflow(carry: carry, overflow: topBit(result, bits) != carry)
      } else {
        for _ in 0..<rotate {
          let out = result & 1 != 0
          result = result >> 1 | (carry ? 1 << (bits - 1) : 0)
          carry = out
        }
        setCarryOverflow(carry: carry, overflow: overflowBefore)
      }
    case 5:  // SHR
      result = count >= 64 ? 0 : value >> count
      let carry = count - 1 < 64 && (value >> (count - 1)) & 1 != 0
      setShiftFlags(result, size: size, carry: carry, overflow: topBit(value, bits))
    case 7:  // SAR
      let signed = Int64(bitPattern: signExtend(value, size: size))
      result = UInt64(bitPattern: signed >> Int64(min(count, 63))) & mask
      setShiftFlags(result, size: size, carry: (signed >> Int64(min(count - 1, 63))) & 1 != 0, overflow: false)
    default:  // 4 SHL/SAL, and 6, which CPUs execute as SHL
      result = count >= 64 ? 0 : (value << count) & mask
      let carry = count <= bits && (value >> (bits - count)) & 1 != 0
      setShiftFlags(result, size: size, carry: carry, overflow: topBit(result, bits) != carry)
    }
    if d.isMemory {
      try write(d.segment, address, size: size, result)
    } else {
      setRegister(d.rm, size: size, d, result)
    }
  }

  private mutating func setShiftFlags(_ result: UInt64, size: UInt8, carry: Bool, overflow: Bool) {
    state.setStatusFlags(result: result, size: size, carry: carry, overflow: overflow)
  }

  /// SHLD/SHRD r/m, reg, count: shift the destination, filling from the register.
  mutating func doubleShift(_ d: DecodedInstruction, left: Bool) throws(X86Exception) {
    let count = shiftCount(d)
    let size = d.operandSize
    guard let (address, value) = try shiftDestination(d, count: count) else { return }
    let bits = UInt64(size) * 8
    let mask = sizeMask(size)
    let fill = regOperand(d)
    // A count past a 16-bit operand's width is undefined; shifting the 128-bit pair gives a value.
    let pair: UInt128 = left ? UInt128(value) << bits | UInt128(fill) : UInt128(fill) << bits | UInt128(value)
    let result: UInt64
    let carry: Bool
    if left {
      result = UInt64(truncatingIfNeeded: (pair << count) >> bits) & mask
      carry = (pair >> (2 * bits - count)) & 1 != 0
    } else {
      result = UInt64(truncatingIfNeeded: pair >> count) & mask
      carry = (pair >> (count - 1)) & 1 != 0
    }
    let signChanged = (result ^ value) >> (bits - 1) & 1 != 0
    setShiftFlags(result, size: size, carry: carry, overflow: signChanged)
    if d.isMemory {
      try write(d.segment, address, size: size, result)
    } else {
      setRegister(d.rm, size: size, d, result)
    }
  }
}

/// The most significant bit of a `bits`-wide value.
@inline(__always) private func topBit(_ value: UInt64, _ bits: UInt64) -> Bool { value >> (bits - 1) & 1 != 0 }
