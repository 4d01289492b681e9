/// Far CALL and JMP through call gates (SDM Vol. 3, 5.8.3-5.8.6; Vol. 2, CALL and JMP
/// "CALL-GATE"): 16- and 32-bit gates outside IA-32e mode, 64-bit (16-byte) gates in it.
/// A CALL to a more privileged non-conforming segment switches to the stack the TSS gives
/// for its DPL, pushing the old SS:rSP (and, for 16/32-bit gates, copying the gate's
/// parameter count of stack slots) before CS:rIP. JMP cannot change privilege.
extension X86Core {
  /// The call gate a far JMP/CALL selector names, with its table address, or nil when it
  /// names something else (checked by the ordinary far-transfer path).
  mutating func callGate(_ selector: UInt16) throws(X86Exception) -> (SegmentDescriptor, UInt64)? {
    guard selector & 0xfffc != 0, let address = descriptorAddress(selector) else { return nil }
    let descriptor = SegmentDescriptor(raw: try systemRead(address, size: 8))
    if descriptor.isCodeOrData { return nil }
    let isGate = descriptor.type == 12 || (descriptor.type == 4 && !state.longModeActive)
    return isGate ? (descriptor, address) : nil
  }

  mutating func transferThroughCallGate(
    _ gate: SegmentDescriptor, at gateAddress: UInt64, _ gateSelector: UInt16, call: Bool
  ) throws(X86Exception) {
    let cpl = privilegeLevel
    let longMode = state.longModeActive
    let gateError = X86Core.selectorError(gateSelector)
    if gate.dpl < cpl || gate.dpl < UInt8(gateSelector & 3) { throw .generalProtection(gateError) }
    if !gate.present { throw .segmentNotPresent(gateError) }
    var offset = gate.gateOffset
    var slot: UInt8 = gate.type == 12 ? 4 : 2
    if longMode {
      // The upper half of a 64-bit gate: offset 63:32, and a type field that must be 0.
      guard descriptorAddress(gateSelector &+ 8) != nil else { throw .generalProtection(gateError) }
      let upper = try systemRead(gateAddress &+ 8, size: 8)
      if (upper >> 40) & 0x1f != 0 { throw .generalProtection(gateError) }
      offset |= (upper & 0xffff_ffff) << 32
      slot = 8
    } else if slot == 2 {
      offset &= 0xffff
    }
    let codeSelector = gate.gateSelector
    if codeSelector & 0xfffc == 0 { throw .generalProtection(0) }
    let codeError = X86Core.selectorError(codeSelector)
    let (code, codeAddress) = try readDescriptor(codeSelector, else: .generalProtection(codeError))
    if !code.isCode || code.dpl > cpl { throw .generalProtection(codeError) }
    if !call && !code.conforming && code.dpl != cpl { throw .generalProtection(codeError) }
    if !code.present { throw .segmentNotPresent(codeError) }
    if longMode {
      if !code.longMode || code.defaultBig { throw .generalProtection(codeError) }
      if !isCanonical(offset) { throw .generalProtection(0) }
    } else if offset > UInt64(code.limit) {
      throw .generalProtection(0)
    }
    let newCPL = code.conforming ? cpl : code.dpl
    let newCS = code.codeSegment(selector: codeSelector, cpl: newCPL)
    if !call {
      try setAccessed(code, at: codeAddress)
      state[.cs] = newCS
      state.rip = offset
      codeSegmentChanged()
      return
    }
    let returnCS = UInt64(state[.cs].selector)
    let returnIP = state.rip
    // The accessed bit first: nothing below may fault once a register has changed.
    try setAccessed(code, at: codeAddress)
    if newCPL < cpl {
      try callToInnerLevel(gate, newCPL: newCPL, slot: slot, returnCS: returnCS, returnIP: returnIP)
    } else {
      // Same level: CS and rIP on the current stack, in gate-sized slots.
      let width = stackAddressSize
      let csSlot = (state.gpr[4] &- UInt64(slot)) & sizeMask(width)
      let ipSlot = (csSlot &- UInt64(slot)) & sizeMask(width)
      try write(SegmentName.ss.rawValue, csSlot, size: slot, returnCS)
      try write(SegmentName.ss.rawValue, ipSlot, size: slot, returnIP & sizeMask(slot))
      setStackPointer(ipSlot, width)
    }
    state[.cs] = newCS
    state.rip = offset
    codeSegmentChanged()
  }

  /// The stack switch of a CALL through a gate to a more privileged level.
  private mutating func callToInnerLevel(
    _ gate: SegmentDescriptor, newCPL: UInt8, slot: UInt8, returnCS: UInt64, returnIP: UInt64
  ) throws(X86Exception) {
    let oldSS = state[.ss]
    let oldSP = state.gpr[4]
    if state.longModeActive {
      // 64-bit gates: RSPn from the TSS (no IST, no alignment), SS null with RPL = new CPL.
      var rsp = try tss64Field(4 + UInt64(newCPL) * 8, ext: 0)
      let frame: InlineArray<4, UInt64> = [UInt64(oldSS.selector), oldSP, returnCS, returnIP]
      for index in 0..<4 {
        rsp &-= 8
        if !isCanonical(rsp) { throw .stackFault(0) }
        try systemWrite(rsp, size: 8, frame[index], user: newCPL == 3)
      }
      state[.ss] = .null(selector: UInt16(newCPL), dpl: newCPL)
      state.gpr[4] = rsp
      return
    }
    let (ss, ssDescriptor, ssAddress, newSP) = try innerStack(newCPL, ext: 0)
    let ssError = X86Core.selectorError(ss.selector)
    let width: UInt8 = ss.defaultBig ? 4 : 2
    let oldWidth: UInt8 = oldSS.defaultBig ? 4 : 2
    let count = Int((gate.raw >> 32) & 0x1f)
    var sp = newSP
    func pushNew(_ core: inout X86Core, _ value: UInt64) throws(X86Exception) {
      sp = (sp &- UInt64(slot)) & sizeMask(width)
      try core.checkStackLimit(ss, sp, size: slot, code: ssError)
      try core.systemWrite(ss.base &+ sp, size: slot, value & sizeMask(slot), user: newCPL == 3)
    }
    try pushNew(&self, UInt64(oldSS.selector))
    try pushNew(&self, oldSP)
    // Parameters: the caller's top `count` slots, copied so they keep their order.
    for index in stride(from: count - 1, through: 0, by: -1) {
      let offset = (oldSP &+ UInt64(index) * UInt64(slot)) & sizeMask(oldWidth)
      try pushNew(&self, try read(SegmentName.ss.rawValue, offset, size: slot))
    }
    try pushNew(&self, returnCS)
    try setAccessed(ssDescriptor, at: ssAddress)
    try pushNew(&self, returnIP)
    state[.ss] = ss
    setStackPointer(sp, width)
  }
}
