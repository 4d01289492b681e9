import GuestMemory
import Testing

@testable import X86

/// Far JMP/CALL/RET and IRETQ across modes (SDM Vol. 2, JMP, CALL, RET, IRET; Vol. 3, 5.8).
struct FarTransferTests {
  @Test func realToProtectedModeByFarJump() throws {
    // After CR0.PE is set the CPU still runs 16-bit code with real-mode CS; "ljmp 0x08:target"
    // (66 EA: ptr16:32) loads CS from the GDT and the code mode becomes 32-bit.
    let s = try X86Sandbox()
    try s.load(code: [0x66, 0xea, 0x00, 0x20, 0x10, 0x00, 0x08, 0x00], at: 0x7c00)
    for (index, entry) in PM.gdt.enumerated() { try s.store64(entry, SysLayout.gdt + UInt64(index) * 8) }
    var state = X86State()
    state.cr0 = ControlBit.cr0PE | 0x10
    state.gdtr = DescriptorTableRegister(base: SysLayout.gdt, limit: UInt16(PM.gdt.count * 8 - 1))
    state[.cs] = SegmentRegister(selector: 0, base: 0, type: 0xb)
    state.rip = 0x7c00
    s.cpu.state = state
    #expect(s.cpu.state.codeMode == .bits16)
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.state.rip == 0x10_2000 && s.cpu.state[.cs] == PM.segment(PM.code0))
    #expect(s.cpu.state.codeMode == .bits32)
    // The next instruction decodes as 32-bit code: B8 imm32.
    try s.load(code: [0xb8, 0x78, 0x56, 0x34, 0x12], at: 0x10_2000)
    #expect(s.cpu.step() == .retired && s.reg(.rax) == 0x1234_5678)
  }

  @Test func farCallAndReturnSameLevel() throws {
    // call 0x30:0x102000 (conforming code, 9A ptr16:32) then retf.
    let s = try PM.sandbox([0x9a, 0x00, 0x20, 0x10, 0x00, 0x30, 0x00])
    try s.load(code: [0xcb], at: 0x10_2000)
    #expect(s.cpu.step() == .retired)
    // A conforming segment keeps CPL: CS.RPL = CPL = 0.
    #expect(s.cpu.state[.cs].selector == PM.conforming && s.cpu.state.rip == 0x10_2000)
    #expect(try s.stackDwords(2) == [UInt32(Layout.code + 7), UInt32(PM.code0)])
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.state[.cs].selector == PM.code0 && s.cpu.state.rip == Layout.code + 7)
    #expect(s.reg(.rsp) == Layout.stackTop)
  }

  @Test func farJumpPrivilegeRules() throws {
    func jump(to selector: UInt16, cpl: UInt8 = 0) throws -> (X86Sandbox, StepResult) {
      let s = try PM.sandbox([0xea, 0x00, 0x20, 0x10, 0x00, UInt8(selector & 0xff), 0x00], cpl: cpl)
      s.cpu.deliversExceptions = false
      return (s, s.cpu.step())
    }
    // Non-conforming code of another DPL: #GP(selector), both ways.
    #expect(try jump(to: PM.code3).1 == .exception(.generalProtection(UInt32(PM.code3 & 0xfffc))))
    #expect(try jump(to: PM.code0, cpl: 3).1 == .exception(.generalProtection(UInt32(PM.code0))))
    // Conforming code with DPL ≤ CPL: allowed from CPL 3, which it keeps.
    let (s, ok) = try jump(to: PM.conforming, cpl: 3)
    #expect(ok == .retired && s.cpu.state[.cs].selector == PM.conforming | 3 && s.cpu.state.cpl == 3)
    // Data segment, null, not present.
    #expect(try jump(to: PM.data0).1 == .exception(.generalProtection(UInt32(PM.data0))))
    #expect(try jump(to: 0).1 == .exception(.generalProtection(0)))
    // A busy TSS as target is #GP(selector) (SDM Vol. 3, 7.3); an available one is a task switch.
    #expect(try jump(to: PM.tss).1 == .exception(.generalProtection(UInt32(PM.tss))))
    let t = try PM.sandbox([0xea, 0x00, 0x20, 0x10, 0x00, UInt8(PM.tss), 0x00])
    try t.store64(Desc.segment(base: SysLayout.tss, limit: 0x67, type: 9, s: false, g: false), SysLayout.gdt + 0x28)
    #expect(t.cpu.step() == .unsupported(.taskSwitch))
    // Offset beyond the target's limit (code16 has limit 0xffff): #GP(0).
    #expect(try jump(to: PM.code16).1 == .exception(.generalProtection(0)))
  }

  @Test func farReturnToOuterLevelSwitchesStacksAndNullsSegments() throws {
    // retf 8 at CPL 0 with EIP, CS (RPL 3), then 8 bytes of parameters, then ESP, SS.
    let s = try PM.sandbox([0xca, 0x08, 0x00])
    let words: [UInt32] = [0x2000, UInt32(PM.code3), 0xaaaa, 0xbbbb, 0x8000, UInt32(PM.data3)]
    for (index, value) in words.enumerated() { try s.store32(value, Layout.stackTop + UInt64(index) * 4) }
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.state.cpl == 3 && s.cpu.state.rip == 0x2000)
    #expect(s.cpu.state[.ss].selector == PM.data3 && s.reg(.rsp) == 0x8008)
    // DS, ES, FS, GS held DPL-0 data: nulled (SDM Vol. 2, RET).
    for name in [SegmentName.ds, .es, .fs, .gs] { #expect(s.cpu.state[name].unusable) }
  }

  @Test func farJumpFromCompatibilityModeTo64BitCode() throws {
    // In IA-32e mode a jump to an L = 1 segment enters 64-bit mode.
    let s = try makeSandbox([0xea, 0x00, 0x20, 0x10, 0x00, UInt8(Sel.userCode64 | 3), 0x00])
    try s.installLongModeTables()
    var state = s.cpu.state
    state[.cs] = SegmentDescriptor(raw: Desc.code32(dpl: 3)).segment(selector: Sel.userCode32 | 3)
    state[.ss] = .flatData(selector: Sel.userData | 3, dpl: 3)
    s.cpu.state = state
    #expect(s.cpu.state.codeMode == .bits32)
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.state.codeMode == .bits64 && s.cpu.state.rip == 0x10_2000)
    // And through memory: jmp far [rax] (FF /5, REX.W: m16:64) back to compatibility mode.
    try s.load(code: [0x48, 0xff, 0x28], at: 0x10_2000)
    try s.store64(0x10_3000, Layout.data)
    try s.store16(Sel.userCode32 | 3, Layout.data + 8)
    s.cpu.state[.rax] = Layout.data
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.state.codeMode == .bits32 && s.cpu.state.rip == 0x10_3000)
  }

  @Test func iretqToCompatibilityModeAndItsChecks() throws {
    // iretq at CPL 0 to CPL 3 compatibility code: pops RIP, CS, RFLAGS, RSP, SS.
    let s = try makeSandbox([0x48, 0xcf])
    try s.installLongModeTables()
    let frame: [UInt64] = [0x2000, UInt64(Sel.userCode32 | 3), F.fixed | F.if, 0x9000, UInt64(Sel.userData | 3)]
    for (index, value) in frame.enumerated() { try s.store64(value, Layout.stackTop + UInt64(index) * 8) }
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.state.cpl == 3 && s.cpu.state.codeMode == .bits32 && s.cpu.state.rip == 0x2000)
    #expect(s.reg(.rsp) == 0x9000 && s.cpu.state[.ss].selector == Sel.userData | 3 && s.rflags == F.fixed | F.if)
    // DS was the DPL-0 flat data segment: nulled on the way out.
    #expect(s.cpu.state[.ds].unusable)

    // A return CS with RPL < CPL is #GP(selector); NT = 1 in IA-32e mode is #GP(0).
    let t = try makeSandbox([0x48, 0xcf])
    try t.installLongModeTables()
    t.enterUserMode64()
    t.cpu.deliversExceptions = false
    try t.store64(0x2000, Layout.stackTop)
    try t.store64(UInt64(Sel.kernelCode), Layout.stackTop + 8)
    #expect(t.cpu.step() == .exception(.generalProtection(UInt32(Sel.kernelCode))))
    t.cpu.state.rflags = F.fixed | 0x4000
    #expect(t.cpu.step() == .exception(.generalProtection(0)))
  }

  @Test func iretqSameLevelPopsSSAndRSP() throws {
    // 64-bit mode always pops SS:RSP, even at the same level; a null SS is fine at CPL 0.
    let s = try makeSandbox([0x48, 0xcf])
    try s.installLongModeTables()
    let frame: [UInt64] = [0x10_4000, UInt64(Sel.kernelCode), F.fixed | F.cf, 0x7777_0000, 0]
    for (index, value) in frame.enumerated() { try s.store64(value, Layout.stackTop + UInt64(index) * 8) }
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.state.rip == 0x10_4000 && s.reg(.rsp) == 0x7777_0000 && s.cpu.state[.ss].unusable)
    #expect(s.rflags == F.fixed | F.cf)
  }
}

/// Call gates (SDM Vol. 3, 5.8.3-5.8.6; Vol. 2, CALL "CALL-GATE").
struct CallGateTests {
  @Test func callGateToInnerLevelCopiesParametersAndRetfReturns() throws {
    // At CPL 3: call 0x6b:0 through a DPL-3 32-bit call gate (selector 0x68) to code0 with
    // 2 parameters. The new stack (SS0:ESP0 from the TSS) gets SS, ESP, the 2 parameters,
    // CS, EIP; retf 8 returns and releases them on both stacks.
    let s = try PM.sandbox([0x9a, 0x00, 0x00, 0x00, 0x00, 0x6b, 0x00, 0x90], cpl: 3) {
      $0.gdtr.limit = 0x6f
      $0[.rsp] = Layout.stackTop - 8
    }
    try s.store64(
      Desc.gate32(offset: SysLayout.handler, selector: UInt64(PM.code0), type: 12, dpl: 3) | 2 << 32,
      SysLayout.gdt + 0x68)
    try s.store32(0x1111, Layout.stackTop - 8)
    try s.store32(0x2222, Layout.stackTop - 4)
    try s.load(code: [0xca, 0x08, 0x00], at: SysLayout.handler)
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.state.cpl == 0 && s.cpu.state.rip == SysLayout.handler && s.cpu.state[.ss].selector == PM.data0)
    #expect(s.reg(.rsp) == SysLayout.kernelStack - 24)
    let frame = try s.stackDwords(6)
    #expect(
      frame == [
        UInt32(Layout.code + 7), UInt32(PM.code3), 0x1111, 0x2222, UInt32(Layout.stackTop - 8), UInt32(PM.data3),
      ])
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.state.cpl == 3 && s.cpu.state.rip == Layout.code + 7 && s.reg(.rsp) == Layout.stackTop)
  }

  @Test func sixtyFourBitCallGate() throws {
    // call far [rax] (FF /3) at CPL 3 through a 16-byte call gate at GDT 0x58: RSP0 from the
    // TSS, SS null, and SS, RSP, CS, RIP pushed as quadwords.
    let s = try makeSandbox([0xff, 0x18])
    try s.installLongModeTables()
    s.cpu.deliversExceptions = false
    let (low, high) = Desc.gate64(offset: 0xffff_8000_0000_1000, selector: 0x08, type: 12, dpl: 3)
    try s.store64(low, SysLayout.gdt + 0x58)
    try s.store64(high, SysLayout.gdt + 0x60)
    s.cpu.state.gdtr.limit = 0x67
    try s.store32(0, Layout.data)
    try s.store16(0x5b, Layout.data + 4)
    s.enterUserMode64()
    s.cpu.state[.rax] = Layout.data
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.state.rip == 0xffff_8000_0000_1000 && s.cpu.state.cpl == 0 && s.cpu.state[.ss].selector == 0)
    #expect(s.reg(.rsp) == SysLayout.kernelStack - 32)
    #expect(
      try s.stackQuads(4) == [Layout.code + 2, UInt64(Sel.userCode64 | 3), Layout.stackTop, UInt64(Sel.userData | 3)])
  }

  @Test func gateChecks() throws {
    // A JMP through a gate cannot raise privilege: #GP(code selector). A gate whose DPL is
    // below CPL: #GP(gate selector).
    let s = try PM.sandbox([0xea, 0x00, 0x00, 0x00, 0x00, 0x6b, 0x00], cpl: 3) { $0.gdtr.limit = 0x6f }
    s.cpu.deliversExceptions = false
    try s.store64(Desc.gate32(offset: 0, selector: UInt64(PM.code0), type: 12, dpl: 3), SysLayout.gdt + 0x68)
    #expect(s.cpu.step() == .exception(.generalProtection(UInt32(PM.code0))))
    try s.store64(Desc.gate32(offset: 0, selector: UInt64(PM.code0), type: 12, dpl: 0), SysLayout.gdt + 0x68)
    #expect(s.cpu.step() == .exception(.generalProtection(0x68)))
  }
}

/// Real-address mode far transfers: CS = selector, base = selector·16 (SDM Vol. 2, JMP/CALL/RET "real-address mode").
struct RealModeFarTransferTests {
  @Test func farCallAndReturn() throws {
    // call 0x2000:0x0010 from 1000:0100, then retf.
    let s = try X86Sandbox()
    try s.load(code: [0x9a, 0x10, 0x00, 0x00, 0x20], at: 0x1_0100)
    try s.load(code: [0xcb], at: 0x2_0010)
    var state = X86State()
    state[.cs] = SegmentRegister(selector: 0x1000, base: 0x1_0000, type: 0xb)
    state[.ss] = SegmentRegister(selector: 0x3000, base: 0x3_0000)
    state.rip = 0x100
    state[.rsp] = 0x100
    s.cpu.state = state
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.state[.cs].selector == 0x2000 && s.cpu.state[.cs].base == 0x2_0000 && s.cpu.state.rip == 0x10)
    #expect(s.cpu.state[.cs].limit == 0xffff && s.reg(.rsp) == 0xfc)
    #expect(try s.stackWords(2) == [0x105, 0x1000])
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.state[.cs].selector == 0x1000 && s.cpu.state.rip == 0x105 && s.reg(.rsp) == 0x100)
  }
}
