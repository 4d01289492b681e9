/// POP r/m, PUSHF, POPF, ENTER, LEAVE (PUSH is a one-liner in Dispatch.swift).
extension X86Core {
  /// POP r/m: a memory destination based on rSP uses rSP after the pop (SDM Vol. 2, POP).
  mutating func popRm(_ d: DecodedInstruction) throws(X86Exception) {
    let value = try peek(size: d.operandSize)
    let savedStackPointer = state.gpr[4]
    adjustStackPointer(by: UInt64(d.operandSize))
    if d.isMemory {
      do {
        try write(d.segment, effectiveAddress(d), size: d.operandSize, value)
      } catch {
        state.gpr[4] = savedStackPointer
        throw error
      }
    } else {
      setRegister(d.rm, size: d.operandSize, d, value)
    }
  }

  /// PUSHF: the image has VM and RF cleared (SDM Vol. 2, PUSHF).
  mutating func pushf(_ d: DecodedInstruction) throws(X86Exception) {
    let image = state.rflags & ~(RFlagsBit.virtual8086 | RFlagsBit.resume)
    try push(image & sizeMask(d.operandSize), size: d.operandSize)
  }

  /// POPF outside virtual-8086 mode: CPL 0 may change IOPL; CPL ≤ IOPL may change IF; VIP,
  /// VIF and VM never change; RF is cleared; a 16-bit POPF touches only the low 16 bits.
  mutating func popf(_ d: DecodedInstruction) throws(X86Exception) {
    let value = try pop(size: d.operandSize)
    var changeable =
      RFlagsBit.status | RFlagsBit.trap | RFlagsBit.direction | RFlagsBit.nestedTask
      | RFlagsBit.alignmentCheck | RFlagsBit.identification
    let cpl = UInt64(privilegeLevel)
    let iopl = (state.flagBits & RFlagsBit.ioPrivilegeLevel) >> 12
    if cpl == 0 { changeable |= RFlagsBit.ioPrivilegeLevel }
    if cpl <= iopl { changeable |= RFlagsBit.interruptEnable }
    changeable &= sizeMask(d.operandSize)
    let old = state.rflags
    state.rflags = (old & ~changeable | value & changeable) & ~RFlagsBit.resume
  }

  /// ENTER size, level (SDM Vol. 2, ENTER): push rBP, copy `level - 1` frame pointers, push
  /// the new frame pointer, then allocate `size` bytes.
  mutating func enter(_ d: DecodedInstruction) throws(X86Exception) {
    let size = d.operandSize
    let width = stackAddressSize
    let mask = sizeMask(width)
    let level = d.immediate & 31
    var stackPointer = (state.gpr[4] &- UInt64(size)) & mask
    try write(SegmentName.ss.rawValue, stackPointer, size: size, state.gpr[5] & sizeMask(size))
    let frame = stackPointer
    if level > 0 {
      var framePointer = state.gpr[5]
      for _ in 1..<level {
        framePointer = (framePointer &- UInt64(size)) & sizeMask(width)
        let link = try read(SegmentName.ss.rawValue, framePointer, size: size)
        stackPointer = (stackPointer &- UInt64(size)) & mask
        try write(SegmentName.ss.rawValue, stackPointer, size: size, link)
      }
      stackPointer = (stackPointer &- UInt64(size)) & mask
      try write(SegmentName.ss.rawValue, stackPointer, size: size, frame)
    }
    stackPointer = (stackPointer &- UInt64(d.immediate2)) & mask
    // The CPU checks the new frame's bottom for a write of one stack slot before it commits:
    // the host CPU raises #PF (W = 1) or #AC at exactly the final RSP when it is not writable
    // or misaligned (found by x86-difftest; the SDM's pseudocode only moves RSP there).
    _ = try readLinear(try linearAddress(SegmentName.ss.rawValue, stackPointer), size: size, .write)
    setRegister(5, size: size, d, frame)
    setStackPointer(stackPointer, width)
  }

  /// LEAVE: rSP ← rBP, then pop rBP.
  mutating func leave(_ d: DecodedInstruction) throws(X86Exception) {
    let width = stackAddressSize
    let framePointer = state.gpr[5] & sizeMask(width)
    let value = try read(SegmentName.ss.rawValue, framePointer, size: d.operandSize)
    setStackPointer((framePointer &+ UInt64(d.operandSize)) & sizeMask(width), width)
    setRegister(5, size: d.operandSize, d, value)
  }
}
