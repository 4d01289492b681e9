/// Exception and interrupt delivery through the IVT (real mode) or the IDT (protected mode,
/// IA-32e mode), SDM Vol. 3, chapter 6, and 20.1.4 for real mode.
///
/// Delivery is all-or-nothing: gates, descriptors and the TSS are read and checked, the
/// frame is written to memory, and only then are registers changed. A fault on the way is
/// delivered in turn, escalating to #DF or shutdown per SDM Vol. 3, tables 6-4 and 6-5.
/// Task gates are not modelled: delivery through one returns `.unsupported(.taskSwitch)`.
extension X86Core {
  /// Benign, contributory or page fault (SDM Vol. 3, table 6-4).
  private enum EventClass { case benign, contributory, pageFault, doubleFault }

  private static func eventClass(_ event: X86Exception) -> EventClass {
    // Software interrupts and hardware interrupts are benign whatever their vector.
    if event.kind == .softwareInterrupt || event.kind == .externalInterrupt { return .benign }
    switch event.vector {
    case 0, 10, 11, 12, 13: return .contributory
    case 14: return .pageFault
    case 8: return .doubleFault
    default: return .benign
    }
  }

  /// INT n, INT3 and INTO are checked against the gate's DPL and their delivery faults carry
  /// EXT = 0; every other event (exceptions, INT1, hardware interrupts) skips the DPL check
  /// and sets EXT (SDM Vol. 3, 6.12.1.1 and 6.13).
  private static func isSoftware(_ event: X86Exception) -> Bool {
    event.kind == .softwareInterrupt
      || (event.kind == .trap
        && (event.vector == X86Exception.Vector.breakpoint || event.vector == X86Exception.Vector.overflow))
  }

  /// Delivers `event` (RIP already at the instruction for a fault, after it for a trap or
  /// interrupt), escalating faults raised on the way. `instructionStart` is the RIP of the
  /// instruction that raised it: when INT n, INT3 or INTO cannot be delivered, the fault that
  /// results belongs to that instruction, which then did not complete (RIP back at it, not
  /// retired), as SDM Vol. 2, INT n describes for its #GP/#NP/#SS/#TS.
  mutating func deliverEvent(_ event: X86Exception, instructionStart: UInt64? = nil) -> StepResult {
    var current = event
    var restart = X86Core.isSoftware(event) ? instructionStart : nil
    while true {
      do {
        try deliverOnce(current)
        state.halted = false
        state.interruptShadow = false
        return .delivered(current)
      } catch {
        if let feature = unsupported {
          unsupported = nil
          return .unsupported(feature)
        }
        if let start = restart {
          // The INT did not complete after all: undo its retirement.
          state.rip = start
          retiredInstructions &-= 1
          state.tsc &-= 1
          restart = nil
        }
        let first = X86Core.eventClass(current)
        let second = X86Core.eventClass(error)
        // A contributory or page fault while delivering #DF shuts the processor down.
        if first == .doubleFault && second != .benign { return .tripleFault }
        if (first == .contributory && second == .contributory)
          || (first == .pageFault && (second == .contributory || second == .pageFault))
        {
          current = X86Exception(vector: X86Exception.Vector.doubleFault, errorCode: 0)
        } else {
          current = error
        }
      }
    }
  }

  private mutating func deliverOnce(_ event: X86Exception) throws(X86Exception) {
    let software = X86Core.isSoftware(event)
    let ext: UInt32 = software ? 0 : 1
    if state.cr0 & ControlBit.cr0PE == 0 { return try deliverReal(event) }
    if state.flagBits & RFlagsBit.virtual8086 != 0 {
      unsupported = .virtual8086
      throw .generalProtection(0)
    }
    // The flags image: for a fault, RF = 1 so that IRET does not re-raise an instruction
    // breakpoint on restart (SDM Vol. 3, 17.3.1.1); an instruction-breakpoint #DB itself pushes RF as is.
    // A trap or INT n pushes RF as the instruction left it: cleared when it started (the debug
    // path keeps RF exact), set when a trap stops a REP between iterations (SDM 18.3.1.1).
    var image = state.rflags
    if event.kind == .fault && !debug.deliveringInstructionBreakpoint { image |= RFlagsBit.resume }
    if state.longModeActive {
      try deliverLong(event, software: software, ext: ext, image: image)
    } else {
      try deliverProtected(event, software: software, ext: ext, image: image)
    }
  }

  // MARK: Real mode

  /// Real mode: the IVT entry (offset, segment) at IDTR.base + 4·vector; push FLAGS, CS, IP;
  /// clear IF, TF and AC (SDM Vol. 3, 20.1.4; Vol. 2, INT n "REAL-ADDRESS-MODE"). No error code.
  private mutating func deliverReal(_ event: X86Exception) throws(X86Exception) {
    let vector = UInt64(event.vector)
    if vector * 4 + 3 > UInt64(state.idtr.limit) { throw .generalProtection(0) }
    let entry = try systemRead(state.idtr.base &+ vector * 4, size: 4)
    let ss = state[.ss]
    let width: UInt8 = ss.defaultBig ? 4 : 2
    var sp = state.gpr[4]
    let frame: InlineArray<3, UInt64> = [
      state.rflags & 0xffff, UInt64(state[.cs].selector), state.rip & 0xffff,
    ]
    for index in 0..<3 {
      sp = (sp &- 2) & sizeMask(width)
      try checkStackLimit(ss, sp, size: 2, code: 0)
      try systemWrite(ss.base &+ sp, size: 2, frame[index])
    }
    setStackPointer(sp, width)
    let selector = UInt16(truncatingIfNeeded: entry >> 16)
    state.segments[Int(SegmentName.cs.rawValue)].selector = selector
    state.segments[Int(SegmentName.cs.rawValue)].base = UInt64(selector) << 4
    state.rip = entry & 0xffff
    state.rflags =
      state.rflags & ~(RFlagsBit.interruptEnable | RFlagsBit.trap | RFlagsBit.alignmentCheck | RFlagsBit.resume)
    codeSegmentChanged()
  }

  // MARK: Shared gate and code-segment checks

  /// The checks every IDT gate shares (SDM Vol. 2, INT n "PROTECTED-MODE"): S = 0, software
  /// interrupts need DPL ≥ CPL, then P. `idtError` is vector·8 + 2 + EXT.
  private mutating func checkGate(
    _ gate: SegmentDescriptor, software: Bool, idtError: UInt32, allowedTypes: UInt16
  ) throws(X86Exception) {
    if gate.isCodeOrData || allowedTypes & (1 << UInt16(gate.type)) == 0 { throw .generalProtection(idtError) }
    if software && gate.dpl < privilegeLevel { throw .generalProtection(idtError) }
    if !gate.present { throw .segmentNotPresent(idtError) }
  }

  /// The handler's code segment: a present code segment with DPL ≤ CPL. Returns it, its
  /// descriptor address and the new CPL (unchanged for a conforming segment).
  private mutating func handlerCodeSegment(_ selector: UInt16, ext: UInt32) throws(X86Exception) -> (
    SegmentDescriptor, UInt64, UInt8
  ) {
    if selector & 0xfffc == 0 { throw .generalProtection(ext) }
    let error = X86Core.selectorError(selector, ext: ext)
    let (code, address) = try readDescriptor(selector, else: .generalProtection(error))
    let cpl = privilegeLevel
    if !code.isCode || code.dpl > cpl { throw .generalProtection(error) }
    if !code.present { throw .segmentNotPresent(error) }
    return (code, address, code.conforming ? cpl : code.dpl)
  }

  // MARK: Protected mode (legacy)

  /// 16- and 32-bit interrupt and trap gates (SDM Vol. 3, 6.12.1): an inner-privilege handler
  /// gets the stack SS:ESP for its DPL from the TSS and the old SS:ESP pushed first; then
  /// EFLAGS, CS, EIP and any error code, each 2 or 4 bytes as the gate is 16 or 32 bits.
  private mutating func deliverProtected(
    _ event: X86Exception, software: Bool, ext: UInt32, image: UInt64
  ) throws(X86Exception) {
    let vector = UInt64(event.vector)
    let idtError = UInt32(vector << 3 | 2) | ext
    if vector * 8 + 7 > UInt64(state.idtr.limit) { throw .generalProtection(idtError) }
    let gate = SegmentDescriptor(raw: try systemRead(state.idtr.base &+ vector * 8, size: 8))
    if !gate.isCodeOrData && gate.type == 5 && gate.present {
      unsupported = .taskSwitch
      throw .generalProtection(idtError)
    }
    // 6/7: 16-bit interrupt/trap gate; 14/15: 32-bit.
    try checkGate(gate, software: software, idtError: idtError, allowedTypes: 1 << 6 | 1 << 7 | 1 << 14 | 1 << 15)
    let gateSize: UInt8 = gate.type & 8 != 0 ? 4 : 2
    let offset = gate.type & 8 != 0 ? gate.gateOffset : gate.gateOffset & 0xffff
    let (code, codeAddress, newCPL) = try handlerCodeSegment(gate.gateSelector, ext: ext)
    if offset > UInt64(code.limit) { throw .generalProtection(ext) }

    let cpl = privilegeLevel
    var ss = state[.ss]
    var ssAddress: UInt64 = 0
    var ssDescriptor = SegmentDescriptor(raw: 0)
    var sp = state.gpr[4]
    var stackError = ext
    let oldSS = UInt64(ss.selector)
    let oldSP = state.gpr[4] & 0xffff_ffff
    if newCPL < cpl {
      (ss, ssDescriptor, ssAddress, sp) = try innerStack(newCPL, ext: ext)
      stackError = X86Core.selectorError(ss.selector, ext: ext)
    }
    let width: UInt8 = ss.defaultBig ? 4 : 2
    let user = newCPL == 3
    var frame: InlineArray<6, UInt64> = .init(repeating: 0)
    var count = 0
    if newCPL < cpl {
      frame[0] = oldSS
      frame[1] = oldSP
      count = 2
    }
    frame[count] = image
    frame[count + 1] = UInt64(state[.cs].selector)
    frame[count + 2] = state.rip
    count += 3
    if let errorCode = event.errorCode {
      frame[count] = UInt64(errorCode)
      count += 1
    }
    let mask = sizeMask(gateSize)
    for index in 0..<count {
      sp = (sp &- UInt64(gateSize)) & sizeMask(width)
      try checkStackLimit(ss, sp, size: gateSize, code: stackError)
      try systemWrite(ss.base &+ sp, size: gateSize, frame[index] & mask, user: user)
    }
    try setAccessed(code, at: codeAddress)
    if newCPL < cpl {
      try setAccessed(ssDescriptor, at: ssAddress)
      state[.ss] = ss
    }
    state[.cs] = code.codeSegment(selector: gate.gateSelector, cpl: newCPL)
    setStackPointer(sp, width)
    state.rip = offset
    clearFlagsOnEntry(interruptGate: gate.type & 1 == 0)
    codeSegmentChanged()
  }

  /// SS:ESP for privilege level `dpl` from the current 32-bit (or 16-bit) TSS, with the
  /// checks of SDM Vol. 3, 6.12.1 and table 7-1: #TS for a bad selector or descriptor, #SS
  /// when not present.
  mutating func innerStack(_ dpl: UInt8, ext: UInt32) throws(X86Exception) -> (
    SegmentRegister, SegmentDescriptor, UInt64, UInt64
  ) {
    let tr = state.tr
    let tssError = X86Core.selectorError(tr.selector, ext: ext)
    let is32 = tr.type & 8 != 0
    let spOffset = is32 ? 4 + UInt64(dpl) * 8 : 2 + UInt64(dpl) * 4
    let spSize: UInt8 = is32 ? 4 : 2
    let selectorOffset = spOffset + UInt64(spSize)
    if selectorOffset + 1 > UInt64(tr.limit) { throw .invalidTSS(tssError) }
    let sp = try systemRead(tr.base &+ spOffset, size: spSize)
    let selector = UInt16(truncatingIfNeeded: try systemRead(tr.base &+ selectorOffset, size: 2))
    if selector & 0xfffc == 0 { throw .invalidTSS(ext) }
    let error = X86Core.selectorError(selector, ext: ext)
    let (descriptor, address) = try readDescriptor(selector, else: .invalidTSS(error))
    if UInt8(selector & 3) != dpl || descriptor.dpl != dpl || !descriptor.isData || !descriptor.readableOrWritable {
      throw .invalidTSS(error)
    }
    if !descriptor.present { throw .stackFault(error) }
    return (descriptor.segment(selector: selector), descriptor, address, sp)
  }

  /// TF, NT, RF and VM are cleared on entry to any handler; IF too through an interrupt gate
  /// (SDM Vol. 3, 6.12.1.3).
  private mutating func clearFlagsOnEntry(interruptGate: Bool) {
    var clear = RFlagsBit.trap | RFlagsBit.nestedTask | RFlagsBit.resume | RFlagsBit.virtual8086
    if interruptGate { clear |= RFlagsBit.interruptEnable }
    state.rflags = state.rflags & ~clear
  }

  // MARK: IA-32e mode

  /// 64-bit interrupt and trap gates (SDM Vol. 3, 6.14): 16-byte entries, a 64-bit code
  /// segment, the stack from the IST or (on a privilege change) RSPn of the 64-bit TSS,
  /// RSP aligned down to 16, and SS:RSP, RFLAGS, CS, RIP, error code always pushed as 8 bytes.
  private mutating func deliverLong(
    _ event: X86Exception, software: Bool, ext: UInt32, image: UInt64
  ) throws(X86Exception) {
    let vector = UInt64(event.vector)
    let idtError = UInt32(vector << 3 | 2) | ext
    if vector * 16 + 15 > UInt64(state.idtr.limit) { throw .generalProtection(idtError) }
    let entry = state.idtr.base &+ vector * 16
    let gate = SegmentDescriptor(raw: try systemRead(entry, size: 8))
    let upper = try systemRead(entry &+ 8, size: 8)
    // Only 64-bit interrupt (14) and trap (15) gates exist here; the type field of the
    // upper half must be 0 (SDM Vol. 3, figure 6-8).
    try checkGate(gate, software: software, idtError: idtError, allowedTypes: 1 << 14 | 1 << 15)
    if (upper >> 40) & 0x1f != 0 { throw .generalProtection(idtError) }
    let offset = gate.gateOffset | (upper & 0xffff_ffff) << 32
    let (code, codeAddress, newCPL) = try handlerCodeSegment(gate.gateSelector, ext: ext)
    if !code.longMode || code.defaultBig {
      throw .generalProtection(X86Core.selectorError(gate.gateSelector, ext: ext))
    }
    if !isCanonical(offset) { throw .generalProtection(ext) }

    let cpl = privilegeLevel
    let ist = (gate.raw >> 32) & 7
    var rsp = state.gpr[4]
    if ist != 0 {
      rsp = try tss64Field(0x24 + (ist - 1) * 8, ext: ext)
    } else if newCPL < cpl {
      rsp = try tss64Field(4 + UInt64(newCPL) * 8, ext: ext)
    }
    rsp &= ~0xf
    var frame: InlineArray<6, UInt64> = [
      UInt64(state[.ss].selector), state.gpr[4], image, UInt64(state[.cs].selector), state.rip, 0,
    ]
    var count = 5
    if let errorCode = event.errorCode {
      frame[5] = UInt64(errorCode)
      count = 6
    }
    let user = newCPL == 3
    for index in 0..<count {
      rsp &-= 8
      if !isCanonical(rsp) { throw .stackFault(ext) }
      try systemWrite(rsp, size: 8, frame[index], user: user)
    }
    try setAccessed(code, at: codeAddress)
    // A privilege change loads SS with a null selector whose RPL is the new CPL (SDM Vol. 3, 6.14.4).
    if newCPL < cpl { state[.ss] = .null(selector: UInt16(newCPL), dpl: newCPL) }
    state[.cs] = code.codeSegment(selector: gate.gateSelector, cpl: newCPL)
    state.gpr[4] = rsp
    state.rip = offset
    clearFlagsOnEntry(interruptGate: gate.type & 1 == 0)
    codeSegmentChanged()
  }

  /// An 8-byte field of the 64-bit TSS (RSPn, ISTn): #TS(TR selector) beyond its limit, and
  /// #SS(EXT) when the stack address is not canonical (SDM Vol. 3, 6.14.5).
  mutating func tss64Field(_ offset: UInt64, ext: UInt32) throws(X86Exception) -> UInt64 {
    if offset + 7 > UInt64(state.tr.limit) {
      throw .invalidTSS(X86Core.selectorError(state.tr.selector, ext: ext))
    }
    let value = try systemRead(state.tr.base &+ offset, size: 8)
    if !isCanonical(value) { throw .stackFault(ext) }
    return value
  }
}

/// Bits 63:47 all equal (48-bit linear addresses).
@inline(__always) func isCanonical(_ address: UInt64) -> Bool {
  UInt64(bitPattern: Int64(bitPattern: address << 16) >> 16) == address
}
