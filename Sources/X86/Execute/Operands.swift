/// Register and r/m operand access shared by every handler.
///
/// Why everything on `X86Core` is `mutating`, even readers: a non-mutating method or getter
/// called from a mutating one needs `self` as a value, and the optimiser then copied the whole
/// core (1 KiB, retaining its RAM and bus references) per call: it did so for `pagingEnabled`
/// on every memory access. A mutating call passes the address and copies nothing. The same
/// goes for `X86State`'s non-mutating helpers, so the hot path reads flags and CPL through
/// the accessors below instead.
extension X86Core {
  @inline(__always) var carryFlag: Bool {
    mutating get { state.lazy.op == .none ? state.flagBits & RFlagsBit.carry != 0 : state.lazy.carry }
  }

  @inline(__always) var zeroFlag: Bool {
    mutating get { state.lazy.op == .none ? state.flagBits & RFlagsBit.zero != 0 : state.lazy.zero }
  }

  @inline(__always) var directionFlag: Bool { mutating get { state.flagBits & RFlagsBit.direction != 0 } }

  /// CPL: CS.DPL in protected mode, 0 in real mode.
  @inline(__always) var privilegeLevel: UInt8 {
    mutating get { state.cr0 & ControlBit.cr0PE == 0 ? 0 : state.segments[Int(SegmentName.cs.rawValue)].dpl }
  }

  @inline(__always)
  mutating func conditionHolds(_ cc: UInt8) -> Bool { state.lazy.condition(cc, flagBits: state.flagBits) }

  /// A general register at an operand size; byte registers 4-7 are AH CH DH BH without REX.
  @inline(__always)
  mutating func register(_ index: UInt8, size: UInt8, _ d: DecodedInstruction) -> UInt64 {
    if size == 1 {
      if index & 0xc == 4 && !d.has(DecodedInstruction.Flag.rex) {
        return (state.gpr[Int(index & 3)] >> 8) & 0xff
      }
      return state.gpr[Int(index & 15)] & 0xff
    }
    return state.gpr[Int(index & 15)] & sizeMask(size)
  }

  /// Writes a general register: 32-bit writes zero the upper half, 8/16-bit writes merge.
  @inline(__always)
  mutating func setRegister(_ index: UInt8, size: UInt8, _ d: DecodedInstruction, _ value: UInt64) {
    switch size {
    case 8: state.gpr[Int(index & 15)] = value
    case 4: state.gpr[Int(index & 15)] = value & 0xffff_ffff
    case 2: state.gpr[Int(index & 15)] = state.gpr[Int(index & 15)] & ~0xffff | value & 0xffff
    default:
      if index & 0xc == 4 && !d.has(DecodedInstruction.Flag.rex) {
        let slot = Int(index & 3)
        state.gpr[slot] = state.gpr[slot] & ~0xff00 | (value & 0xff) << 8
      } else {
        state.gpr[Int(index & 15)] = state.gpr[Int(index & 15)] & ~0xff | value & 0xff
      }
    }
  }

  /// The r/m operand at the instruction's operand size.
  @inline(__always)
  mutating func readRM(_ d: DecodedInstruction) throws(X86Exception) -> UInt64 {
    try readRM(d, size: d.operandSize)
  }

  @inline(__always)
  mutating func readRM(_ d: DecodedInstruction, size: UInt8) throws(X86Exception) -> UInt64 {
    if d.isMemory { return try readOperand(d, effectiveAddress(d), size: size) }
    return register(d.rm, size: size, d)
  }

  @inline(__always)
  mutating func writeRM(_ d: DecodedInstruction, _ value: UInt64) throws(X86Exception) {
    if d.isMemory {
      try write(d.segment, effectiveAddress(d), size: d.operandSize, value)
    } else {
      setRegister(d.rm, size: d.operandSize, d, value)
    }
  }

  /// The ModRM.reg operand at the operand size.
  @inline(__always) mutating func regOperand(_ d: DecodedInstruction) -> UInt64 {
    register(d.reg, size: d.operandSize, d)
  }

  @inline(__always) mutating func setRegOperand(_ d: DecodedInstruction, _ value: UInt64) {
    setRegister(d.reg, size: d.operandSize, d, value)
  }

  // MARK: Stack

  /// The stack pointer's width: 64 in 64-bit mode, else SS.B selects 32 or 16.
  @inline(__always) var stackAddressSize: UInt8 {
    mutating get { codeMode == .bits64 ? 8 : (state.segments[Int(SegmentName.ss.rawValue)].defaultBig ? 4 : 2) }
  }

  @inline(__always)
  mutating func push(_ value: UInt64, size: UInt8) throws(X86Exception) {
    let width = stackAddressSize
    let mask = sizeMask(width)
    let rsp = (state.gpr[4] &- UInt64(size)) & mask
    try write(SegmentName.ss.rawValue, rsp, size: size, value)
    setStackPointer(rsp, width)
  }

  /// Reads the value at the top of the stack without popping it (so a later fault can undo nothing).
  @inline(__always)
  mutating func peek(size: UInt8, depth: UInt64 = 0) throws(X86Exception) -> UInt64 {
    let mask = sizeMask(stackAddressSize)
    return try read(SegmentName.ss.rawValue, (state.gpr[4] &+ depth) & mask, size: size)
  }

  @inline(__always)
  mutating func pop(size: UInt8) throws(X86Exception) -> UInt64 {
    let value = try peek(size: size)
    adjustStackPointer(by: UInt64(size))
    return value
  }

  @inline(__always)
  mutating func adjustStackPointer(by amount: UInt64) {
    let width = stackAddressSize
    setStackPointer((state.gpr[4] &+ amount) & sizeMask(width), width)
  }

  @inline(__always)
  mutating func setStackPointer(_ value: UInt64, _ width: UInt8) {
    state.gpr[4] = width == 8 ? value : (width == 4 ? value & 0xffff_ffff : state.gpr[4] & ~0xffff | value & 0xffff)
  }
}
