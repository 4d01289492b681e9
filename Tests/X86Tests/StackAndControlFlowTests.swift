import Testing

@testable import X86

/// PUSH/POP, PUSHF/POPF, ENTER/LEAVE, CALL/RET, JMP, Jcc, LOOP, JRCXZ.
struct StackAndControlFlowTests {
  @Test func pushAndPop() throws {
    // push rax; pop rbx; push -1 (6a ff); pop r12 (41 5c)
    let s = try makeSandbox([0x50, 0x5b, 0x6a, 0xff, 0x41, 0x5c]) { $0[.rax] = 0x1234 }
    #expect(s.cpu.step() == .retired)
    #expect(try s.reg(.rsp) == Layout.stackTop - 8 && (try s.load64(Layout.stackTop - 8)) == 0x1234)
    #expect(s.cpu.run(maxInstructions: 3).executed == 3)
    #expect(s.reg(.rbx) == 0x1234 && s.reg(.r12) == ~0 && s.reg(.rsp) == Layout.stackTop)
  }

  @Test func sixteenBitPush() throws {
    // push word ptr [rax] (66 ff 30): RSP - 2
    let s = try makeSandbox([0x66, 0xff, 0x30]) { $0[.rax] = Layout.data }
    try s.store16(0xbeef, Layout.data)
    #expect(s.cpu.step() == .retired)
    #expect(try s.reg(.rsp) == Layout.stackTop - 2 && (try s.load16(Layout.stackTop - 2)) == 0xbeef)
  }

  @Test func popIntoRspBasedMemoryUsesTheIncrementedRsp() throws {
    // pop qword ptr [rsp] (8f 04 24): value read at old RSP, stored at old RSP + 8
    let s = try makeSandbox([0x8f, 0x04, 0x24]) { $0[.rsp] = Layout.stackTop - 16 }
    try s.store64(0xaaaa, Layout.stackTop - 16)
    #expect(s.cpu.step() == .retired)
    #expect(try s.reg(.rsp) == Layout.stackTop - 8 && (try s.load64(Layout.stackTop - 8)) == 0xaaaa)
  }

  @Test func pushfClearsRFAndPopfHonoursPrivilege() throws {
    // pushfq at CPL 0 with RF set: the image has RF clear
    let s = try stepOne([0x9c]) { $0.rflags = F.fixed | F.cf | RFlagsBit.resume }
    #expect(try s.load64(Layout.stackTop - 8) == F.fixed | F.cf)
    // popfq at CPL 0: IF and IOPL change; VM does not
    let p = try makeSandbox([0x9d]) { $0[.rsp] = Layout.stackTop - 8 }
    try p.store64(F.if | RFlagsBit.ioPrivilegeLevel | RFlagsBit.virtual8086 | F.zf, Layout.stackTop - 8)
    #expect(p.cpu.step() == .retired)
    #expect(p.rflags == F.fixed | F.if | RFlagsBit.ioPrivilegeLevel | F.zf)
  }

  @Test func enterAndLeave() throws {
    // enter 0x10, 0 then leave: RBP saved and restored, RSP back
    let s = try makeSandbox([0xc8, 0x10, 0x00, 0x00, 0xc9]) { $0[.rbp] = 0x1234 }
    #expect(s.cpu.step() == .retired)
    #expect(s.reg(.rbp) == Layout.stackTop - 8 && s.reg(.rsp) == Layout.stackTop - 8 - 0x10)
    #expect(try s.load64(Layout.stackTop - 8) == 0x1234)
    #expect(s.cpu.step() == .retired)
    #expect(s.reg(.rbp) == 0x1234 && s.reg(.rsp) == Layout.stackTop)
  }

  @Test func enterWithNestingLevel() throws {
    // enter 8, 2: push RBP; copy one frame pointer from [RBP-8]; push the new frame pointer
    let s = try makeSandbox([0xc8, 0x08, 0x00, 0x02]) { $0[.rbp] = Layout.data + 0x100 }
    try s.store64(0x5555, Layout.data + 0xf8)
    #expect(s.cpu.step() == .retired)
    let frame = Layout.stackTop - 8
    #expect(s.reg(.rbp) == frame && s.reg(.rsp) == frame - 16 - 8)
    #expect(try s.load64(frame) == Layout.data + 0x100)
    #expect(try s.load64(frame - 8) == 0x5555 && (try s.load64(frame - 16)) == frame)
  }

  @Test func callAndReturn() throws {
    // call +5 (e8 05 00 00 00); 5 bytes of nop; ret 8 (c2 08 00) at the target... target: ret 8
    var code: [UInt8] = [0xe8, 0x05, 0x00, 0x00, 0x00]
    code += [0x90, 0x90, 0x90, 0x90, 0x90]
    code += [0xc2, 0x08, 0x00]
    let s = try makeSandbox(code)
    #expect(s.cpu.step() == .retired)
    #expect(try s.cpu.state.rip == Layout.code + 10 && (try s.load64(Layout.stackTop - 8)) == Layout.code + 5)
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.state.rip == Layout.code + 5 && s.reg(.rsp) == Layout.stackTop + 8)
  }

  @Test func indirectBranches() throws {
    #expect(try makeSandbox([0xff, 0xe0]) { $0[.rax] = 0x12_3456 }.stepped().state.rip == 0x12_3456)  // jmp rax
    let call = try makeSandbox([0xff, 0xd3]) { $0[.rbx] = 0x4000 }  // call rbx
    #expect(call.cpu.step() == .retired)
    #expect(try call.cpu.state.rip == 0x4000 && (try call.load64(Layout.stackTop - 8)) == Layout.code + 2)
  }

  @Test func nonCanonicalBranchTargetFaultsOnTheBranch() throws {
    let (s, result) = try stepFault([0xff, 0xe0]) { $0[.rax] = 0x0000_8000_0000_0000 }
    #expect(result == .exception(.generalProtection(0)) && s.cpu.state.rip == Layout.code)
  }

  @Test func conditionalJumps() throws {
    // jz +0x10 (74 10) taken when ZF, not taken otherwise; jnz rel32 backwards
    #expect(try makeSandbox([0x74, 0x10]) { $0.rflags = F.fixed | F.zf }.stepped().state.rip == Layout.code + 0x12)
    #expect(try makeSandbox([0x74, 0x10]).stepped().state.rip == Layout.code + 2)
    let back = try makeSandbox([0x0f, 0x85, 0xfa, 0xff, 0xff, 0xff])  // jnz -6: to itself
    #expect(back.stepped().state.rip == Layout.code)
  }

  @Test func loopAndJrcxz() throws {
    // loop -2 (e2 fe): RCX 3 → 2, taken; with RCX = 1 → 0, not taken
    let taken = try makeSandbox([0xe2, 0xfe]) { $0[.rcx] = 3 }.stepped()
    #expect(taken.state.rip == Layout.code && taken.state[.rcx] == 2)
    let done = try makeSandbox([0xe2, 0xfe]) { $0[.rcx] = 1 }.stepped()
    #expect(done.state.rip == Layout.code + 2 && done.state[.rcx] == 0)
    // loope with ZF=0 falls through even when RCX stays nonzero
    #expect(try makeSandbox([0xe1, 0xfe]) { $0[.rcx] = 5 }.stepped().state.rip == Layout.code + 2)
    // jecxz (67 e3 10) looks at ECX only
    #expect(try makeSandbox([0x67, 0xe3, 0x10]) { $0[.rcx] = 1 << 32 }.stepped().state.rip == Layout.code + 0x13)
  }
}

extension X86Sandbox {
  /// Steps once, expecting retirement, and returns the CPU for inspection.
  func stepped() -> X86CPU {
    #expect(cpu.step() == .retired)
    return cpu
  }
}
