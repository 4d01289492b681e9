/// Far JMP, far CALL, far RET and IRET (SDM Vol. 2, JMP, CALL, RET, IRET "Operation"; Vol. 3,
/// 5.8). Every check and every stack read comes first; registers change only at the end, so
/// a fault leaves the instruction undone. Call gates are in CallGates.swift; a TSS or task
/// gate as a target, or IRET with NT outside IA-32e mode, is a task switch:
/// `.unsupported(.taskSwitch)`.
extension X86Core {
  // MARK: Far JMP / CALL

  /// A far JMP or CALL target checked and turned into the new CS. Real mode: selector·16.
  private mutating func farTarget(_ selector: UInt16, _ offset: UInt64, size: UInt8) throws(X86Exception) -> (
    SegmentRegister, SegmentDescriptor?, UInt64, UInt64
  ) {
    if state.cr0 & ControlBit.cr0PE == 0 {
      var cs = state[.cs]
      cs.selector = selector
      cs.base = UInt64(selector) << 4
      let target = offset & sizeMask(size)
      if target > UInt64(cs.limit) { throw .generalProtection(0) }
      return (cs, nil, 0, target)
    }
    if selector & 0xfffc == 0 { throw .generalProtection(0) }
    let error = X86Core.selectorError(selector)
    let (descriptor, address) = try readDescriptor(selector, else: .generalProtection(error))
    if !descriptor.isCodeOrData {
      switch descriptor.type {
      case 1, 5, 9:
        unsupported = .taskSwitch
        throw .generalProtection(error)
      default: throw .generalProtection(error)
      }
    }
    guard descriptor.isCode else { throw .generalProtection(error) }
    let cpl = privilegeLevel
    if descriptor.conforming {
      if descriptor.dpl > cpl { throw .generalProtection(error) }
    } else if UInt8(selector & 3) > cpl || descriptor.dpl != cpl {
      throw .generalProtection(error)
    }
    if !descriptor.present { throw .segmentNotPresent(error) }
    let target = try returnTarget(descriptor, selector, offset, size: size)
    return (descriptor.codeSegment(selector: selector, cpl: cpl), descriptor, address, target)
  }

  /// The new RIP for a far transfer into `descriptor`: canonical for a 64-bit segment, else
  /// truncated to the operand size and within the limit (#GP(0)). L with D set is reserved.
  private mutating func returnTarget(
    _ descriptor: SegmentDescriptor, _ selector: UInt16, _ offset: UInt64, size: UInt8
  ) throws(X86Exception) -> UInt64 {
    if state.longModeActive && descriptor.longMode {
      if descriptor.defaultBig { throw .generalProtection(X86Core.selectorError(selector)) }
      if !isCanonical(offset) { throw .generalProtection(0) }
      return offset
    }
    let target = offset & sizeMask(min(size, 4))
    if target > UInt64(descriptor.limit) { throw .generalProtection(0) }
    return target
  }

  private mutating func commitCodeSegment(
    _ cs: SegmentRegister, _ descriptor: SegmentDescriptor?, _ address: UInt64, rip: UInt64
  ) throws(X86Exception) {
    if let descriptor { try setAccessed(descriptor, at: address) }
    state[.cs] = cs
    state.rip = rip
    codeSegmentChanged()
  }

  /// JMP ptr16:16/32 (EA: offset in `immediate`, selector in `immediate2`) or m16:16/32/64 (FF /5).
  mutating func jmpFar(_ d: DecodedInstruction) throws(X86Exception) {
    let (selector, offset) = try farPointer(d)
    if state.cr0 & ControlBit.cr0PE != 0, let (gate, address) = try callGate(selector) {
      return try transferThroughCallGate(gate, at: address, selector, call: false)
    }
    let (cs, descriptor, address, target) = try farTarget(selector, offset, size: d.operandSize)
    try commitCodeSegment(cs, descriptor, address, rip: target)
  }

  /// CALL ptr16:16/32 or m16:16/32/64: pushes CS then the return offset, each at the operand size.
  mutating func callFar(_ d: DecodedInstruction) throws(X86Exception) {
    let (selector, offset) = try farPointer(d)
    if state.cr0 & ControlBit.cr0PE != 0, let (gate, address) = try callGate(selector) {
      return try transferThroughCallGate(gate, at: address, selector, call: true)
    }
    let (cs, descriptor, address, target) = try farTarget(selector, offset, size: d.operandSize)
    let size = d.operandSize
    let width = stackAddressSize
    let savedStackPointer = state.gpr[4]
    let csSlot = (state.gpr[4] &- UInt64(size)) & sizeMask(width)
    let ripSlot = (csSlot &- UInt64(size)) & sizeMask(width)
    do {
      try write(SegmentName.ss.rawValue, csSlot, size: size, UInt64(state[.cs].selector))
      try write(SegmentName.ss.rawValue, ripSlot, size: size, state.rip & sizeMask(size))
      setStackPointer(ripSlot, width)
      try commitCodeSegment(cs, descriptor, address, rip: target)
    } catch {
      state.gpr[4] = savedStackPointer
      throw error
    }
  }

  /// The selector and offset of a far JMP/CALL: immediate (ptr16:16/32) or from memory.
  private mutating func farPointer(_ d: DecodedInstruction) throws(X86Exception) -> (UInt16, UInt64) {
    if !d.isMemory { return (d.immediate2, d.immediate) }
    let address = effectiveAddress(d)
    let offset = try read(d.segment, address, size: d.operandSize)
    let selectorOffset = (address &+ UInt64(d.operandSize)) & sizeMask(d.addressSize)
    return (UInt16(truncatingIfNeeded: try read(d.segment, selectorOffset, size: 2)), offset)
  }

  // MARK: Returns

  /// The CS a far RET or IRET returns to (SDM Vol. 2, RET "PROTECTED-MODE"): RPL ≥ CPL; a
  /// conforming segment's DPL ≤ RPL, a non-conforming one's DPL = RPL; present.
  private mutating func checkedReturnCode(_ selector: UInt16) throws(X86Exception) -> (SegmentDescriptor, UInt64) {
    if selector & 0xfffc == 0 { throw .generalProtection(0) }
    let error = X86Core.selectorError(selector)
    let (descriptor, address) = try readDescriptor(selector, else: .generalProtection(error))
    let rpl = UInt8(selector & 3)
    if !descriptor.isCode || rpl < privilegeLevel { throw .generalProtection(error) }
    if descriptor.conforming ? descriptor.dpl > rpl : descriptor.dpl != rpl { throw .generalProtection(error) }
    if !descriptor.present { throw .segmentNotPresent(error) }
    return (descriptor, address)
  }

  /// The SS popped by a return to privilege `rpl`: RPL and DPL equal to it, writable data,
  /// present. A null SS is allowed only returning to 64-bit code below CPL 3 (SDM Vol. 2, IRET).
  private mutating func checkedReturnStack(_ selector: UInt16, rpl: UInt8, to64: Bool) throws(X86Exception) -> (
    SegmentRegister, SegmentDescriptor?, UInt64
  ) {
    if selector & 0xfffc == 0 {
      if to64 && rpl != 3 && UInt8(selector & 3) == rpl { return (.null(selector: selector, dpl: rpl), nil, 0) }
      throw .generalProtection(0)
    }
    let error = X86Core.selectorError(selector)
    let (descriptor, address) = try readDescriptor(selector, else: .generalProtection(error))
    if UInt8(selector & 3) != rpl || descriptor.dpl != rpl || !descriptor.isData || !descriptor.readableOrWritable {
      throw .generalProtection(error)
    }
    if !descriptor.present { throw .stackFault(error) }
    return (descriptor.segment(selector: selector), descriptor, address)
  }

  /// RET far and RET far imm16: pop the offset and CS; to an outer privilege level also pop
  /// rSP and SS (after releasing imm16 bytes), release imm16 bytes of the outer stack too,
  /// and null the data segments the outer level may not use.
  mutating func retFar(_ d: DecodedInstruction) throws(X86Exception) {
    let size = d.operandSize
    let slot = UInt64(size)
    let offset = try peek(size: size)
    let selector = UInt16(truncatingIfNeeded: try peek(size: size, depth: slot))
    if state.cr0 & ControlBit.cr0PE == 0 {
      let (cs, _, _, target) = try farTarget(selector, offset, size: size)
      state[.cs] = cs
      state.rip = target
      adjustStackPointer(by: 2 * slot &+ d.immediate)
      codeSegmentChanged()
      return
    }
    let (code, codeAddress) = try checkedReturnCode(selector)
    let rpl = UInt8(selector & 3)
    let target = try returnTarget(code, selector, offset, size: size)
    if rpl > privilegeLevel {
      let to64 = state.longModeActive && code.longMode
      let newStackPointer = try peek(size: size, depth: 2 * slot &+ d.immediate)
      let ssSelector = UInt16(truncatingIfNeeded: try peek(size: size, depth: 3 * slot &+ d.immediate))
      let (ss, ssDescriptor, ssAddress) = try checkedReturnStack(ssSelector, rpl: rpl, to64: to64)
      try setAccessed(code, at: codeAddress)
      if let ssDescriptor { try setAccessed(ssDescriptor, at: ssAddress) }
      state[.cs] = code.codeSegment(selector: selector, cpl: rpl)
      state[.ss] = ss
      codeSegmentChanged()
      let width = stackAddressSize
      setStackPointer((newStackPointer &+ d.immediate) & sizeMask(width), width)
      state.rip = target
      nullInaccessibleDataSegments(newCPL: rpl)
      return
    }
    try setAccessed(code, at: codeAddress)
    state[.cs] = code.codeSegment(selector: selector, cpl: rpl)
    state.rip = target
    adjustStackPointer(by: 2 * slot &+ d.immediate)
    codeSegmentChanged()
  }

  // MARK: IRET

  /// IRET/IRETD/IRETQ in every mode (SDM Vol. 2, IRET). Completing one unblocks NMIs.
  mutating func iret(_ d: DecodedInstruction) throws(X86Exception) {
    if state.cr0 & ControlBit.cr0PE == 0 {
      try iretReal(d)
    } else {
      try iretProtected(d)
    }
    state.nmiBlocked = false
  }

  /// Real mode: pop IP, CS, FLAGS; IRETD keeps VM, VIF and VIP (SDM Vol. 2, IRET "REAL-ADDRESS-MODE").
  private mutating func iretReal(_ d: DecodedInstruction) throws(X86Exception) {
    let size = d.operandSize
    let slot = UInt64(size)
    let offset = try peek(size: size)
    let selector = UInt16(truncatingIfNeeded: try peek(size: size, depth: slot))
    let flags = try peek(size: size, depth: 2 * slot)
    if offset > UInt64(state[.cs].limit) { throw .generalProtection(0) }
    state.segments[Int(SegmentName.cs.rawValue)].selector = selector
    state.segments[Int(SegmentName.cs.rawValue)].base = UInt64(selector) << 4
    state.rip = offset
    if size == 4 {
      state.rflags = flags & 0x25_7fd5 | state.rflags & 0x1a_0000
    } else {
      state.rflags = state.rflags & ~0xffff | flags & 0xffff
    }
    adjustStackPointer(by: 3 * slot)
    codeSegmentChanged()
  }

  /// Protected and IA-32e mode: same-level and outer-level returns. IRETQ from 64-bit mode
  /// always pops SS:RSP; elsewhere only a return to an outer level does.
  private mutating func iretProtected(_ d: DecodedInstruction) throws(X86Exception) {
    let longMode = state.longModeActive
    if state.flagBits & RFlagsBit.nestedTask != 0 {
      // IA-32e mode has no task switching: NT = 1 is #GP(0). Elsewhere it is a task return.
      if longMode { throw .generalProtection(0) }
      unsupported = .taskSwitch
      throw .generalProtection(0)
    }
    let size = d.operandSize
    let slot = UInt64(size)
    let offset = try peek(size: size)
    let selector = UInt16(truncatingIfNeeded: try peek(size: size, depth: slot))
    let flags = try peek(size: size, depth: 2 * slot)
    let cpl = privilegeLevel
    if size == 4 && flags & RFlagsBit.virtual8086 != 0 && cpl == 0 {
      if longMode { throw .generalProtection(0) }
      unsupported = .virtual8086
      throw .generalProtection(0)
    }
    let (code, codeAddress) = try checkedReturnCode(selector)
    let rpl = UInt8(selector & 3)
    let target = try returnTarget(code, selector, offset, size: size)
    let to64 = longMode && code.longMode
    let popsStack = rpl > cpl || codeMode == .bits64
    var newSS = state[.ss]
    var newStackPointer: UInt64 = 0
    if popsStack {
      newStackPointer = try peek(size: size, depth: 3 * slot)
      let ssSelector = UInt16(truncatingIfNeeded: try peek(size: size, depth: 4 * slot))
      let (ss, ssDescriptor, ssAddress) = try checkedReturnStack(ssSelector, rpl: rpl, to64: to64)
      if let ssDescriptor { try setAccessed(ssDescriptor, at: ssAddress) }
      newSS = ss
    }
    try setAccessed(code, at: codeAddress)

    // Which flags IRET may change depends on the CPL it runs at (SDM Vol. 2, IRET).
    var changeable =
      RFlagsBit.status | RFlagsBit.trap | RFlagsBit.direction | RFlagsBit.nestedTask | RFlagsBit.resume
      | RFlagsBit.alignmentCheck | RFlagsBit.identification
    let iopl = UInt8((state.flagBits & RFlagsBit.ioPrivilegeLevel) >> 12)
    if cpl == 0 {
      changeable |= RFlagsBit.ioPrivilegeLevel | RFlagsBit.virtualInterrupt | RFlagsBit.virtualInterruptPending
    }
    if cpl <= iopl { changeable |= RFlagsBit.interruptEnable }
    changeable &= sizeMask(size)
    let oldFlags = state.rflags
    state.rflags = oldFlags & ~changeable | flags & changeable

    state[.cs] = code.codeSegment(selector: selector, cpl: rpl)
    state.rip = target
    if popsStack {
      state[.ss] = newSS
      codeSegmentChanged()
      let width = stackAddressSize
      setStackPointer(newStackPointer & sizeMask(width == 8 ? 8 : size), width)
    } else {
      adjustStackPointer(by: 3 * slot)
      codeSegmentChanged()
    }
    if rpl > cpl { nullInaccessibleDataSegments(newCPL: rpl) }
  }

  // MARK: INTO, BOUND

  /// INTO: #OF (vector 4, a trap delivered like INT n) when OF = 1. The decoder refuses it in 64-bit mode.
  mutating func into() throws(X86Exception) {
    if state.rflags & RFlagsBit.overflow != 0 {
      throw X86Exception(vector: X86Exception.Vector.overflow, kind: .trap)
    }
  }

  /// BOUND r, m: #BR (vector 5, a fault) unless lower ≤ r ≤ upper, all signed at the operand size.
  mutating func bound(_ d: DecodedInstruction) throws(X86Exception) {
    let size = d.operandSize
    let address = effectiveAddress(d)
    let lower = Int64(bitPattern: signExtend(try read(d.segment, address, size: size), size: size))
    let upperOffset = (address &+ UInt64(size)) & sizeMask(d.addressSize)
    let upper = Int64(bitPattern: signExtend(try read(d.segment, upperOffset, size: size), size: size))
    let index = Int64(bitPattern: signExtend(regOperand(d), size: size))
    if index < lower || index > upper { throw X86Exception(vector: X86Exception.Vector.boundRange) }
  }
}
