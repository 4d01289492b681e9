/// XCHG, XADD, CMPXCHG, CMPXCHG8B/16B, CMOVcc, XLAT (MOV, MOVZX/MOVSX, LEA, SETcc are one-liners
/// in Dispatch.swift). The memory write comes before register writes, so a fault leaves the
/// registers as they were.
extension X86Core {
  mutating func xchg(_ d: DecodedInstruction) throws(X86Exception) {
    let registerValue = regOperand(d)
    if d.isMemory {
      let address = effectiveAddress(d)
      let memoryValue = try readOperand(d, address, size: d.operandSize)
      try write(d.segment, address, size: d.operandSize, registerValue)
      setRegOperand(d, memoryValue)
    } else {
      let other = register(d.rm, size: d.operandSize, d)
      setRegister(d.rm, size: d.operandSize, d, registerValue)
      setRegOperand(d, other)
    }
  }

  /// XADD: TEMP ← SRC + DEST; SRC ← DEST; DEST ← TEMP (that order matters when both are one register).
  mutating func xadd(_ d: DecodedInstruction) throws(X86Exception) {
    let source = regOperand(d)
    if d.isMemory {
      let address = effectiveAddress(d)
      let destination = try readOperand(d, address, size: d.operandSize)
      let sum = alu(0, destination, source, size: d.operandSize)
      try write(d.segment, address, size: d.operandSize, sum)
      setRegOperand(d, destination)
    } else {
      let destination = register(d.rm, size: d.operandSize, d)
      let sum = alu(0, destination, source, size: d.operandSize)
      setRegOperand(d, destination)
      setRegister(d.rm, size: d.operandSize, d, sum)
    }
  }

  /// CMPXCHG: flags as CMP accumulator, destination. A memory destination is written either way
  /// (with its own value when the comparison fails), as the SDM describes.
  mutating func cmpxchg(_ d: DecodedInstruction) throws(X86Exception) {
    let size = d.operandSize
    let accumulator = register(0, size: size, d)
    let address = d.isMemory ? effectiveAddress(d) : 0
    let destination = d.isMemory ? try readOperand(d, address, size: size) : register(d.rm, size: size, d)
    let equal = accumulator == destination
    let newValue = equal ? regOperand(d) : destination
    if d.isMemory {
      try write(d.segment, address, size: size, newValue)
    } else if equal {
      setRegister(d.rm, size: size, d, newValue)
    }
    if !equal { setRegister(0, size: size, d, destination) }
    _ = alu(7, accumulator, destination, size: size)
  }

  /// CMPXCHG8B (EDX:EAX vs m64) and CMPXCHG16B (RDX:RAX vs m128, which must be 16-byte aligned
  /// or #GP(0)). Only ZF changes.
  mutating func cmpxchgDouble(_ d: DecodedInstruction) throws(X86Exception) {
    let half = d.operandSize == 8 ? UInt8(8) : 4
    let address = effectiveAddress(d)
    let linear = try linearAddress(d.segment, address)
    if half == 8 && linear & 0xf != 0 { throw .generalProtection(0) }
    // Alignment checking sees one operand of both halves (8 bytes for CMPXCHG8B).
    try checkAlignment(linear, size: half * 2)
    let mask = sizeMask(half)
    let lowOffset = address
    let highOffset = (address &+ UInt64(half)) & sizeMask(d.addressSize)
    let low = try readOperand(d, lowOffset, size: half)
    let high = try readOperand(d, highOffset, size: half)
    let equal = low == state.gpr[0] & mask && high == state.gpr[2] & mask
    let (newLow, newHigh) = equal ? (state.gpr[3] & mask, state.gpr[1] & mask) : (low, high)
    // Both halves are checked for writability before either is written.
    _ = try translate(try linearAddress(d.segment, lowOffset), .write)
    _ = try translate(try linearAddress(d.segment, highOffset), .write)
    try write(d.segment, lowOffset, size: half, newLow)
    try write(d.segment, highOffset, size: half, newHigh)
    if !equal {
      setRegister(0, size: half, d, low)
      setRegister(2, size: half, d, high)
    }
    state.setFlag(RFlagsBit.zero, equal)
  }

  /// CMOVcc: the source is read (and may fault) whatever the condition; a 32-bit destination
  /// has its upper half cleared even when the move does not happen (SDM Vol. 2, CMOVcc).
  mutating func cmovcc(_ d: DecodedInstruction) throws(X86Exception) {
    let source = try readRM(d)
    setRegOperand(d, conditionHolds(d.sub) ? source : regOperand(d))
  }

  /// XLAT: AL ← [seg:rBX + AL].
  mutating func xlat(_ d: DecodedInstruction) throws(X86Exception) {
    let offset = (state.gpr[3] &+ (state.gpr[0] & 0xff)) & sizeMask(d.addressSize)
    setRegister(0, size: 1, d, try read(d.segment, offset, size: 1))
  }

  /// MOV r/m, Sreg: a memory destination always takes 16 bits; a 32- or 64-bit register gets
  /// the selector zero-extended (SDM Vol. 2, MOV, "Pentium Pro and later"), a 16-bit one only
  /// its low half.
  mutating func movRmSreg(_ d: DecodedInstruction) throws(X86Exception) {
    let selector = UInt64(state.segments[Int(d.sub % 6)].selector)
    if d.isMemory {
      try write(d.segment, effectiveAddress(d), size: 2, selector)
    } else {
      setRegister(d.rm, size: d.operandSize, d, selector)
    }
  }
}
