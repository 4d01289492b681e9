/// BT BTS BTR BTC, BSF BSR, BSWAP (SDM Vol. 2).
extension X86Core {
  /// `sub`: 0 BT, 1 BTS, 2 BTR, 3 BTC. CF gets the bit; ZF is unchanged; OF SF AF PF are
  /// undefined and left as they were. A register bit offset on a memory operand addresses
  /// bits beyond the operand (signed, in operand-size units); an immediate one is taken modulo
  /// the operand size.
  mutating func bitTest(_ d: DecodedInstruction, immediate: Bool) throws(X86Exception) {
    let size = d.operandSize
    let bits = UInt64(size) * 8
    let offset = immediate ? d.immediate : regOperand(d)
    let bit = offset & (bits - 1)
    var address: UInt64 = 0
    let value: UInt64
    if d.isMemory {
      address = effectiveAddress(d)
      if !immediate {
        let units = Int64(bitPattern: signExtend(offset, size: size)) >> Int64(bits.trailingZeroBitCount)
        address = (address &+ UInt64(bitPattern: units &* Int64(size))) & sizeMask(d.addressSize)
      }
      value = try readOperand(d, address, size: size)
    } else {
      value = register(d.rm, size: size, d)
    }
    let carry = (value >> bit) & 1 != 0
    if d.sub != 0 {
      let result: UInt64 =
        switch d.sub {
        case 1: value | 1 << bit
        case 2: value & ~(1 << bit)
        default: value ^ 1 << bit
        }
      if d.isMemory {
        try write(d.segment, address, size: size, result)
      } else {
        setRegister(d.rm, size: size, d, result)
      }
    }
    state.setFlag(RFlagsBit.carry, carry)
  }

  /// BSF/BSR: ZF=1 and the destination unchanged when the source is 0 (the SDM says
  /// "undefined"; Intel and AMD both leave it); CF OF SF AF PF undefined, left as they were.
  mutating func bitScan(_ d: DecodedInstruction, forward: Bool) throws(X86Exception) {
    let source = try readRM(d)
    if source == 0 {
      state.setFlag(RFlagsBit.zero, true)
      return
    }
    let index = forward ? source.trailingZeroBitCount : 63 - source.leadingZeroBitCount
    setRegOperand(d, UInt64(index))
    state.setFlag(RFlagsBit.zero, false)
  }

  /// BSWAP r32/r64. With a 16-bit operand the result is undefined; we write 0 (as Bochs does).
  mutating func bswap(_ d: DecodedInstruction) {
    switch d.operandSize {
    case 8: setRegister(d.rm, size: 8, d, state.gpr[Int(d.rm & 15)].byteSwapped)
    case 4: setRegister(d.rm, size: 4, d, UInt64(UInt32(truncatingIfNeeded: state.gpr[Int(d.rm & 15)]).byteSwapped))
    default: setRegister(d.rm, size: 2, d, 0)
    }
  }
}
