import GuestMemory
import Testing

@testable import X86

/// SYSCALL/SYSRET, SYSENTER/SYSEXIT, SWAPGS (SDM Vol. 2, each instruction's "Operation").
struct SystemCallTests {
  /// STAR as Linux sets it: SYSCALL CS = 0x10, SYSRET base = 0x20 (user CS 0x33, SS 0x2b).
  static let star: UInt64 = 0x0023_0010 << 32

  @Test func syscallEntersTheKernel() throws {
    let s = try makeSandbox([0x0f, 0x05]) {
      $0[.cs] = .flatCode64(selector: 0x33, dpl: 3)
      $0[.ss] = .flatData(selector: 0x2b, dpl: 3)
      $0.msr.star = SystemCallTests.star
      $0.msr.lstar = 0xffff_8000_0010_0000
      $0.msr.sfmask = F.if | F.tf | F.df
      $0.rflags = F.fixed | F.if | F.df | F.cf
    }
    #expect(s.cpu.step() == .retired)
    #expect(s.reg(.rcx) == Layout.code + 2 && s.reg(.r11) == F.fixed | F.if | F.df | F.cf)
    #expect(s.cpu.state.rip == 0xffff_8000_0010_0000 && s.rflags == F.fixed | F.cf)
    #expect(s.cpu.state[.cs] == .flatCode64(selector: 0x10) && s.cpu.state.cpl == 0)
    #expect(s.cpu.state[.ss] == .flatData(selector: 0x18))
  }

  @Test func sysretReturnsTo64BitOrCompatibilityMode() throws {
    // sysretq: RIP ← RCX, RFLAGS ← R11 (RF, VM cleared), CS = base + 16 | 3, SS = base + 8 | 3.
    let t = try makeSandbox([0x48, 0x0f, 0x07]) {
      $0.msr.star = SystemCallTests.star
      $0[.rcx] = 0x40_1000
      $0[.r11] = F.if | F.zf | 0x1_0000
    }
    #expect(t.cpu.step() == .retired)
    #expect(t.cpu.state.rip == 0x40_1000 && t.rflags == F.fixed | F.if | F.zf)
    #expect(t.cpu.state[.cs].selector == 0x33 && t.cpu.state.cpl == 3 && t.cpu.state.codeMode == .bits64)
    #expect(t.cpu.state[.ss].selector == 0x2b && t.cpu.state[.ss].dpl == 3)
    // sysretd: compatibility mode, CS = base | 3, EIP = ECX.
    let u = try makeSandbox([0x0f, 0x07]) {
      $0.msr.star = SystemCallTests.star
      $0[.rcx] = 0xdead_0000_0040_2000
    }
    #expect(u.cpu.step() == .retired)
    #expect(u.cpu.state.rip == 0x40_2000 && u.cpu.state[.cs].selector == 0x23 && u.cpu.state.codeMode == .bits32)
  }

  @Test func sysretAndSyscallFaults() throws {
    // Non-canonical RCX with REX.W: #GP(0) at CPL 0, before anything changes (Intel).
    let (s, nonCanonical) = try stepFault([0x48, 0x0f, 0x07]) {
      $0.msr.star = SystemCallTests.star
      $0[.rcx] = 0x0000_8000_0000_0000
    }
    #expect(nonCanonical == .exception(.generalProtection(0)) && s.cpu.state.cpl == 0)
    // SYSRET at CPL 3: #GP(0). With EFER.SCE clear both are #UD.
    let (_, user) = try stepFault([0x48, 0x0f, 0x07]) { $0[.cs] = .flatCode64(selector: 0x33, dpl: 3) }
    #expect(user == .exception(.generalProtection(0)))
    let (_, noSCE) = try stepFault([0x0f, 0x05]) { $0.efer &= ~ControlBit.eferSCE }
    #expect(noSCE == .exception(.invalidOpcode))
    // SYSCALL in compatibility mode is #UD (Intel).
    let (_, compat) = try stepFault([0x0f, 0x05]) {
      $0[.cs] = SegmentRegister(selector: 0x23, limit: 0xffff_ffff, type: 0xb, defaultBig: true, granularity: true)
    }
    #expect(compat == .exception(.invalidOpcode))
  }

  @Test func sysenterAndSysexit() throws {
    // 64-bit: SYSENTER → CS = SYSENTER_CS (64-bit), SS = +8, RSP/RIP from the MSRs, IF cleared.
    let s = try makeSandbox([0x0f, 0x34]) {
      $0[.cs] = .flatCode64(selector: 0x33, dpl: 3)
      $0.msr.sysenterCS = 0x10
      $0.msr.sysenterESP = 0xffff_8000_0000_9000
      $0.msr.sysenterEIP = 0xffff_8000_0000_1000
      $0.rflags = F.fixed | F.if
    }
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.state[.cs].selector == 0x10 && s.cpu.state.codeMode == .bits64 && s.cpu.state.cpl == 0)
    #expect(s.cpu.state[.ss].selector == 0x18 && s.reg(.rsp) == 0xffff_8000_0000_9000)
    #expect(s.cpu.state.rip == 0xffff_8000_0000_1000 && s.rflags == F.fixed)
    // sysexitq: CS = SYSENTER_CS + 32 | 3, SS = + 40 | 3, RSP ← RCX, RIP ← RDX.
    let t = try makeSandbox([0x48, 0x0f, 0x35]) {
      $0.msr.sysenterCS = 0x10
      $0[.rcx] = 0x7000
      $0[.rdx] = 0x40_0000
    }
    #expect(t.cpu.step() == .retired)
    #expect(t.cpu.state[.cs].selector == 0x33 && t.cpu.state[.ss].selector == 0x3b && t.cpu.state.cpl == 3)
    #expect(t.reg(.rsp) == 0x7000 && t.cpu.state.rip == 0x40_0000 && t.cpu.state.codeMode == .bits64)
    // sysexit (32-bit): CS + 16, SS + 24.
    let u = try makeSandbox([0x0f, 0x35]) {
      $0.msr.sysenterCS = 0x10
      $0[.rdx] = 0x1_0000_2000
    }
    #expect(u.cpu.step() == .retired)
    #expect(u.cpu.state[.cs].selector == 0x23 && u.cpu.state[.ss].selector == 0x2b && u.cpu.state.rip == 0x2000)
    #expect(u.cpu.state.codeMode == .bits32)
    // A null SYSENTER_CS is #GP(0).
    #expect(try stepFault([0x0f, 0x34]).1 == .exception(.generalProtection(0)))
  }

  @Test func swapgs() throws {
    let s = try stepOne([0x0f, 0x01, 0xf8]) {
      $0.gsBase = 0x1111
      $0.msr.kernelGSBase = 0x2222
    }
    #expect(s.cpu.state.gsBase == 0x2222 && s.cpu.state.msr.kernelGSBase == 0x1111)
    let (_, user) = try stepFault([0x0f, 0x01, 0xf8]) { $0[.cs] = .flatCode64(selector: 0x33, dpl: 3) }
    #expect(user == .exception(.generalProtection(0)))
    // Outside 64-bit mode SWAPGS is #UD.
    let t = try PM.sandbox([0x0f, 0x01, 0xf8])
    t.cpu.deliversExceptions = false
    #expect(t.cpu.step() == .exception(.invalidOpcode))
  }
}

/// LGDT/LIDT/SGDT/SIDT, LLDT/SLDT/LTR/STR, LAR/LSL/VERR/VERW, ARPL (SDM Vol. 2).
struct DescriptorTableTests {
  @Test func lgdtAndSgdtIn64BitMode() throws {
    // lgdt [0x200000]: a 10-byte pseudo-descriptor in 64-bit mode; sgdt [0x200010] stores it.
    let s = try makeSandbox([
      0x0f, 0x01, 0x14, 0x25, 0x00, 0x00, 0x20, 0x00, 0x0f, 0x01, 0x04, 0x25, 0x10, 0x00, 0x20, 0x00,
    ])
    try s.store16(0x3ff, Layout.data)
    try s.store64(0xffff_8000_1234_5000, Layout.data + 2)
    #expect(s.cpu.run(maxInstructions: 2).executed == 2)
    #expect(s.cpu.state.gdtr == DescriptorTableRegister(base: 0xffff_8000_1234_5000, limit: 0x3ff))
    #expect(try s.load16(Layout.data + 0x10) == 0x3ff && s.load64(Layout.data + 0x12) == 0xffff_8000_1234_5000)
    // lidt at CPL 3: #GP(0).
    let (_, user) = try stepFault([0x0f, 0x01, 0x1c, 0x25, 0x00, 0x00, 0x20, 0x00]) {
      $0[.cs] = .flatCode64(selector: 0x33, dpl: 3)
    }
    #expect(user == .exception(.generalProtection(0)))
  }

  @Test func lidtWith16BitOperandKeeps24BitsOfBase() throws {
    // 66 lidt [0x200000] in 32-bit code: base & 0xFFFFFF (SDM Vol. 2, LGDT/LIDT).
    let s = try PM.sandbox([0x66, 0x0f, 0x01, 0x1d, 0x00, 0x00, 0x20, 0x00])
    try s.store16(0x7ff, Layout.data)
    try s.store32(0x1234_5678, Layout.data + 2)
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.state.idtr == DescriptorTableRegister(base: 0x34_5678, limit: 0x7ff))
  }

  @Test func ltrMarksTheTSSBusyAndStrReadsIt() throws {
    let s = try makeSandbox([0x66, 0xb8, 0x30, 0x00, 0x0f, 0x00, 0xd8, 0x0f, 0x00, 0xc9])  // mov ax, 0x30; ltr ax; str ecx
    try s.installLongModeTables()
    try s.store64(0xffff_ffff, SysLayout.gdt + 0x38)  // base 63:32 of the 16-byte TSS descriptor
    s.cpu.deliversExceptions = false
    s.cpu.state.tr = SegmentRegister(type: 11, isCodeOrData: false)
    #expect(s.cpu.run(maxInstructions: 3).executed == 3)
    #expect(s.cpu.state.tr.selector == 0x30 && s.cpu.state.tr.type == 11)
    #expect(s.cpu.state.tr.base == 0xffff_ffff_0000_0000 | SysLayout.tss && s.cpu.state.tr.limit == 0x67)
    #expect(try s.load64(SysLayout.gdt + 0x30) >> 40 & 0xf == 11)
    #expect(s.reg(.rcx) == 0x30)
    // LTR again on the now-busy TSS: #GP(selector).
    try s.load(code: [0x0f, 0x00, 0xd8], at: Layout.code)
    s.cpu.state.rip = Layout.code
    #expect(s.cpu.step() == .exception(.generalProtection(0x30)))
    // LLDT with a selector of a code segment: #GP(selector); null is allowed.
    try s.load(code: [0x0f, 0x00, 0xd0], at: Layout.code)
    s.cpu.state.rip = Layout.code
    s.cpu.state[.rax] = 0x08
    #expect(s.cpu.step() == .exception(.generalProtection(0x08)))
    s.cpu.state[.rax] = 0
    #expect(s.cpu.step() == .retired && s.cpu.state.ldtr.unusable)
  }

  @Test func larLslVerrVerw() throws {
    // lar eax, cx; lsl edx, cx; verr cx; verw cx, each in 32-bit code at CPL 3.
    func run(_ code: [UInt8], selector: UInt16) throws -> X86Sandbox {
      let s = try PM.sandbox(code, cpl: 3) { $0[.rcx] = UInt64(selector) }
      s.cpu.deliversExceptions = false
      #expect(s.cpu.step() == .retired)
      return s
    }
    let lar = try run([0x0f, 0x02, 0xc1], selector: PM.data3)
    // Access rights of a DPL-3 writable data descriptor with D/B and G: 0x00C0F200.
    #expect(lar.reg(.rax) == 0x00c0_f200 && lar.rflags & F.zf != 0)
    let denied = try run([0x0f, 0x02, 0xc1], selector: PM.data0)  // DPL 0 < CPL 3
    #expect(denied.rflags & F.zf == 0 && denied.reg(.rax) == 0)
    let lsl = try run([0x0f, 0x03, 0xd1], selector: PM.data3)
    #expect(lsl.reg(.rdx) == 0xffff_ffff && lsl.rflags & F.zf != 0)
    let lslSmall = try PM.sandbox([0x0f, 0x03, 0xd1]) { $0[.rcx] = UInt64(PM.small) }
    #expect(lslSmall.cpu.step() == .retired && lslSmall.reg(.rdx) == 0xfff)
    #expect(try run([0x0f, 0x00, 0xe1], selector: PM.data3).rflags & F.zf != 0)  // verr
    #expect(try run([0x0f, 0x00, 0xe1], selector: PM.conforming).rflags & F.zf != 0)  // readable conforming code
    #expect(try run([0x0f, 0x00, 0xe9], selector: PM.data3).rflags & F.zf != 0)  // verw
    #expect(try run([0x0f, 0x00, 0xe9], selector: PM.code3).rflags & F.zf == 0)  // code is never writable
    #expect(try run([0x0f, 0x00, 0xe9], selector: 0x7f).rflags & F.zf == 0)  // beyond the GDT
  }

  @Test func arplInLegacyModes() throws {
    // arpl ax, cx: AX.RPL 0 < CX.RPL 3: raised, ZF = 1; otherwise ZF = 0.
    let s = try PM.sandbox([0x63, 0xc8]) {
      $0[.rax] = 0x10
      $0[.rcx] = 0x23
    }
    #expect(s.cpu.step() == .retired && s.reg(.rax) == 0x13 && s.rflags & F.zf != 0)
    let t = try PM.sandbox([0x63, 0xc8]) {
      $0[.rax] = 0x13
      $0[.rcx] = 0x20
    }
    #expect(t.cpu.step() == .retired && t.reg(.rax) == 0x13 && t.rflags & F.zf == 0)
  }
}

/// The LDT: LLDT then a segment load through a TI = 1 selector (SDM Vol. 3, 3.5.1).
struct LocalDescriptorTableTests {
  @Test func lldtThenLoadFromTheLDT() throws {
    // lldt ax (0x68: an LDT at 0xb000, limit 0xf); mov ds, cx (0x0c: LDT entry 1, RPL 0).
    let s = try PM.sandbox([0x0f, 0x00, 0xd0, 0x8e, 0xd9]) {
      $0.gdtr.limit = 0x6f
      $0[.rax] = 0x68
      $0[.rcx] = 0x0c
    }
    s.cpu.deliversExceptions = false
    try s.store64(Desc.segment(base: 0xb000, limit: 0xf, type: 2, s: false, g: false), SysLayout.gdt + 0x68)
    try s.store64(Desc.segment(base: 0x12_3000, limit: 0xff, type: 2, db: true, g: false), 0xb008)
    #expect(s.cpu.run(maxInstructions: 2).executed == 2)
    #expect(s.cpu.state.ldtr.selector == 0x68 && s.cpu.state.ldtr.base == 0xb000 && s.cpu.state.ldtr.limit == 0xf)
    #expect(s.cpu.state[.ds].base == 0x12_3000 && s.cpu.state[.ds].limit == 0xff && s.cpu.state[.ds].selector == 0x0c)
    // LDT entry 2 (selector 0x14) lies beyond the LDT's limit: #GP(0x14).
    try s.load(code: [0x8e, 0xd9], at: Layout.code)
    s.cpu.state.rip = Layout.code
    s.cpu.state[.rcx] = 0x14
    #expect(s.cpu.step() == .exception(.generalProtection(0x14)))
  }
}
