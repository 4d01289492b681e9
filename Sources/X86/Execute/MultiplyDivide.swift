/// MUL, IMUL (one, two and three operands), DIV, IDIV (SDM Vol. 2).
///
/// MUL/IMUL set CF=OF when the high half is significant; SF ZF AF PF are undefined, and we
/// set SF ZF PF from the low half and clear AF. DIV/IDIV leave every flag as it was (all six
/// are undefined). Division raises #DE for a zero divisor or a quotient that does not fit.
extension X86Core {
  /// The double-width accumulator pair: AX for bytes, else rDX:rAX.
  private mutating func wideAccumulator(_ size: UInt8) -> UInt128 {
    if size == 1 { return UInt128(state.gpr[0] & 0xffff) }
    let mask = sizeMask(size)
    return UInt128(state.gpr[2] & mask) << (UInt64(size) * 8) | UInt128(state.gpr[0] & mask)
  }

  private mutating func setWideAccumulator(low: UInt64, high: UInt64, _ d: DecodedInstruction) {
    if d.operandSize == 1 {
      setRegister(0, size: 2, d, (high & 0xff) << 8 | (low & 0xff))
    } else {
      setRegister(0, size: d.operandSize, d, low)
      setRegister(2, size: d.operandSize, d, high)
    }
  }

  private mutating func setMultiplyFlags(overflow: Bool, low: UInt64, size: UInt8) {
    state.setStatusFlags(result: low, size: size, carry: overflow, overflow: overflow)
  }

  mutating func mulRm(_ d: DecodedInstruction) throws(X86Exception) {
    let size = d.operandSize
    let bits = UInt64(size) * 8
    let product = UInt128(state.gpr[0] & sizeMask(size)) * UInt128(try readRM(d))
    let low = UInt64(truncatingIfNeeded: product) & sizeMask(size)
    let high = UInt64(truncatingIfNeeded: product >> bits) & sizeMask(size)
    setWideAccumulator(low: low, high: high, d)
    setMultiplyFlags(overflow: high != 0, low: low, size: size)
  }

  mutating func imulRm(_ d: DecodedInstruction) throws(X86Exception) {
    let size = d.operandSize
    let bits = UInt64(size) * 8
    let product =
      Int128(Int64(bitPattern: signExtend(state.gpr[0], size: size)))
      * Int128(Int64(bitPattern: signExtend(try readRM(d), size: size)))
    let low = UInt64(truncatingIfNeeded: product) & sizeMask(size)
    let high = UInt64(truncatingIfNeeded: product >> bits) & sizeMask(size)
    setWideAccumulator(low: low, high: high, d)
    setMultiplyFlags(overflow: Int128(Int64(bitPattern: signExtend(low, size: size))) != product, low: low, size: size)
  }

  /// IMUL r, r/m and IMUL r, r/m, imm: the product truncated; CF=OF when truncation lost bits.
  mutating func imulRegRm(_ d: DecodedInstruction, multiplier: UInt64?) throws(X86Exception) {
    let size = d.operandSize
    let source = Int64(bitPattern: signExtend(try readRM(d), size: size))
    let other = Int64(bitPattern: signExtend(multiplier ?? regOperand(d), size: size))
    let product = Int128(source) * Int128(other)
    let low = UInt64(truncatingIfNeeded: product) & sizeMask(size)
    setRegOperand(d, low)
    setMultiplyFlags(overflow: Int128(Int64(bitPattern: signExtend(low, size: size))) != product, low: low, size: size)
  }

  mutating func divRm(_ d: DecodedInstruction) throws(X86Exception) {
    let size = d.operandSize
    let divisor = UInt128(try readRM(d))
    if divisor == 0 { throw .divideError }
    let (quotient, remainder) = wideAccumulator(size).quotientAndRemainder(dividingBy: divisor)
    if quotient > UInt128(sizeMask(size)) { throw .divideError }
    setWideAccumulator(low: UInt64(truncatingIfNeeded: quotient), high: UInt64(truncatingIfNeeded: remainder), d)
  }

  mutating func idivRm(_ d: DecodedInstruction) throws(X86Exception) {
    let size = d.operandSize
    let divisor = Int128(Int64(bitPattern: signExtend(try readRM(d), size: size)))
    if divisor == 0 { throw .divideError }
    // The dividend is twice the operand size, sign-extended to 128 bits.
    let raw = wideAccumulator(size)
    let dividendBits = UInt64(size) * 16
    let dividend =
      dividendBits >= 128
      ? Int128(bitPattern: raw) : Int128(bitPattern: raw << (128 - dividendBits)) >> (128 - dividendBits)
    let (quotient, overflow) = dividend.dividedReportingOverflow(by: divisor)
    let limit = Int128(1) << (UInt64(size) * 8 - 1)
    if overflow || quotient >= limit || quotient < -limit { throw .divideError }
    let remainder = dividend - quotient * divisor
    setWideAccumulator(
      low: UInt64(truncatingIfNeeded: quotient) & sizeMask(size),
      high: UInt64(truncatingIfNeeded: remainder) & sizeMask(size), d)
  }
}
