/// Loading segment registers: MOV Sreg, POP Sreg, PUSH Sreg, LDS/LES/LSS/LFS/LGS (SDM Vol. 2,
/// MOV and POP "Operation"; Vol. 3, 5.4-5.6). Checks run before anything changes, so a fault
/// leaves the register as it was.
extension X86Core {
  /// A selector checked for loading into the data segment register `name` (DS ES FS GS), or
  /// into SS. Returns the new hidden part and, for a descriptor, its address (to set accessed).
  mutating func checkedSegment(_ name: SegmentName, _ selector: UInt16) throws(X86Exception) -> (
    SegmentRegister, SegmentDescriptor?, UInt64
  ) {
    let current = state[name]
    if state.cr0 & ControlBit.cr0PE == 0 {
      // Real mode: base = selector·16; limit and attributes stay (so "big real mode" works).
      var segment = current
      segment.selector = selector
      segment.base = UInt64(selector) << 4
      segment.unusable = false
      segment.present = true
      return (segment, nil, 0)
    }
    let cpl = privilegeLevel
    let error = X86Core.selectorError(selector)
    if selector & 0xfffc == 0 {
      // Null: allowed except in SS, where 64-bit mode allows it below CPL 3 when RPL = CPL
      // (SDM Vol. 2, MOV "64-BIT_MODE").
      if name == .ss && !(codeMode == .bits64 && cpl != 3 && UInt8(selector & 3) == cpl) {
        throw .generalProtection(0)
      }
      var null = SegmentRegister.null(selector: selector, dpl: name == .ss ? cpl : 0)
      // FS and GS keep their base (the 64-bit code's FS/GS base) when a null selector is loaded.
      if name == .fs || name == .gs { null.base = current.base }
      return (null, nil, 0)
    }
    let (descriptor, address) = try readDescriptor(selector, else: .generalProtection(error))
    let rpl = UInt8(selector & 3)
    if name == .ss {
      if rpl != cpl || descriptor.dpl != cpl || !descriptor.isData || !descriptor.readableOrWritable {
        throw .generalProtection(error)
      }
      if !descriptor.present { throw .stackFault(error) }
    } else {
      // Data, or readable code; the privilege check does not apply to conforming code.
      let readableCode = descriptor.isCode && descriptor.readableOrWritable
      if !descriptor.isData && !readableCode { throw .generalProtection(error) }
      if (descriptor.isData || !descriptor.conforming) && (rpl > descriptor.dpl || cpl > descriptor.dpl) {
        throw .generalProtection(error)
      }
      if !descriptor.present { throw .segmentNotPresent(error) }
    }
    return (descriptor.segment(selector: selector), descriptor, address)
  }

  /// Checks, sets the accessed bit and loads.
  mutating func loadSegment(_ name: SegmentName, _ selector: UInt16) throws(X86Exception) {
    let (segment, descriptor, address) = try checkedSegment(name, selector)
    if let descriptor { try setAccessed(descriptor, at: address) }
    state[name] = segment
  }

  /// A load into SS holds off interrupts, NMIs and debug traps until the next instruction
  /// retires, so that SS:ESP can be loaded as a pair (SDM Vol. 3, 6.8.3).
  private mutating func openStackSegmentShadow() {
    state.interruptShadow = true
    state.stackSegmentShadow = true
  }

  /// MOV Sreg, r/m16 (`sub` the register; CS was refused by the decoder).
  mutating func movSregRm(_ d: DecodedInstruction) throws(X86Exception) {
    let selector = UInt16(truncatingIfNeeded: try readRM(d, size: 2))
    let name = SegmentName(rawValue: d.sub % 6) ?? .ds
    try loadSegment(name, selector)
    if name == .ss { openStackSegmentShadow() }
  }

  /// PUSH Sreg: the selector zero-extended to the operand size (as AMD and QEMU write it;
  /// some Intel processors write only the low 16 bits of a wider slot, SDM Vol. 2, PUSH).
  mutating func pushSreg(_ d: DecodedInstruction) throws(X86Exception) {
    try push(UInt64(state.segments[Int(d.sub % 6)].selector), size: d.operandSize)
  }

  /// POP Sreg: the load is checked before rSP moves.
  mutating func popSreg(_ d: DecodedInstruction) throws(X86Exception) {
    let selector = UInt16(truncatingIfNeeded: try peek(size: d.operandSize))
    let name = SegmentName(rawValue: d.sub % 6) ?? .ds
    try loadSegment(name, selector)
    adjustStackPointer(by: UInt64(d.operandSize))
    if name == .ss { openStackSegmentShadow() }
  }

  /// LDS/LES/LSS/LFS/LGS r, m16:16/32/64: the offset (operand size) then the selector.
  mutating func loadFarPointer(_ d: DecodedInstruction) throws(X86Exception) {
    let address = effectiveAddress(d)
    let offset = try read(d.segment, address, size: d.operandSize)
    let selectorOffset = (address &+ UInt64(d.operandSize)) & sizeMask(d.addressSize)
    let selector = UInt16(truncatingIfNeeded: try read(d.segment, selectorOffset, size: 2))
    let name = SegmentName(rawValue: d.sub % 6) ?? .ds
    try loadSegment(name, selector)
    setRegOperand(d, offset)
    // LSS loads SS:rSP as one instruction: no shadow is needed, and none is opened.
  }

  /// On a return to an outer privilege level, ES DS FS GS that the new CPL may not use are
  /// nulled (SDM Vol. 2, RET and IRET, "RETURN-TO-OUTER-PRIVILEGE-LEVEL").
  mutating func nullInaccessibleDataSegments(newCPL: UInt8) {
    for name in [SegmentName.es, .ds, .fs, .gs] {
      let segment = state[name]
      if segment.unusable { continue }
      let dataOrNonconforming = segment.type & 8 == 0 || segment.type & 4 == 0
      if segment.dpl < newCPL && dataOrNonconforming {
        var null = SegmentRegister.null(selector: 0)
        if name == .fs || name == .gs { null.base = segment.base }
        state[name] = null
      }
    }
  }
}
