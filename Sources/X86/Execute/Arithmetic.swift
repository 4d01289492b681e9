/// ADD OR ADC SBB AND SUB XOR CMP, TEST, INC DEC NOT NEG, CBW/CWD families. Flags lazily.
extension X86Core {
  /// Kind 0-7 as in the opcode map: ADD OR ADC SBB AND SUB XOR CMP. Operands are truncated to
  /// `size`; the result is too. Flags per the SDM's entry for each (AF undefined for the logic ops).
  @inline(__always)
  mutating func alu(_ kind: UInt8, _ destination: UInt64, _ source: UInt64, size: UInt8) -> UInt64 {
    let mask = sizeMask(size)
    let result: UInt64
    switch kind {
    case 0:
      result = (destination &+ source) & mask
      state.setLazyFlags(.add, size: size, result: result, destination: destination, source: source)
    case 1:
      result = destination | source
      state.setLazyFlags(.logic, size: size, result: result, destination: destination, source: source)
    case 2:
      let carry = carryFlag
      result = (destination &+ source &+ (carry ? 1 : 0)) & mask
      state.setLazyFlags(.adc, size: size, result: result, destination: destination, source: source, carryIn: carry)
    case 3:
      let carry = carryFlag
      result = (destination &- source &- (carry ? 1 : 0)) & mask
      state.setLazyFlags(.sbb, size: size, result: result, destination: destination, source: source, carryIn: carry)
    case 4:
      result = destination & source
      state.setLazyFlags(.logic, size: size, result: result, destination: destination, source: source)
    case 6:
      result = destination ^ source
      state.setLazyFlags(.logic, size: size, result: result, destination: destination, source: source)
    default:  // 5 SUB, 7 CMP
      result = (destination &- source) & mask
      state.setLazyFlags(.sub, size: size, result: result, destination: destination, source: source)
    }
    return result
  }

  @inline(__always)
  mutating func aluRmReg(_ d: DecodedInstruction) throws(X86Exception) {
    if !d.isMemory {
      let result = alu(d.sub, register(d.rm, size: d.operandSize, d), regOperand(d), size: d.operandSize)
      if d.sub != 7 { setRegister(d.rm, size: d.operandSize, d, result) }
      return
    }
    let address = effectiveAddress(d)
    let result = alu(d.sub, try readOperand(d, address, size: d.operandSize), regOperand(d), size: d.operandSize)
    if d.sub != 7 { try write(d.segment, address, size: d.operandSize, result) }
  }

  @inline(__always)
  mutating func aluRegRm(_ d: DecodedInstruction) throws(X86Exception) {
    let result = alu(d.sub, regOperand(d), try readRM(d), size: d.operandSize)
    if d.sub != 7 { setRegOperand(d, result) }
  }

  @inline(__always)
  mutating func aluRmImm(_ d: DecodedInstruction) throws(X86Exception) {
    let immediate = d.immediate & sizeMask(d.operandSize)
    if !d.isMemory {
      let result = alu(d.sub, register(d.rm, size: d.operandSize, d), immediate, size: d.operandSize)
      if d.sub != 7 { setRegister(d.rm, size: d.operandSize, d, result) }
      return
    }
    let address = effectiveAddress(d)
    let result = alu(d.sub, try readOperand(d, address, size: d.operandSize), immediate, size: d.operandSize)
    if d.sub != 7 { try write(d.segment, address, size: d.operandSize, result) }
  }

  mutating func testRmReg(_ d: DecodedInstruction) throws(X86Exception) {
    _ = alu(4, try readRM(d), regOperand(d), size: d.operandSize)
  }

  mutating func testRmImm(_ d: DecodedInstruction) throws(X86Exception) {
    _ = alu(4, try readRM(d), d.immediate & sizeMask(d.operandSize), size: d.operandSize)
  }

  /// INC/DEC: OF SF ZF AF PF as ADD/SUB of 1; CF unchanged (SDM Vol. 2, INC, DEC).
  @inline(__always)
  mutating func incDec(_ d: DecodedInstruction, increment: Bool) throws(X86Exception) {
    let size = d.operandSize
    let address = d.isMemory ? effectiveAddress(d) : 0
    let value = d.isMemory ? try readOperand(d, address, size: size) : register(d.rm, size: size, d)
    let result = (increment ? value &+ 1 : value &- 1) & sizeMask(size)
    if d.isMemory {
      try write(d.segment, address, size: size, result)
    } else {
      setRegister(d.rm, size: size, d, result)
    }
    let carry = carryFlag
    state.setLazyFlags(
      increment ? .inc : .dec, size: size, result: result, destination: value, source: 1, carryIn: carry)
  }

  /// NOT: no flags.
  mutating func notRm(_ d: DecodedInstruction) throws(X86Exception) {
    let address = d.isMemory ? effectiveAddress(d) : 0
    let value = d.isMemory ? try readOperand(d, address, size: d.operandSize) : register(d.rm, size: d.operandSize, d)
    let result = ~value & sizeMask(d.operandSize)
    if d.isMemory {
      try write(d.segment, address, size: d.operandSize, result)
    } else {
      setRegister(d.rm, size: d.operandSize, d, result)
    }
  }

  /// NEG: flags as 0 - operand, which gives CF = (operand != 0) as the SDM states.
  mutating func negRm(_ d: DecodedInstruction) throws(X86Exception) {
    let address = d.isMemory ? effectiveAddress(d) : 0
    let value = d.isMemory ? try readOperand(d, address, size: d.operandSize) : register(d.rm, size: d.operandSize, d)
    let result = (0 &- value) & sizeMask(d.operandSize)
    if d.isMemory {
      try write(d.segment, address, size: d.operandSize, result)
    } else {
      setRegister(d.rm, size: d.operandSize, d, result)
    }
    state.setLazyFlags(.sub, size: d.operandSize, result: result, destination: 0, source: value)
  }

  /// CBW / CWDE / CDQE: sign-extend the lower half of the accumulator into all of it.
  mutating func cbw(_ d: DecodedInstruction) {
    let half = d.operandSize / 2
    setRegister(0, size: d.operandSize, d, signExtend(state.gpr[0], size: half) & sizeMask(d.operandSize))
  }

  /// CWD / CDQ / CQO: fill rDX with the accumulator's sign.
  mutating func cwd(_ d: DecodedInstruction) {
    let negative = signExtend(state.gpr[0], size: d.operandSize) >> 63 != 0
    setRegister(2, size: d.operandSize, d, negative ? sizeMask(d.operandSize) : 0)
  }
}
