/// Near JMP, Jcc, CALL, RET, LOOP/LOOPE/LOOPNE, JrCXZ. Far transfers come with segmentation.
extension X86Core {
  /// Sets RIP to a branch target truncated to the operand size. A non-canonical target in
  /// 64-bit mode faults on the branch itself, with RIP still at it (Intel's behaviour).
  @inline(__always)
  mutating func branch(to target: UInt64, size: UInt8) throws(X86Exception) {
    let rip = target & sizeMask(size)
    if codeMode == .bits64 && UInt64(bitPattern: Int64(bitPattern: rip << 16) >> 16) != rip {
      throw .generalProtection(0)
    }
    // Outside 64-bit mode the target must lie within CS's limit (SDM Vol. 2, JMP).
    if codeMode != .bits64 && rip > UInt64(state.segments[Int(SegmentName.cs.rawValue)].limit) {
      throw .generalProtection(0)
    }
    state.rip = rip
  }

  mutating func call(to target: UInt64, _ d: DecodedInstruction) throws(X86Exception) {
    let returnAddress = state.rip
    let savedStackPointer = state.gpr[4]
    try push(returnAddress & sizeMask(d.operandSize), size: d.operandSize)
    do {
      try branch(to: target, size: d.operandSize)
    } catch {
      state.gpr[4] = savedStackPointer
      throw error
    }
  }

  /// RET and RET imm16: pop the return address, then release imm16 more bytes.
  mutating func ret(_ d: DecodedInstruction) throws(X86Exception) {
    let target = try peek(size: d.operandSize)
    try branch(to: target, size: d.operandSize)
    adjustStackPointer(by: UInt64(d.operandSize) &+ d.immediate)
  }

  /// LOOP (sub 2), LOOPE (1), LOOPNE (0): decrement the count register (its width is the
  /// address size), branch while it is nonzero (and ZF agrees). Flags unchanged.
  mutating func loop(_ d: DecodedInstruction) throws(X86Exception) {
    let count = (state.gpr[1] &- 1) & sizeMask(d.addressSize)
    let taken =
      switch d.sub {
      case 0: count != 0 && !zeroFlag
      case 1: count != 0 && zeroFlag
      default: count != 0
      }
    if taken { try branch(to: state.rip &+ d.immediate, size: d.operandSize) }
    setRegister(1, size: d.addressSize, d, count)
  }

  mutating func jrcxz(_ d: DecodedInstruction) throws(X86Exception) {
    if state.gpr[1] & sizeMask(d.addressSize) == 0 { try branch(to: state.rip &+ d.immediate, size: d.operandSize) }
  }
}
