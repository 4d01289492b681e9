import GuestMemory
import Testing

@testable import X86

/// MOV to/from CRn, CLTS, LMSW, SMSW, INVD/WBINVD (SDM Vol. 2, those entries; Vol. 3, 2.5) and
/// the IA-32e activation sequence (SDM Vol. 3, 9.8.5).
struct ControlRegisterTests {
  static let movRaxFromCR0: [UInt8] = [0x0f, 0x20, 0xc0]
  static let movCR0FromRax: [UInt8] = [0x0f, 0x22, 0xc0]
  static let movCR3FromRax: [UInt8] = [0x0f, 0x22, 0xd8]
  static let movCR4FromRax: [UInt8] = [0x0f, 0x22, 0xe0]

  func userMode64(_ state: inout X86State) {
    state[.cs] = .flatCode64(selector: 0x33, dpl: 3)
    state[.ss] = .flatData(selector: 0x2b, dpl: 3)
  }

  /// The sandbox's CR4 (X86Sandbox): PAE for its 4-level paging, OSFXSR (9) and OSXMMEXCPT
  /// (10) so that SSE instructions run.
  static let sandboxCR4 = ControlBit.cr4PAE | 1 << 9 | 1 << 10

  @Test func readsGiveTheRegisters() throws {
    let s = try stepOne(Self.movRaxFromCR0)
    #expect(s.reg(.rax) == s.cpu.state.cr0)
    let cr4 = try stepOne([0x0f, 0x20, 0xe1])  // mov rcx, cr4
    #expect(cr4.reg(.rcx) == Self.sandboxCR4)
    let cr2 = try stepOne([0x0f, 0x20, 0xd2]) { $0.cr2 = 0xffff_8000_dead_b000 }  // mov rdx, cr2
    #expect(cr2.reg(.rdx) == 0xffff_8000_dead_b000)
    // The mod field is ignored: 0F 20 00 is mov rax, cr0 in three bytes, no displacement.
    let modZero = try stepOne([0x0f, 0x20, 0x00])
    #expect(modZero.reg(.rax) == modZero.cpu.state.cr0)
  }

  @Test func undefinedControlRegistersAndLock() throws {
    // CR1, CR5, CR9 (REX.R), and LOCK MOV CR0 (AMD's CR8 alias is not offered): #UD.
    for code: [UInt8] in [
      [0x0f, 0x22, 0xc8], [0x0f, 0x20, 0xe8], [0x44, 0x0f, 0x22, 0xc8], [0xf0, 0x0f, 0x22, 0xc0],
    ] {
      let (s, result) = try stepFault(code)
      #expect(result == .exception(.invalidOpcode), "\(code)")
      #expect(s.cpu.state.rip == Layout.code)
    }
  }

  @Test func privilegedAtCPL3() throws {
    // Every form except SMSW is #GP(0) outside ring 0 (no CR4.UMIP in this model).
    let codes: [[UInt8]] = [
      Self.movRaxFromCR0, Self.movCR0FromRax, [0x0f, 0x06], [0x0f, 0x08], [0x0f, 0x09], [0x0f, 0x01, 0xf0],
    ]
    for code in codes {
      let (_, result) = try stepFault(code) { userMode64(&$0) }
      #expect(result == .exception(.generalProtection(0)), "\(code)")
    }
    let s = try stepOne([0x0f, 0x01, 0xe0]) { userMode64(&$0) }  // smsw eax
    #expect(s.reg(.rax) == s.cpu.state.cr0 & 0xffff_ffff)
  }

  @Test func cr0Checks() throws {
    let cr0 = X86Sandbox.longModeState(cr3: 0x1000).cr0
    // Bits 63:32 are #GP(0); so is clearing PG in 64-bit mode.
    for value in [cr0 | 1 << 32, cr0 & ~ControlBit.cr0PG] {
      let (s, result) = try stepFault(Self.movCR0FromRax) { $0[.rax] = value }
      #expect(result == .exception(.generalProtection(0)))
      #expect(s.cpu.state.cr0 == cr0 && s.cpu.state.longModeActive)
    }
    // NW without CD.
    let (_, noCache) = try stepFault(Self.movCR0FromRax) { $0[.rax] = cr0 | 1 << 29 }
    #expect(noCache == .exception(.generalProtection(0)))
    // Reserved bits 31:0 are ignored and ET stays set; AM, NE, MP, CD|NW are kept.
    let s = try stepOne(Self.movCR0FromRax) { $0[.rax] = (cr0 | 0x6000_0022 | 1 << 18 | 1 << 6 | 1 << 17) & ~0x10 }
    #expect(s.cpu.state.cr0 == cr0 | 0x6000_0022 | 1 << 18)
  }

  @Test func pagingNeedsProtection() throws {
    // 32-bit protected mode without paging: PG with PE clear is #GP(0).
    let s = try X86Sandbox()
    try s.load(code: Self.movCR0FromRax, at: Layout.code)
    var state = protectedModeState(cr3: 0x1000, cr4: 0, paging: false)
    state[.rax] = ControlBit.cr0PG | 0x10
    s.cpu.state = state
    #expect(s.cpu.step() == .exception(.generalProtection(0)))
  }

  @Test func cr3AndCR4Checks() throws {
    // CR3: bit 63 (no PCIDs) and bits above MAXPHYADDR = 46 are reserved.
    for value: UInt64 in [1 << 63, 1 << 46] {
      let (s, result) = try stepFault(Self.movCR3FromRax) { $0[.rax] = value | 0x1000 }
      #expect(result == .exception(.generalProtection(0)))
      #expect(s.cpu.state.cr3 == 0x1000)
    }
    let cr3 = try stepOne(Self.movCR3FromRax) { $0[.rax] = 0x1018 }  // PWT, PCD kept
    #expect(cr3.cpu.state.cr3 == 0x1018)
    // CR4: PAE cannot be cleared in IA-32e mode; LA57 (12), VMXE (13), PCIDE (17), bit 32 are
    // features this model lacks, so #GP(0).
    for value in [0, ControlBit.cr4PAE | 1 << 12, ControlBit.cr4PAE | 1 << 13, ControlBit.cr4PAE | 1 << 17, 1 << 32] {
      let (s, result) = try stepFault(Self.movCR4FromRax) { $0[.rax] = value }
      #expect(result == .exception(.generalProtection(0)), "\(value)")
      #expect(s.cpu.state.cr4 == Self.sandboxCR4)
    }
    let cr4Value = ControlBit.cr4PAE | ControlBit.cr4PGE | ControlBit.cr4PSE | ControlBit.cr4TSD
    let cr4 = try stepOne(Self.movCR4FromRax) { $0[.rax] = cr4Value }
    #expect(cr4.cpu.state.cr4 == cr4Value)
  }

  @Test func cr8HoldsFourBits() throws {
    // mov cr8, rax; mov rcx, cr8 (REX.R selects CR8)
    let s = try makeSandbox([0x44, 0x0f, 0x22, 0xc0, 0x44, 0x0f, 0x20, 0xc1]) { $0[.rax] = 0xa }
    #expect(s.cpu.run(maxInstructions: 2).executed == 2)
    #expect(s.cpu.state.cr8 == 0xa && s.reg(.rcx) == 0xa)
    let (_, result) = try stepFault([0x44, 0x0f, 0x22, 0xc0]) { $0[.rax] = 0x10 }
    #expect(result == .exception(.generalProtection(0)))
  }

  @Test func longModeActivationAndDeactivation() throws {
    // From 32-bit protected mode without paging (SDM Vol. 3, 9.8.5): mov cr4, eax (PAE);
    // mov ecx, IA32_EFER; rdmsr; or eax, LME; wrmsr; mov cr3, ebx; mov cr0, edi (PG).
    // Then, from compatibility mode, mov cr0, esi (PG clear) leaves IA-32e mode (9.8.5.4).
    let code: [UInt8] = [
      0x0f, 0x22, 0xe0, 0xb9, 0x80, 0x00, 0x00, 0xc0, 0x0f, 0x32, 0x0d, 0x00, 0x01, 0x00, 0x00, 0x0f, 0x30,
      0x0f, 0x22, 0xdb, 0x0f, 0x22, 0xc7, 0x0f, 0x22, 0xc6,
    ]
    let s = try X86Sandbox()
    try s.load(code: code, at: Layout.code)
    var state = protectedModeState(cr3: 0, cr4: 0, paging: false)
    state[.rax] = ControlBit.cr4PAE
    state[.rbx] = X86Sandbox.pageTableBase
    state[.rdi] = ControlBit.cr0PE | ControlBit.cr0PG | 0x10
    state[.rsi] = ControlBit.cr0PE | 0x10
    s.cpu.state = state
    #expect(s.cpu.run(maxInstructions: 6).executed == 6)
    #expect(s.cpu.state.efer == ControlBit.eferLME && !s.cpu.state.longModeActive)
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.state.efer == ControlBit.eferLME | ControlBit.eferLMA)
    // CS.L = 0: compatibility mode, still 32-bit code, now through the 4-level tables.
    #expect(s.cpu.state.codeMode == .bits32 && s.cpu.core.pagingMode == .fourLevel)
    #expect(s.cpu.step() == .retired)
    #expect(!s.cpu.state.longModeActive && s.cpu.state.cr0 & ControlBit.cr0PG == 0)

    // Without CR4.PAE, setting PG with LME is #GP(0).
    let t = try X86Sandbox()
    try t.load(code: Self.movCR0FromRax, at: Layout.code)
    var noPAE = protectedModeState(cr3: X86Sandbox.pageTableBase, cr4: 0, efer: ControlBit.eferLME, paging: false)
    noPAE[.rax] = ControlBit.cr0PE | ControlBit.cr0PG | 0x10
    t.cpu.state = noPAE
    #expect(t.cpu.step() == .exception(.generalProtection(0)))
    #expect(!t.cpu.state.longModeActive && t.cpu.state.cr0 & ControlBit.cr0PG == 0)
  }

  @Test func cltsLmswSmsw() throws {
    let clts = try stepOne([0x0f, 0x06]) { $0.cr0 |= 1 << 3 }
    #expect(clts.cpu.state.cr0 & (1 << 3) == 0)
    // LMSW ax with AX = 2 (MP): PE cannot be cleared, MP is set (SDM Vol. 2, LMSW).
    let lmsw = try stepOne([0x0f, 0x01, 0xf0]) { $0[.rax] = 0xfff2 }
    #expect(lmsw.cpu.state.cr0 & 0xf == 0x3 && lmsw.cpu.state.cr0 & ControlBit.cr0PG != 0)
    // SMSW: REX.W stores all of CR0; the memory form stores 16 bits only.
    let smsw64 = try stepOne([0x48, 0x0f, 0x01, 0xe0]) { $0.cr0 |= 1 << 3 }
    #expect(smsw64.reg(.rax) == smsw64.cpu.state.cr0)
    let memory = try makeSandbox([0x0f, 0x01, 0x23]) { $0[.rbx] = Layout.data }
    try memory.store32(0xffff_ffff, Layout.data)
    #expect(memory.cpu.step() == .retired)
    #expect(try memory.load32(Layout.data) == 0xffff_0000 | UInt32(memory.cpu.state.cr0 & 0xffff))
  }

  @Test func lmswSetsPEInRealMode() throws {
    let s = try X86Sandbox()
    try s.load(code: [0x0f, 0x01, 0xf0], at: 0x7c00)  // lmsw ax
    var state = X86State()
    state.rip = 0x7c00
    state[.rax] = 1
    s.cpu.state = state
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.state.cr0 & ControlBit.cr0PE != 0 && s.cpu.state.cpl == 0)
  }

  @Test func cacheInstructionsRetireInRing0() throws {
    try stepOne([0x0f, 0x08])
    try stepOne([0x0f, 0x09])
  }
}
