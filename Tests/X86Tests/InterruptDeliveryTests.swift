import GuestMemory
import Testing

@testable import X86

/// Exception and interrupt delivery through the IDT in IA-32e mode (SDM Vol. 3, 6.14), with
/// escalation to #DF and shutdown (6.15, tables 6-4/6-5), and through the IVT in real mode
/// (20.1.4). Expected frames are written from those sections.
struct LongModeDeliveryTests {
  func kernelSandbox(_ code: [UInt8], setup: (inout X86State) -> Void = { _ in }) throws -> X86Sandbox {
    let s = try makeSandbox(code)
    try s.installLongModeTables()
    var state = s.cpu.state
    setup(&state)
    s.cpu.state = state
    return s
  }

  /// Marks the 2 MiB page at `address` not present (the sandbox maps the first GiB with 2 MiB pages).
  func unmap(_ s: X86Sandbox, _ address: UInt64) throws {
    try s.store64(0, X86Sandbox.pageTableBase + 0x2000 + (address >> 21) * 8)
    s.cpu.state = s.cpu.state  // drops the TLB
  }

  @Test func divideErrorAtCPL0PushesSSRSPAndAlignsTheStack() throws {
    // div rcx with rcx = 0: #DE, a fault (RIP at the DIV). 64-bit mode always pushes SS:RSP,
    // and RSP is aligned down to 16 first (SDM 6.14.2). The fault pushes RF = 1 (17.3.1.1).
    let s = try kernelSandbox([0x48, 0xf7, 0xf1]) {
      $0[.rsp] = Layout.stackTop + 8
      $0.rflags = F.fixed | F.if | F.cf
    }
    #expect(s.cpu.step() == .delivered(.divideError))
    #expect(s.cpu.state.rip == SysLayout.handler)
    #expect(s.cpu.state[.cs].selector == Sel.kernelCode && s.cpu.state[.ss].selector == Sel.kernelData)
    #expect(s.reg(.rsp) == Layout.stackTop - 40)
    let frame = try s.stackQuads(5)
    #expect(
      frame == [Layout.code, UInt64(Sel.kernelCode), F.fixed | F.if | F.cf | 0x1_0000, Layout.stackTop + 8, 0x10])
    // An interrupt gate clears IF; RF, TF, NT are clear in the handler.
    #expect(s.rflags == F.fixed | F.cf)
    #expect(s.cpu.retiredInstructions == 0)
  }

  @Test func userPageFaultSwitchesToRSP0WithNullSS() throws {
    // mov rax, [0x600010] at CPL 3 with that page not present: #PF(U=1) = 4, CR2 set, and
    // the handler runs at CPL 0 on RSP0 with SS = null selector (RPL 0) (SDM 6.14.4).
    let s = try kernelSandbox([0x48, 0x8b, 0x04, 0x25, 0x10, 0x00, 0x60, 0x00])
    try unmap(s, 0x60_0000)
    s.enterUserMode64()
    #expect(s.cpu.step() == .delivered(.pageFault(PageFaultCode.user)))
    #expect(s.cpu.state.cr2 == 0x60_0010)
    #expect(s.cpu.state.rip == SysLayout.handler + 14 * 16 && s.cpu.state.cpl == 0)
    #expect(s.cpu.state[.ss].selector == 0 && s.cpu.state[.cs].selector == Sel.kernelCode)
    #expect(s.reg(.rsp) == SysLayout.kernelStack - 48)
    let frame = try s.stackQuads(6)
    #expect(
      frame == [
        UInt64(PageFaultCode.user), Layout.code, UInt64(Sel.userCode64 | 3), F.fixed | 0x1_0000, Layout.stackTop,
        UInt64(Sel.userData | 3),
      ])
  }

  @Test func softwareInterruptChecksGateDPLButHardwareDoesNot() throws {
    // int 0x80 (gate DPL 3) from CPL 3: delivered, return address after the INT (a trap).
    let s = try kernelSandbox([0xcd, 0x80])
    s.enterUserMode64()
    #expect(s.cpu.step() == .delivered(X86Exception(vector: 0x80, kind: .softwareInterrupt)))
    #expect(s.cpu.state.rip == SysLayout.handler + 0x800)
    #expect(try s.stackQuads(1) == [Layout.code + 2])
    #expect(s.cpu.retiredInstructions == 1)

    // int 0x81 (gate DPL 0) from CPL 3: #GP(0x81·8 + 2), EXT = 0 (SDM Vol. 2, INT n).
    let t = try kernelSandbox([0xcd, 0x81])
    t.enterUserMode64()
    #expect(t.cpu.step() == .delivered(.generalProtection(0x40a)))
    #expect(t.cpu.state.rip == SysLayout.handler + 13 * 16)
    // The INT did not complete: the frame points at it and it did not retire.
    #expect(try t.stackQuads(2) == [0x40a, Layout.code])
    #expect(t.cpu.retiredInstructions == 0)

    // The same vector as a hardware interrupt skips the DPL check.
    let u = try kernelSandbox([0x90])
    u.enterUserMode64()
    #expect(
      u.cpu.deliverExternalInterrupt(vector: 0x81) == .delivered(X86Exception(vector: 0x81, kind: .externalInterrupt)))
    #expect(u.cpu.state.rip == SysLayout.handler + 0x810 && u.cpu.state.cpl == 0)
  }

  @Test func notPresentGateRaisesNPWithEXTForAHardwareInterrupt() throws {
    let s = try kernelSandbox([0x90])
    try s.store64(s.load64(SysLayout.idt + 0x90 * 16) & ~(1 << 47), SysLayout.idt + 0x90 * 16)
    // #NP(0x90·8 + 2 + EXT) (SDM 6.13: IDT bit and EXT).
    #expect(s.cpu.deliverExternalInterrupt(vector: 0x90) == .delivered(.segmentNotPresent(0x483)))
    #expect(s.cpu.state.rip == SysLayout.handler + 11 * 16)
  }

  @Test func hardwareInterruptWakesHLTAndReturnsAfterIt() throws {
    let s = try kernelSandbox([0xf4, 0x90]) { $0.rflags = F.fixed | F.if }
    #expect(s.cpu.acceptsInterrupts)
    #expect(s.cpu.step() == .halted)
    #expect(s.cpu.step() == .halted)
    #expect(
      s.cpu.deliverExternalInterrupt(vector: 0x40) == .delivered(X86Exception(vector: 0x40, kind: .externalInterrupt)))
    #expect(!s.cpu.state.halted && s.cpu.state.rip == SysLayout.handler + 0x400)
    // Pushed RIP: the instruction after HLT; pushed RFLAGS has IF, the handler's does not.
    #expect(try s.stackQuads(3) == [Layout.code + 1, UInt64(Sel.kernelCode), F.fixed | F.if])
    #expect(!s.cpu.acceptsInterrupts)
  }

  @Test func interruptShadowsOfSTIAndMOVSS() throws {
    // sti; nop: no interrupt until after the instruction following STI (SDM Vol. 2, STI).
    let s = try kernelSandbox([0xfb, 0x90, 0x90])
    #expect(s.cpu.step() == .retired)
    #expect(!s.cpu.acceptsInterrupts && s.cpu.acceptsNMI)
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.acceptsInterrupts)
    // mov ss, ax: blocks interrupts and NMIs for one instruction (SDM Vol. 3, 6.8.3).
    let t = try kernelSandbox([0x8e, 0xd0, 0x90]) {
      $0[.rax] = UInt64(Sel.kernelData)
      $0.rflags = F.fixed | F.if
    }
    #expect(t.cpu.step() == .retired)
    #expect(!t.cpu.acceptsInterrupts && !t.cpu.acceptsNMI && t.cpu.state.stackSegmentShadow)
    #expect(t.cpu.step() == .retired)
    #expect(t.cpu.acceptsInterrupts && t.cpu.acceptsNMI)
  }

  @Test func nmiUsesTheISTAndStaysBlockedUntilIRETQ() throws {
    let s = try kernelSandbox([0x90, 0x90])
    let (low, high) = Desc.gate64(offset: SysLayout.handler + 0x20, ist: 1)
    try s.store64(low, SysLayout.idt + 2 * 16)
    try s.store64(high, SysLayout.idt + 2 * 16 + 8)
    try s.load(code: [0x48, 0xcf], at: SysLayout.handler + 0x20)  // iretq
    #expect(s.cpu.deliverNMI() == .delivered(X86Exception(vector: 2, kind: .externalInterrupt)))
    #expect(s.reg(.rsp) == SysLayout.istStack - 40 && s.cpu.state.nmiBlocked && !s.cpu.acceptsNMI)
    // A second NMI waits.
    #expect(s.cpu.deliverNMI() == .retired)
    #expect(s.reg(.rsp) == SysLayout.istStack - 40)
    #expect(s.cpu.step() == .retired)  // iretq
    #expect(s.cpu.state.rip == Layout.code && s.reg(.rsp) == Layout.stackTop && !s.cpu.state.nmiBlocked)
  }

  @Test func contributoryDuringContributoryIsDoubleFaultThenTripleFault() throws {
    // hlt at CPL 3 is #GP(0); the #GP gate is not present: #NP during #GP delivery is a
    // contributory pair, so #DF(0) is delivered instead (SDM table 6-5).
    let s = try kernelSandbox([0xf4])
    try s.store64(s.load64(SysLayout.idt + 13 * 16) & ~(1 << 47), SysLayout.idt + 13 * 16)
    s.enterUserMode64()
    #expect(s.cpu.step() == .delivered(X86Exception(vector: 8, errorCode: 0)))
    #expect(s.cpu.state.rip == SysLayout.handler + 8 * 16 && s.cpu.state.cpl == 0)
    #expect(try s.stackQuads(2) == [0, Layout.code])

    // With the #DF gate not present as well: shutdown; nothing changed.
    let t = try kernelSandbox([0xf4])
    for vector: UInt64 in [8, 13] {
      try t.store64(t.load64(SysLayout.idt + vector * 16) & ~(1 << 47), SysLayout.idt + vector * 16)
    }
    t.enterUserMode64()
    #expect(t.cpu.step() == .tripleFault)
    #expect(t.cpu.state.rip == Layout.code && t.cpu.state.cpl == 3 && t.reg(.rsp) == Layout.stackTop)
  }

  @Test func pageFaultWhilePushingAPageFaultFrameIsDoubleFault() throws {
    // A user #PF whose RSP0 stack is not present: the first push faults (#PF, W=1, CR2 =
    // the slot), a #PF during #PF delivery, so #DF; its gate uses IST1, which works.
    let s = try kernelSandbox([0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x60, 0x00])
    try unmap(s, 0x60_0000)
    try s.store64(0x60_1000, SysLayout.tss + 4)
    let (low, high) = Desc.gate64(offset: SysLayout.handler + 0x80, ist: 1)
    try s.store64(low, SysLayout.idt + 8 * 16)
    try s.store64(high, SysLayout.idt + 8 * 16 + 8)
    s.enterUserMode64()
    #expect(s.cpu.step() == .delivered(X86Exception(vector: 8, errorCode: 0)))
    #expect(s.cpu.state.cr2 == 0x60_0ff8)
    #expect(s.reg(.rsp) == SysLayout.istStack - 48 && s.cpu.state.rip == SysLayout.handler + 0x80)
    #expect(try s.stackQuads(3) == [0, Layout.code, UInt64(Sel.userCode64 | 3)])
  }

  @Test func vectorBeyondIDTLimitAndBadGateType() throws {
    // int 0x40 with the IDT limit covering only vectors 0-31: #GP(0x40·8 + 2).
    let s = try kernelSandbox([0xcd, 0x40]) { $0.idtr.limit = 32 * 16 - 1 }
    #expect(s.cpu.step() == .delivered(.generalProtection(0x202)))
    // A call gate (type 12) as #UD's IDT entry: #GP(6·8 + 2 + EXT), delivered serially
    // since #UD is benign (SDM table 6-5).
    let t = try kernelSandbox([0x0f, 0x0b])
    try t.store64(Desc.gate32(offset: 0, selector: 8, type: 12), SysLayout.idt + 6 * 16)
    #expect(t.cpu.step() == .delivered(.generalProtection(0x33)))
    #expect(try t.stackQuads(2) == [0x33, Layout.code])
    // The same for #DE (contributory) is a contributory pair: #DF.
    let u = try kernelSandbox([0x48, 0xf7, 0xf1])
    try u.store64(Desc.gate32(offset: 0, selector: 8, type: 12), SysLayout.idt)
    #expect(u.cpu.step() == .delivered(X86Exception(vector: 8, errorCode: 0)))
  }

  @Test func undeliveredByDefault() throws {
    // Without deliversExceptions the exception is the step's result, as before.
    let (s, result) = try stepFault([0x48, 0xf7, 0xf1])
    #expect(result == .exception(.divideError) && s.cpu.state.rip == Layout.code)
  }
}

/// Real-address mode: the IVT, FLAGS/CS/IP frames and IRET (SDM Vol. 3, 20.1.4; Vol. 2, INT n, IRET).
struct RealModeDeliveryTests {
  func realSandbox(_ code: [UInt8]) throws -> X86Sandbox {
    let s = try X86Sandbox()
    try s.load(code: code, at: 0x1_0100)
    var state = X86State()
    state[.cs] = SegmentRegister(selector: 0x1000, base: 0x1_0000, type: 0xb)
    state[.ss] = SegmentRegister(selector: 0x3000, base: 0x3_0000)
    state.idtr = DescriptorTableRegister(base: 0, limit: 0x3ff)
    state.rip = 0x100
    state[.rsp] = 0xfff0
    state.rflags = F.fixed | F.if | F.tf | 0x4_0000 | F.zf
    s.cpu.state = state
    s.cpu.deliversExceptions = true
    return s
  }

  @Test func intNThroughTheIVTAndIRETBack() throws {
    let s = try realSandbox([0xcd, 0x21, 0x90])
    try s.store32(0x2000_0040, 0x21 * 4)  // 2000:0040
    try s.load(code: [0xcf], at: 0x2_0040)  // iret
    #expect(s.cpu.step() == .delivered(X86Exception(vector: 0x21, kind: .softwareInterrupt)))
    #expect(s.cpu.state[.cs].selector == 0x2000 && s.cpu.state[.cs].base == 0x2_0000 && s.cpu.state.rip == 0x40)
    #expect(s.reg(.rsp) == 0xffea)
    #expect(try s.stackWords(3) == [0x102, 0x1000, UInt16(F.fixed | F.if | F.tf | F.zf)])
    // IF, TF and AC are cleared.
    #expect(s.rflags == F.fixed | F.zf)
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.state[.cs].selector == 0x1000 && s.cpu.state.rip == 0x102 && s.reg(.rsp) == 0xfff0)
    // A 16-bit IRET restores only FLAGS' low 16 bits: AC (bit 18) stays clear.
    #expect(s.rflags == F.fixed | F.if | F.tf | F.zf)
  }

  @Test func divideFaultPushesTheFaultingIP() throws {
    // div cl with cl = 0.
    let s = try realSandbox([0xf6, 0xf1])
    try s.store32(0x0500_0000, 0)
    #expect(s.cpu.step() == .delivered(.divideError))
    #expect(s.cpu.state[.cs].base == 0x5000 && s.cpu.state.rip == 0)
    #expect(try s.stackWords(2) == [0x100, 0x1000])
  }
}

/// More delivery rules: #TS from a bad TSS stack, INT1 vs INT3 DPL checks, delivery from
/// compatibility mode, an error code pushed for #AC.
struct DeliveryRuleTests {
  @Test func badStackSelectorInTheTSSIsInvalidTSS() throws {
    // 32-bit: int 0x80 from CPL 3 with SS0 = a DPL-3 segment: #TS(SS0 selector) (SDM Vol. 3,
    // 6.12.1 and table 7-1). Its own gate leads to CPL 0 too and hits the same #TS: a
    // contributory pair, so #DF, whose delivery hits it once more: shutdown.
    let s = try PM.sandbox([0xcd, 0x80], cpl: 3)
    try PM.gate(s, 0x80, offset: SysLayout.handler, dpl: 3)
    try s.store32(UInt32(PM.data3), SysLayout.tss + 8)
    s.cpu.deliversExceptions = true
    #expect(s.cpu.step() == .tripleFault)
    #expect(s.cpu.state.rip == Layout.code && s.cpu.retiredInstructions == 0)
    // With #TS's gate going to a conforming handler (runs at CPL 3 on the user stack): #TS(0x23) with EXT 0.
    let t = try PM.sandbox([0xcd, 0x80], cpl: 3)
    try PM.gate(t, 0x80, offset: SysLayout.handler, dpl: 3)
    try t.store64(Desc.gate32(offset: SysLayout.handler, selector: UInt64(PM.conforming)), SysLayout.idt + 10 * 8)
    try t.store32(UInt32(PM.data3), SysLayout.tss + 8)
    #expect(t.cpu.step() == .delivered(.invalidTSS(0x20)))
    #expect(t.cpu.state.cpl == 3 && t.cpu.state[.cs].selector == PM.conforming | 3)
    #expect(try t.stackDwords(2) == [0x20, UInt32(Layout.code)])
  }

  @Test func int1SkipsTheDPLCheckThatINT3Makes() throws {
    // Gates 1 and 3 with DPL 0, at CPL 3: INT3 is #GP(3·8 + 2); INT1 (F1) is delivered
    // (SDM Vol. 3, 6.12.1.1: the DPL check is for INT n, INT3 and INTO only).
    let s = try makeSandbox([0xcc])
    try s.installLongModeTables()
    let (low, high) = Desc.gate64(offset: SysLayout.handler + 0x30, dpl: 0)
    try s.store64(low, SysLayout.idt + 3 * 16)
    try s.store64(high, SysLayout.idt + 3 * 16 + 8)
    s.enterUserMode64()
    #expect(s.cpu.step() == .delivered(.generalProtection(0x1a)))
    let t = try makeSandbox([0xf1])
    try t.installLongModeTables()
    t.enterUserMode64()
    #expect(t.cpu.step() == .delivered(X86Exception(vector: 1, kind: .trap)))
    #expect(t.cpu.state.rip == SysLayout.handler + 0x10)
    #expect(try t.stackQuads(1) == [Layout.code + 1])
  }

  @Test func compatibilityModeDeliveryUses64BitGates() throws {
    // ud2 in compatibility mode at CPL 3: the 64-bit IDT, RSP0, SS:RSP pushed, 64-bit handler.
    let s = try makeSandbox([0x0f, 0x0b])
    try s.installLongModeTables()
    var state = s.cpu.state
    state[.cs] = SegmentDescriptor(raw: Desc.code32(dpl: 3)).segment(selector: Sel.userCode32 | 3)
    state[.ss] = .flatData(selector: Sel.userData | 3, dpl: 3)
    s.cpu.state = state
    #expect(s.cpu.step() == .delivered(.invalidOpcode))
    #expect(s.cpu.state.codeMode == .bits64 && s.cpu.state.rip == SysLayout.handler + 6 * 16)
    #expect(
      try s.stackQuads(5) == [
        Layout.code, UInt64(Sel.userCode32 | 3), F.fixed | 0x1_0000, Layout.stackTop, UInt64(Sel.userData | 3),
      ])
  }

  @Test func alignmentCheckPushesErrorCodeZero() throws {
    // mov eax, [0x200001] at CPL 3 with CR0.AM and RFLAGS.AC: #AC(0), error code 0 pushed.
    let s = try makeSandbox([0x8b, 0x04, 0x25, 0x01, 0x00, 0x20, 0x00])
    try s.installLongModeTables()
    s.enterUserMode64()
    s.cpu.state.cr0 |= ControlBit.cr0AM
    s.cpu.state.rflags = F.fixed | 0x4_0000
    #expect(s.cpu.step() == .delivered(X86Exception(vector: 17, errorCode: 0)))
    #expect(try s.stackQuads(2) == [0, Layout.code])
  }

  @Test func handlerCodeSegmentChecks() throws {
    // #UD through a gate whose selector names a 32-bit code segment: #GP(0x40 | EXT); through
    // one whose code segment is not present: #NP(0x50 | EXT). #UD is benign, so these are
    // delivered in turn (SDM Vol. 3, 6.14.1 and table 6-5).
    let s = try makeSandbox([0x0f, 0x0b])
    try s.installLongModeTables()
    let (low, high) = Desc.gate64(offset: SysLayout.handler, selector: 0x40)
    try s.store64(low, SysLayout.idt + 6 * 16)
    try s.store64(high, SysLayout.idt + 6 * 16 + 8)
    #expect(s.cpu.step() == .delivered(.generalProtection(0x41)))
    let t = try makeSandbox([0x0f, 0x0b])
    try t.installLongModeTables()
    let (low2, high2) = Desc.gate64(offset: SysLayout.handler, selector: 0x50)
    try t.store64(low2, SysLayout.idt + 6 * 16)
    try t.store64(high2, SysLayout.idt + 6 * 16 + 8)
    try t.store64(Desc.code64() & ~(1 << 47), SysLayout.gdt + 0x50)
    #expect(t.cpu.step() == .delivered(.segmentNotPresent(0x51)))
  }
}
