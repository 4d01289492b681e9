import GuestMemory
import Testing

@testable import X86

/// The 32-bit protected-mode world of these tests: no paging, the GDT below, 32-bit IDT
/// gates, and a 32-bit TSS with SS0:ESP0 = 0x10:kernelStack.
enum PM {
  static let code0: UInt16 = 0x08, data0: UInt16 = 0x10, code3: UInt16 = 0x1b, data3: UInt16 = 0x23
  static let tss: UInt16 = 0x28, conforming: UInt16 = 0x30, small: UInt16 = 0x38, readOnly: UInt16 = 0x40
  static let expandDown: UInt16 = 0x48, executeOnly: UInt16 = 0x50, notPresent: UInt16 = 0x58, code16: UInt16 = 0x60

  static let gdt: [UInt64] = [
    0, Desc.code32(), Desc.data32(), Desc.code32(dpl: 3), Desc.data32(dpl: 3),
    Desc.segment(base: SysLayout.tss, limit: 0x67, type: 11, s: false, g: false),
    Desc.code32(conforming: true),
    Desc.segment(base: Layout.data, limit: 0xfff, type: 2, db: true, g: false),
    Desc.segment(type: 0, db: true),
    Desc.segment(limit: 0xfff, type: 6, db: true, g: false),
    Desc.segment(type: 8, db: true),
    Desc.segment(type: 2, present: false, db: true),
    Desc.segment(limit: 0xffff, type: 0xa, g: false),
  ]

  static func segment(_ selector: UInt16) -> SegmentRegister {
    let raw = gdt[Int(selector >> 3)]
    return SegmentDescriptor(raw: raw | 1 << 40).segment(selector: selector)
  }

  /// A sandbox in 32-bit protected mode at CPL 0 (or 3), code at Layout.code.
  static func sandbox(_ code: [UInt8], cpl: UInt8 = 0, setup: (inout X86State) -> Void = { _ in }) throws
    -> X86Sandbox
  {
    let s = try X86Sandbox()
    try s.load(code: code, at: Layout.code)
    for (index, entry) in gdt.enumerated() { try s.store64(entry, SysLayout.gdt + UInt64(index) * 8) }
    try s.store32(UInt32(SysLayout.kernelStack), SysLayout.tss + 4)
    try s.store32(UInt32(data0), SysLayout.tss + 8)
    var state = X86State()
    state.cr0 = ControlBit.cr0PE | 0x10
    state.gdtr = DescriptorTableRegister(base: SysLayout.gdt, limit: UInt16(gdt.count * 8 - 1))
    state.idtr = DescriptorTableRegister(base: SysLayout.idt, limit: 0x7ff)
    state.tr = SegmentRegister(selector: tss, base: SysLayout.tss, limit: 0x67, type: 11, isCodeOrData: false)
    state[.cs] = segment(cpl == 3 ? code3 : code0)
    for name in [SegmentName.ss, .ds, .es, .fs, .gs] { state[name] = segment(cpl == 3 ? data3 : data0) }
    state.rip = Layout.code
    state[.rsp] = Layout.stackTop
    setup(&state)
    s.cpu.state = state
    s.cpu.deliversExceptions = true
    return s
  }

  static func gate(_ s: X86Sandbox, _ vector: UInt64, offset: UInt64, type: UInt64 = 0xe, dpl: UInt64 = 0) throws {
    try s.store64(
      Desc.gate32(offset: offset, selector: UInt64(code0), type: type, dpl: dpl), SysLayout.idt + vector * 8)
  }
}

/// 32-bit delivery, IRET and privilege changes (SDM Vol. 3, 6.12; Vol. 2, INT n and IRET).
struct ProtectedModeDeliveryTests {
  @Test func userTrapGateSwitchesStacksAndIRETDReturns() throws {
    // int 0x80 at CPL 3 through a DPL-3 trap gate: SS0:ESP0 from the TSS; the frame is
    // old SS, ESP, EFLAGS, CS, EIP (dwords); IF stays set through a trap gate.
    let s = try PM.sandbox([0xcd, 0x80, 0x90], cpl: 3) {
      $0.rflags = F.fixed | F.if | F.zf
      $0[.ds] = PM.segment(PM.data0)  // DPL 0: IRET to CPL 3 nulls it
    }
    try PM.gate(s, 0x80, offset: SysLayout.handler, type: 0xf, dpl: 3)
    try s.load(code: [0xcf], at: SysLayout.handler)  // iretd
    #expect(s.cpu.step() == .delivered(X86Exception(vector: 0x80, kind: .softwareInterrupt)))
    #expect(s.cpu.state.cpl == 0 && s.cpu.state.rip == SysLayout.handler)
    #expect(s.cpu.state[.ss].selector == PM.data0 && s.reg(.rsp) == SysLayout.kernelStack - 20)
    let frame = try s.stackDwords(5)
    #expect(
      frame == [
        UInt32(Layout.code + 2), UInt32(PM.code3), UInt32(F.fixed | F.if | F.zf), UInt32(Layout.stackTop),
        UInt32(PM.data3),
      ])
    #expect(s.rflags == F.fixed | F.if | F.zf)
    // The accessed bit of the handler's CS descriptor is now set.
    #expect(try s.load64(SysLayout.gdt + 8) >> 40 & 1 == 1)

    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.state.cpl == 3 && s.cpu.state.rip == Layout.code + 2)
    #expect(s.cpu.state[.ss].selector == PM.data3 && s.reg(.rsp) == Layout.stackTop)
    #expect(s.cpu.state[.ds].unusable && s.cpu.state[.ds].selector == 0)
    #expect(s.cpu.state[.es].selector == PM.data3 && !s.cpu.state[.es].unusable)
  }

  @Test func sixteenBitInterruptGatePushesWordsAndAnErrorCode() throws {
    // mov ds, ax with a selector beyond the GDT: #GP(0x78), through a 16-bit interrupt gate
    // (type 6): error code, IP, CS, FLAGS as words; IF cleared.
    let s = try PM.sandbox([0x8e, 0xd8]) {
      $0[.rax] = 0x78
      $0.rflags = F.fixed | F.if
    }
    try PM.gate(s, 13, offset: 0x1234, type: 6)
    try s.store64(Desc.segment(limit: 0xffff, type: 0xa, g: false), SysLayout.gdt + 8)
    #expect(s.cpu.step() == .delivered(.generalProtection(0x78)))
    #expect(s.cpu.state.rip == 0x1234 && s.reg(.rsp) == Layout.stackTop - 8)
    #expect(try s.stackWords(4) == [0x78, UInt16(Layout.code & 0xffff), PM.code0, UInt16(F.fixed | F.if | 0)])
    #expect(s.rflags == F.fixed)
  }

  @Test func iretToOuterLevelChecksTheReturnSelectors() throws {
    // IRET whose CS has RPL 3 but names a DPL-0 code segment: #GP(selector).
    let s = try PM.sandbox([0xcf]) { $0.rflags = F.fixed }
    s.cpu.deliversExceptions = false
    for (index, value) in [UInt32(0x1000), UInt32(PM.code0 | 3), 2, 0x8000, UInt32(PM.data3)].enumerated() {
      try s.store32(value, Layout.stackTop + UInt64(index) * 4)
    }
    #expect(s.cpu.step() == .exception(.generalProtection(UInt32(PM.code0))))
    // Returning to CPL 3 with an SS of DPL 0: #GP(SS selector).
    try s.store32(UInt32(PM.code3), Layout.stackTop + 4)
    try s.store32(UInt32(PM.data0 | 3), Layout.stackTop + 16)
    #expect(s.cpu.step() == .exception(.generalProtection(UInt32(PM.data0))))
    #expect(s.cpu.state.cpl == 0 && s.reg(.rsp) == Layout.stackTop)
  }

  @Test func iretAtCPL3CannotChangeIOPLOrIF() throws {
    // Same-level IRET at CPL 3 with IOPL 0: IOPL and IF keep their values (SDM Vol. 2, IRET).
    let s = try PM.sandbox([0xcf], cpl: 3) { $0.rflags = F.fixed }
    for (index, value) in [UInt32(0x2000), UInt32(PM.code3), UInt32(0x3000 | F.if | F.cf)].enumerated() {
      try s.store32(value, Layout.stackTop + UInt64(index) * 4)
    }
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.state.rip == 0x2000 && s.rflags == F.fixed | F.cf && s.reg(.rsp) == Layout.stackTop + 12)
  }

  @Test func taskGateIsReportedUnsupported() throws {
    let s = try PM.sandbox([0xcd, 0x30])
    try s.store64(Desc.gate32(offset: 0, selector: UInt64(PM.tss), type: 5), SysLayout.idt + 0x30 * 8)
    #expect(s.cpu.step() == .unsupported(.taskSwitch))
  }

  @Test func intoAndBound() throws {
    // into with OF = 1: #OF (vector 4), a trap: the frame's EIP is after INTO.
    let s = try PM.sandbox([0xce]) { $0.rflags = F.fixed | F.of }
    try PM.gate(s, 4, offset: SysLayout.handler)
    #expect(s.cpu.step() == .delivered(X86Exception(vector: 4, kind: .trap)))
    #expect(try s.stackDwords(1) == [UInt32(Layout.code + 1)])
    // bound eax, [0x200000] with bounds [-2, 5]: 6 is out: #BR (vector 5), a fault.
    let t = try PM.sandbox([0x62, 0x05, 0x00, 0x00, 0x20, 0x00]) { $0[.rax] = 6 }
    try t.store32(UInt32(bitPattern: -2), Layout.data)
    try t.store32(5, Layout.data + 4)
    try PM.gate(t, 5, offset: SysLayout.handler)
    #expect(t.cpu.step() == .delivered(X86Exception(vector: 5)))
    #expect(try t.stackDwords(1) == [UInt32(Layout.code)])
    // -2 is in.
    let u = try PM.sandbox([0x62, 0x05, 0x00, 0x00, 0x20, 0x00]) { $0[.rax] = 0xffff_fffe }
    try u.store32(UInt32(bitPattern: -2), Layout.data)
    try u.store32(5, Layout.data + 4)
    #expect(u.cpu.step() == .retired)
    // 64-bit mode: INTO and BOUND are #UD.
    #expect(try stepFault([0xce]).1 == .exception(.invalidOpcode))
  }
}

/// Segment loads and limit/type checks outside 64-bit mode (SDM Vol. 3, 5.3-5.6; Vol. 2, MOV, POP, LDS).
struct SegmentationTests {
  func run(_ code: [UInt8], setup: (inout X86State) -> Void = { _ in }) throws -> (X86Sandbox, StepResult) {
    let s = try PM.sandbox(code, setup: setup)
    s.cpu.deliversExceptions = false
    return (s, s.cpu.step())
  }

  @Test func limitChecksOnReadsAndWrites() throws {
    // DS = base 0x200000, limit 0xfff: mov eax, [0xffc] reads the last dword; [0xffe] crosses.
    let s = try PM.sandbox([0x8b, 0x05, 0xfc, 0x0f, 0x00, 0x00]) { $0[.ds] = PM.segment(PM.small) }
    try s.store32(0xcafe_f00d, Layout.data + 0xffc)
    #expect(s.cpu.step() == .retired && s.reg(.rax) == 0xcafe_f00d)
    let (_, crossing) = try run([0x8b, 0x05, 0xfe, 0x0f, 0x00, 0x00]) { $0[.ds] = PM.segment(PM.small) }
    #expect(crossing == .exception(.generalProtection(0)))
    // A stack reference beyond SS's limit is #SS(0): push with SS = the small segment.
    let (_, push) = try run([0x50]) {
      $0[.ss] = PM.segment(PM.small)
      $0[.rsp] = 0x1002
    }
    #expect(push == .exception(.stackFault(0)))
  }

  @Test func typeChecks() throws {
    // Writing through a read-only data segment, reading an execute-only code segment.
    let (_, write) = try run([0x89, 0x05, 0x00, 0x00, 0x00, 0x00]) { $0[.ds] = PM.segment(PM.readOnly) }
    #expect(write == .exception(.generalProtection(0)))
    let (_, read) = try run([0x8b, 0x05, 0x00, 0x00, 0x00, 0x00]) { $0[.ds] = PM.segment(PM.readOnly) }
    #expect(read == .retired)
    let (_, execRead) = try run([0x2e, 0x8b, 0x05, 0x00, 0x00, 0x00, 0x00]) { $0[.cs] = PM.segment(PM.executeOnly) }
    #expect(execRead == .exception(.generalProtection(0)))
    // Through a null DS: #GP(0).
    let (_, null) = try run([0x8b, 0x05, 0x00, 0x00, 0x00, 0x00]) { $0[.ds] = .null(selector: 0) }
    #expect(null == .exception(.generalProtection(0)))
  }

  /// The checks are precomputed per segment register (SegmentBounds.swift): each way of
  /// changing a segment register or CR0.PE must be seen by the next access.
  @Test func checksFollowSegmentLoadsAndModeChanges() throws {
    // mov ax, 0x40 (read-only data); mov ds, ax; mov [0], eax: the store is #GP(0) (SDM Vol. 3, 5.4).
    let code: [UInt8] = [0x66, 0xb8, 0x40, 0x00, 0x8e, 0xd8, 0x89, 0x05, 0x00, 0x00, 0x00, 0x00]
    for blocks in [false, true] {
      let s = try PM.sandbox(code)
      s.cpu.deliversExceptions = false
      let stop = blocks ? s.cpu.run(maxInstructions: 10).stop : [s.cpu.step(), s.cpu.step(), s.cpu.step()].last!
      #expect(stop == .exception(.generalProtection(0)) && s.cpu.state.rip == Layout.code + 6)
      // A writable DS written through the state: the store goes through.
      s.cpu.state[.ds] = PM.segment(PM.data0)
      #expect(s.cpu.step() == .retired)
    }
    // Real mode checks no type: the read-only hidden part takes a store once CR0.PE is clear
    // (mov [0], ax in 16-bit code), and refuses it again once PE is set.
    let s = try PM.sandbox([0x89, 0x06, 0x00, 0x00]) { $0[.ds] = PM.segment(PM.readOnly) }
    s.cpu.deliversExceptions = false
    var state = s.cpu.state
    state.cr0 &= ~ControlBit.cr0PE
    state[.cs] = SegmentRegister(selector: 0, base: Layout.code, limit: 0xffff, type: 0xb)
    state.rip = 0
    state[.rax] = 0xbeef
    s.cpu.state = state
    #expect(s.cpu.step() == .retired)
    #expect(try s.load16(PM.segment(PM.readOnly).base) == 0xbeef)
    state.cr0 |= ControlBit.cr0PE
    s.cpu.state = state
    #expect(s.cpu.step() == .exception(.generalProtection(0)))
  }

  @Test func expandDownStack() throws {
    // SS expand-down, limit 0xfff, B = 1: offsets 0x1000-0xffffffff are valid.
    let (s, ok) = try run([0x50]) {
      $0[.ss] = PM.segment(PM.expandDown)
      $0[.rsp] = 0x1004
      $0[.rax] = 0x1234_5678
    }
    #expect(ok == .retired && s.reg(.rsp) == 0x1000)
    #expect(try s.load32(0x1000) == 0x1234_5678)
    let (_, fault) = try run([0x50]) {
      $0[.ss] = PM.segment(PM.expandDown)
      $0[.rsp] = 0x1002
    }
    #expect(fault == .exception(.stackFault(0)))
  }

  @Test func codeSegmentLimitOnFetchAndBranches() throws {
    // nop; nop with CS limit ending after the first byte: the second fetch is #GP(0).
    let s = try PM.sandbox([0x90, 0x90]) { $0.segments[1].limit = UInt32(Layout.code) }
    s.cpu.deliversExceptions = false
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.step() == .exception(.generalProtection(0)))
    // jmp $+0x12 to beyond the limit: #GP(0) at the JMP.
    let (_, jump) = try run([0xeb, 0x10]) { $0.segments[1].limit = UInt32(Layout.code + 0x10) }
    #expect(jump == .exception(.generalProtection(0)))
  }

  @Test func movSregChecks() throws {
    // mov ds, ax for each case (selector in AX).
    func load(_ selector: UInt16, into opcode: UInt8 = 0xd8, cpl: UInt8 = 0) throws -> (X86Sandbox, StepResult) {
      let s = try PM.sandbox([0x8e, opcode], cpl: cpl) { $0[.rax] = UInt64(selector) }
      s.cpu.deliversExceptions = false
      return (s, s.cpu.step())
    }
    let (s, ok) = try load(PM.data0)
    #expect(ok == .retired && s.cpu.state[.ds] == PM.segment(PM.data0))
    // The accessed bit is set in the GDT (SDM Vol. 3, 3.4.5.1).
    #expect(try s.load64(SysLayout.gdt + 0x10) >> 40 & 1 == 1)
    #expect(try load(0x78).1 == .exception(.generalProtection(0x78)))  // beyond the GDT limit
    #expect(try load(PM.executeOnly).1 == .exception(.generalProtection(UInt32(PM.executeOnly))))
    #expect(try load(PM.notPresent).1 == .exception(.segmentNotPresent(UInt32(PM.notPresent))))
    #expect(try load(PM.data0, cpl: 3).1 == .exception(.generalProtection(UInt32(PM.data0))))  // DPL < CPL
    // Null DS is fine; null SS is #GP(0); SS with DPL ≠ CPL is #GP(sel); not present is #SS(sel).
    let (n, nullDS) = try load(0)
    #expect(nullDS == .retired && n.cpu.state[.ds].unusable)
    #expect(try load(0, into: 0xd0).1 == .exception(.generalProtection(0)))
    #expect(try load(PM.data3, into: 0xd0).1 == .exception(.generalProtection(UInt32(PM.data3 & 0xfffc))))
    #expect(try load(PM.notPresent, into: 0xd0).1 == .exception(.stackFault(UInt32(PM.notPresent))))
    // A readable conforming code segment loads into DS whatever its DPL.
    #expect(try load(PM.conforming, cpl: 3).1 == .retired)
    // mov cs, ax is #UD.
    #expect(try load(PM.code0, into: 0xc8).1 == .exception(.invalidOpcode))
  }

  @Test func nullSSIn64BitMode() throws {
    // mov ss, ax with a null selector: allowed at CPL 0 when RPL = CPL, #GP(0) at CPL 3.
    let (s, ok) = try stepFault([0x8e, 0xd0]) { $0[.rax] = 0 }
    #expect(ok == .retired && s.cpu.state[.ss].unusable)
    let user = try makeSandbox([0x8e, 0xd0])
    try user.installLongModeTables()
    user.cpu.deliversExceptions = false
    user.enterUserMode64()
    #expect(user.cpu.step() == .exception(.generalProtection(0)))
  }

  @Test func pushPopSegmentRegisters() throws {
    // push cs; pop ds (32-bit): 4-byte slots, the selector zero-extended.
    let s = try PM.sandbox([0x0e, 0x1f, 0x0f, 0xa1]) { $0[.rsp] = Layout.stackTop }
    s.cpu.deliversExceptions = false
    try s.store32(UInt32(PM.data0) | 0xffff_0000, Layout.stackTop - 4 + 4)  // for pop fs below
    #expect(s.cpu.step() == .retired)
    #expect(try s.load32(Layout.stackTop - 4) == UInt32(PM.code0) && s.reg(.rsp) == Layout.stackTop - 4)
    // pop ds with a code segment selector that is readable: fine (CS is execute/read).
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.state[.ds].selector == PM.code0 && s.reg(.rsp) == Layout.stackTop)
    // pop fs: only the low 16 bits are the selector.
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.state[.fs].selector == PM.data0 && s.reg(.rsp) == Layout.stackTop + 4)
    // In 64-bit mode the one-byte forms are #UD; 0F A0 (push fs) pushes 8 bytes.
    #expect(try stepFault([0x06]).1 == .exception(.invalidOpcode))
    #expect(try stepFault([0x1f]).1 == .exception(.invalidOpcode))
    let t = try stepOne([0x0f, 0xa0]) { $0[.fs] = .flatData(selector: 0x33) }
    #expect(try t.load64(Layout.stackTop - 8) == 0x33)
  }

  @Test func popSSOpensTheShadowAndLSSLoadsAPair() throws {
    let s = try PM.sandbox([0x17]) { $0[.rsp] = Layout.stackTop }
    try s.store32(UInt32(PM.data0), Layout.stackTop)
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.state.interruptShadow && s.cpu.state.stackSegmentShadow)
    // lss esp, [0x200000]: offset dword then selector.
    let t = try PM.sandbox([0x0f, 0xb2, 0x25, 0x00, 0x00, 0x20, 0x00])
    try t.store32(0x1234, Layout.data)
    try t.store16(PM.data0, Layout.data + 4)
    #expect(t.cpu.step() == .retired)
    #expect(t.reg(.rsp) == 0x1234 && t.cpu.state[.ss].selector == PM.data0)
    // lds with a bad selector leaves the register unchanged.
    let u = try PM.sandbox([0xc5, 0x1d, 0x00, 0x00, 0x20, 0x00]) { $0[.rbx] = 7 }
    u.cpu.deliversExceptions = false
    try u.store32(0x1234, Layout.data)
    try u.store16(0x78, Layout.data + 4)
    #expect(u.cpu.step() == .exception(.generalProtection(0x78)))
    #expect(u.reg(.rbx) == 7)
  }

  @Test func bigRealMode() throws {
    // Real mode keeps the hidden limit: with DS's limit 4 GiB, mov ds, ax sets only the
    // base, and a 32-bit offset beyond 64 KiB works (SDM Vol. 3, 20.1.1 / "unreal mode").
    let s = try X86Sandbox()
    try s.load(code: [0x8e, 0xd8, 0x67, 0x66, 0x8b, 0x03], at: 0x1_0000)  // mov ds, ax; mov eax, [ebx]
    var state = X86State()
    state[.cs] = SegmentRegister(selector: 0x1000, base: 0x1_0000, type: 0xb)
    state[.ds] = SegmentRegister(limit: 0xffff_ffff, defaultBig: true, granularity: true)
    state[.rax] = 0x2000
    state[.rbx] = 0x1_0004
    s.cpu.state = state
    try s.store32(0xabcd_ef01, 0x2_0000 + 0x1_0004)
    #expect(s.cpu.run(maxInstructions: 2).executed == 2)
    #expect(s.cpu.state[.ds].base == 0x2_0000 && s.cpu.state[.ds].limit == 0xffff_ffff)
    #expect(s.reg(.rax) == 0xabcd_ef01)
    // With the usual 64 KiB limit the same access is #GP(0).
    let t = try X86Sandbox()
    try t.load(code: [0x67, 0x66, 0x8b, 0x03], at: 0x1_0000)
    var small = X86State()
    small[.cs] = SegmentRegister(selector: 0x1000, base: 0x1_0000, type: 0xb)
    small[.rbx] = 0x1_0004
    t.cpu.state = small
    #expect(t.cpu.step() == .exception(.generalProtection(0)))
  }
}
