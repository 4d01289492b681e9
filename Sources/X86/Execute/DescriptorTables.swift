/// LGDT LIDT SGDT SIDT, LLDT SLDT LTR STR, LAR LSL VERR VERW, ARPL (SDM Vol. 2, each
/// instruction's page; Vol. 3, 2.4 and 7.2.4). SMSW/LMSW belong with the control registers.
extension X86Core {
  /// 0F 01 /0-/3. The pseudo-descriptor is a 2-byte limit and a base of 8 bytes in 64-bit
  /// mode, else 4 (24 bits with a 16-bit operand size for the loads; the stores then write
  /// the 24 bits and a zero byte).
  mutating func descriptorTable(_ d: DecodedInstruction) throws(X86Exception) {
    let address = effectiveAddress(d)
    let baseOffset = (address &+ 2) & sizeMask(d.addressSize)
    let baseSize: UInt8 = codeMode == .bits64 ? 8 : 4
    let baseMask: UInt64 = codeMode == .bits64 ? ~0 : (d.operandSize == 2 ? 0xff_ffff : 0xffff_ffff)
    switch d.sub {
    case 0, 1:
      let table = d.sub == 0 ? state.gdtr : state.idtr
      try write(d.segment, address, size: 2, UInt64(table.limit))
      try write(d.segment, baseOffset, size: baseSize, table.base & baseMask)
    default:
      if privilegeLevel != 0 { throw .generalProtection(0) }
      let limit = UInt16(truncatingIfNeeded: try read(d.segment, address, size: 2))
      let base = try read(d.segment, baseOffset, size: baseSize) & baseMask
      if codeMode == .bits64 && !isCanonical(base) { throw .generalProtection(0) }
      let table = DescriptorTableRegister(base: base, limit: limit)
      if d.sub == 2 { state.gdtr = table } else { state.idtr = table }
    }
  }

  /// 0F 00 /0-/5: SLDT STR LLDT LTR VERR VERW, all #UD in real mode.
  mutating func systemSegment(_ d: DecodedInstruction) throws(X86Exception) {
    if state.cr0 & ControlBit.cr0PE == 0 { throw .invalidOpcode }
    switch d.sub {
    case 0, 1:
      // A register destination gets the selector zero-extended; memory always 16 bits.
      let selector = UInt64(d.sub == 0 ? state.ldtr.selector : state.tr.selector)
      if d.isMemory {
        try write(d.segment, effectiveAddress(d), size: 2, selector)
      } else {
        setRegister(d.rm, size: d.operandSize, d, selector)
      }
    case 2: try loadSystemSegment(UInt16(truncatingIfNeeded: try readRM(d, size: 2)), taskRegister: false)
    case 3: try loadSystemSegment(UInt16(truncatingIfNeeded: try readRM(d, size: 2)), taskRegister: true)
    default:
      let selector = UInt16(truncatingIfNeeded: try readRM(d, size: 2))
      state.setFlag(RFlagsBit.zero, try verify(selector, write: d.sub == 5))
    }
  }

  /// LLDT and LTR: CPL 0, a GDT selector of an LDT (type 2) or available TSS (type 9, or 1
  /// outside IA-32e mode), present. In IA-32e mode the descriptors are 16 bytes and bits
  /// 63:32 of the base come from the second half. LTR marks the TSS busy in the GDT.
  private mutating func loadSystemSegment(_ selector: UInt16, taskRegister: Bool) throws(X86Exception) {
    if privilegeLevel != 0 { throw .generalProtection(0) }
    let error = X86Core.selectorError(selector)
    if selector & 0xfffc == 0 {
      // A null LDT selector leaves the LDTR unusable; a null TSS selector is #GP(0).
      if taskRegister { throw .generalProtection(0) }
      state.ldtr = .null(selector: selector)
      state.ldtr.type = 2
      state.ldtr.isCodeOrData = false
      return
    }
    if selector & 4 != 0 { throw .generalProtection(error) }
    let (descriptor, address) = try readDescriptor(selector, else: .generalProtection(error))
    let longMode = state.longModeActive
    let typeOK: Bool =
      taskRegister ? descriptor.type == 9 || (descriptor.type == 1 && !longMode) : descriptor.type == 2
    if descriptor.isCodeOrData || !typeOK { throw .generalProtection(error) }
    if !descriptor.present { throw .segmentNotPresent(error) }
    var segment = descriptor.segment(selector: selector)
    if longMode {
      guard (selector & 0xfff8) + 15 <= state.gdtr.limit else { throw .generalProtection(error) }
      let upper = try systemRead(address &+ 8, size: 8)
      segment.base |= (upper & 0xffff_ffff) << 32
    }
    if taskRegister {
      segment.type |= 2
      try systemWrite(address &+ 5, size: 1, (descriptor.raw >> 40) & 0xff | 2)
      state.tr = segment
    } else {
      state.ldtr = segment
    }
  }

  /// The descriptor a LAR/LSL/VERR/VERW selector names, if it exists and the privilege rule
  /// passes (DPL ≥ CPL and DPL ≥ RPL, except for conforming code). These never fault on the
  /// selector: failing sets ZF = 0.
  private mutating func visibleDescriptor(_ selector: UInt16) throws(X86Exception) -> SegmentDescriptor? {
    guard selector & 0xfffc != 0, let address = descriptorAddress(selector) else { return nil }
    let descriptor = SegmentDescriptor(raw: try systemRead(address, size: 8))
    let conformingCode = descriptor.isCode && descriptor.conforming
    let rpl = UInt8(selector & 3)
    if !conformingCode && (descriptor.dpl < privilegeLevel || descriptor.dpl < rpl) { return nil }
    return descriptor
  }

  /// LAR r, r/m16: access rights (bits 8-23 of the descriptor's high dword, limit bits
  /// cleared) for code/data and the system types valid in this mode.
  mutating func lar(_ d: DecodedInstruction) throws(X86Exception) {
    if state.cr0 & ControlBit.cr0PE == 0 { throw .invalidOpcode }
    let selector = UInt16(truncatingIfNeeded: try readRM(d, size: 2))
    // LDT, TSS (available, busy) and call gates; 16-bit TSS, 16-bit call and task gates only outside IA-32e mode.
    let systemTypes: UInt16 = state.longModeActive ? 1 << 2 | 1 << 9 | 1 << 11 | 1 << 12 : 0x1a3e
    guard let descriptor = try visibleDescriptor(selector),
      descriptor.isCodeOrData || systemTypes & (1 << UInt16(descriptor.type)) != 0
    else { return state.setFlag(RFlagsBit.zero, false) }
    setRegOperand(d, (descriptor.raw >> 32) & 0x00f0_ff00 & sizeMask(d.operandSize))
    state.setFlag(RFlagsBit.zero, true)
  }

  /// LSL r, r/m16: the byte-granular limit, for code/data, LDT and TSS descriptors.
  mutating func lsl(_ d: DecodedInstruction) throws(X86Exception) {
    if state.cr0 & ControlBit.cr0PE == 0 { throw .invalidOpcode }
    let selector = UInt16(truncatingIfNeeded: try readRM(d, size: 2))
    let systemTypes: UInt16 =
      state.longModeActive ? 1 << 2 | 1 << 9 | 1 << 11 : 1 << 1 | 1 << 2 | 1 << 3 | 1 << 9 | 1 << 11
    guard let descriptor = try visibleDescriptor(selector),
      descriptor.isCodeOrData || systemTypes & (1 << UInt16(descriptor.type)) != 0
    else { return state.setFlag(RFlagsBit.zero, false) }
    setRegOperand(d, UInt64(descriptor.limit) & sizeMask(d.operandSize))
    state.setFlag(RFlagsBit.zero, true)
  }

  /// VERR: a readable code or data segment; VERW: a writable data segment.
  private mutating func verify(_ selector: UInt16, write: Bool) throws(X86Exception) -> Bool {
    guard let descriptor = try visibleDescriptor(selector), descriptor.isCodeOrData else { return false }
    if write { return descriptor.isData && descriptor.readableOrWritable }
    return descriptor.isData || descriptor.readableOrWritable
  }

  /// ARPL r/m16, r16 (legacy modes): raise the destination's RPL to the source's; ZF says whether it did.
  mutating func arpl(_ d: DecodedInstruction) throws(X86Exception) {
    if state.cr0 & ControlBit.cr0PE == 0 { throw .invalidOpcode }
    let destination = try readRM(d, size: 2)
    let source = register(d.reg, size: 2, d)
    if destination & 3 < source & 3 {
      try writeRM(d, destination & ~3 | source & 3)
      state.setFlag(RFlagsBit.zero, true)
    } else {
      state.setFlag(RFlagsBit.zero, false)
    }
  }
}
