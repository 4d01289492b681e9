import GuestMemory
import Testing

@testable import X86

/// Paging-structure entry bits (SDM Vol. 3, tables 4-4 to 4-11).
enum PTE {
  static let p: UInt64 = 1, w: UInt64 = 2, u: UInt64 = 4, a: UInt64 = 0x20, d: UInt64 = 0x40
  static let ps: UInt64 = 0x80, g: UInt64 = 0x100, xd: UInt64 = 1 << 63
}

/// 32-bit protected mode at CPL 0 with flat segments and CR0.PE/PG/WP, for paging tests.
func protectedModeState(cr3: UInt64, cr4: UInt64, efer: UInt64 = 0, paging: Bool = true) -> X86State {
  var state = X86State()
  state.cr0 = ControlBit.cr0PE | ControlBit.cr0WP | 0x10 | (paging ? ControlBit.cr0PG : 0)
  state.cr3 = cr3
  state.cr4 = cr4
  state.efer = efer
  state[.cs] = SegmentRegister(selector: 0x08, limit: 0xffff_ffff, type: 0xb, defaultBig: true, granularity: true)
  for segment in [SegmentName.ss, .ds, .es, .fs, .gs] { state[segment] = .flatData() }
  state.rip = Layout.code
  state[.rsp] = Layout.stackTop
  return state
}

/// CPL 3 in 32-bit code.
func userMode32(_ state: inout X86State) {
  state[.cs] = SegmentRegister(
    selector: 0x1b, limit: 0xffff_ffff, type: 0xb, dpl: 3, defaultBig: true, granularity: true)
  state[.ss] = .flatData(selector: 0x23, dpl: 3)
}

/// The translation the CPU would use for `linear`, or the #PF it raises.
func translate(_ s: X86Sandbox, _ linear: UInt64, _ kind: AccessKind = .read) throws(X86Exception) -> UInt64 {
  try s.cpu.core.translate(linear, kind)
}

/// 32-bit paging (SDM Vol. 3, 4.3): 4-byte entries, 4 KiB and 4 MiB pages, PSE-36.
struct ThirtyTwoBitPagingTests {
  static let directory: UInt64 = 0x40_0000
  static let table: UInt64 = 0x40_1000
  static let notPresent: UInt64 = 0x1f_0000
  static let readOnly: UInt64 = 0x1f_1000
  static let supervisorOnly: UInt64 = 0x1f_2000
  static let globalPage: UInt64 = 0x1f_3000
  static let spare: UInt64 = 0x1f_4000

  /// PDE 0: a table mapping the first 4 MiB identically in 4 KiB pages (P W U, A/D clear;
  /// the special pages above); PDE 1: a 4 MiB page at 8 MiB; PDE 2: the same with reserved
  /// bit 21; PDE 3: a PSE-36 4 MiB page at 4 GiB + 12 MiB.
  func sandbox(
    _ code: [UInt8], cr4: UInt64 = ControlBit.cr4PSE, setup: (inout X86State) -> Void = { _ in }
  ) throws -> X86Sandbox {
    let s = try X86Sandbox()
    try s.load(code: code, at: Layout.code)
    let rights = PTE.p | PTE.w | PTE.u
    try s.store32(UInt32(Self.table | rights), Self.directory)
    try s.store32(UInt32(0x80_0000 | rights | PTE.ps), Self.directory + 4)
    try s.store32(UInt32(0x80_0000 | rights | PTE.ps | 1 << 21), Self.directory + 8)
    try s.store32(UInt32(0xc0_0000 | 1 << 13 | rights | PTE.ps), Self.directory + 12)
    for page in UInt64(0)..<1024 {
      let address = page << 12
      var entry = address | rights
      switch address {
      case Self.notPresent: entry = 0
      case Self.readOnly: entry &= ~PTE.w
      case Self.supervisorOnly: entry &= ~PTE.u
      case Self.globalPage: entry |= PTE.g
      default: break
      }
      try s.store32(UInt32(entry), Self.table + page * 4)
    }
    var state = protectedModeState(cr3: Self.directory, cr4: cr4)
    setup(&state)
    s.cpu.state = state
    return s
  }

  @Test func fourKilobytePageSetsAccessedThenDirty() throws {
    // mov eax, [ebx]; mov [ebx], eax
    let s = try sandbox([0x8b, 0x03, 0x89, 0x03]) { $0[.rbx] = Layout.data + 0x10 }
    try s.store32(0x1234_5678, Layout.data + 0x10)
    #expect(s.cpu.state.codeMode == .bits32)
    #expect(s.cpu.step() == .retired && s.reg(.rax) == 0x1234_5678)
    // SDM 4.8: A in every entry used; D only in the leaf, only on a write.
    let rights = UInt32(PTE.p | PTE.w | PTE.u)
    #expect(try s.load32(Self.directory) == UInt32(Self.table) | rights | UInt32(PTE.a))
    let pte = Self.table + (Layout.data >> 12) * 4
    #expect(try s.load32(pte) == UInt32(Layout.data) | rights | UInt32(PTE.a))
    #expect(s.cpu.step() == .retired)
    #expect(try s.load32(pte) == UInt32(Layout.data) | rights | UInt32(PTE.a | PTE.d))
    #expect(try s.load32(Self.directory) & UInt32(PTE.d) == 0)
  }

  @Test func fourMegabytePagesNeedCR4PSE() throws {
    let s = try sandbox([0x90])
    #expect(try translate(s, 0x40_1234) == 0x80_1234)
    #expect(try translate(s, 0x7f_f000, .write) == 0xbf_f000)
    // A and D land in the PDE, the leaf of a 4 MiB page.
    #expect(try s.load32(Self.directory + 4) == UInt32(0x80_0000 | PTE.p | PTE.w | PTE.u | PTE.ps | PTE.a | PTE.d))
    // Without CR4.PSE the PS bit is ignored: the PDE names a page table at 8 MiB, all zeros.
    let t = try sandbox([0x90], cr4: 0)
    #expect(throws: X86Exception.pageFault(0)) { try translate(t, 0x40_1234) }
    #expect(t.cpu.state.cr2 == 0x40_1234)
  }

  @Test func pse36MapsAbove4GiB() throws {
    // PDE bits 20:13 are physical bits 39:32 (SDM Vol. 3, table 4-4).
    let s = try sandbox([0x90])
    #expect(try translate(s, 0xc0_5678) == 0x1_00c0_5678)
  }

  @Test func reservedBit21OfA4MiBPage() throws {
    let s = try sandbox([0x8b, 0x03]) { $0[.rbx] = 0x80_0010 }
    #expect(s.cpu.step() == .exception(.pageFault(PageFaultCode.present | PageFaultCode.reservedBit)))
    #expect(s.cpu.state.cr2 == 0x80_0010 && s.cpu.state.rip == Layout.code)
  }

  @Test func pageFaultErrorCodes() throws {
    // SDM Vol. 3, 4.7: P, W/R, U/S; no I/D under 32-bit paging unless SMEP is on.
    let notPresent = try sandbox([0x8b, 0x03]) { $0[.rbx] = Self.notPresent + 4 }
    #expect(notPresent.cpu.step() == .exception(.pageFault(0)) && notPresent.cpu.state.cr2 == Self.notPresent + 4)

    let userWrite = try sandbox([0x89, 0x03]) {
      $0[.rbx] = Self.readOnly
      userMode32(&$0)
    }
    #expect(userWrite.cpu.step() == .exception(.pageFault(0x7)))

    let userRead = try sandbox([0x8b, 0x03]) {
      $0[.rbx] = Self.supervisorOnly
      userMode32(&$0)
    }
    #expect(userRead.cpu.step() == .exception(.pageFault(0x5)) && userRead.cpu.state.cr2 == Self.supervisorOnly)

    let supervisorWrite = try sandbox([0x89, 0x03]) { $0[.rbx] = Self.readOnly }
    #expect(supervisorWrite.cpu.step() == .exception(.pageFault(0x3)))
    let withoutWP = try sandbox([0x89, 0x03]) {
      $0[.rbx] = Self.readOnly
      $0[.rax] = 0xabcd
      $0.cr0 &= ~ControlBit.cr0WP
    }
    #expect(withoutWP.cpu.step() == .retired)
    #expect(try withoutWP.load32(Self.readOnly) == 0xabcd)

    let fetch = try sandbox([0x90]) { $0.rip = Self.notPresent }
    #expect(fetch.cpu.step() == .exception(.pageFault(0)) && fetch.cpu.state.cr2 == Self.notPresent)
    let fetchWithSMEP = try sandbox([0x90], cr4: ControlBit.cr4PSE | ControlBit.cr4SMEP) { $0.rip = Self.notPresent }
    #expect(fetchWithSMEP.cpu.step() == .exception(.pageFault(PageFaultCode.instructionFetch)))
  }

  // mov eax, [ebx]; mov edx, [esi]; mov cr3, ecx; mov eax, [ebx]; mov edx, [esi]; invlpg [ebx]; mov eax, [ebx]
  static let globalProgram: [UInt8] = [
    0x8b, 0x03, 0x8b, 0x16, 0x0f, 0x22, 0xd9, 0x8b, 0x03, 0x8b, 0x16, 0x0f, 0x01, 0x3b, 0x8b, 0x03,
  ]

  /// Runs `globalProgram`: after the first two loads fill the TLB, both PTEs are pointed at
  /// other frames; returns EAX and EDX after the CR3 write, then EAX after INVLPG.
  func runGlobalProgram(cr4: UInt64) throws -> (UInt64, UInt64, UInt64) {
    let s = try sandbox(Self.globalProgram, cr4: cr4) {
      $0[.rbx] = Self.globalPage
      $0[.rsi] = Self.spare
      $0[.rcx] = Self.directory
    }
    try s.store32(0x1111, Self.globalPage)
    try s.store32(0x2222, Self.spare)
    try s.store32(0x5555, 0x1f_5000)
    try s.store32(0x6666, 0x1f_6000)
    #expect(s.cpu.run(maxInstructions: 2).executed == 2)
    #expect(s.reg(.rax) == 0x1111 && s.reg(.rdx) == 0x2222)
    let rights = PTE.p | PTE.w | PTE.u | PTE.a
    try s.store32(UInt32(0x1f_5000 | rights | PTE.g), Self.table + (Self.globalPage >> 12) * 4)
    try s.store32(UInt32(0x1f_6000 | rights), Self.table + (Self.spare >> 12) * 4)
    #expect(s.cpu.run(maxInstructions: 3).executed == 3)
    let afterCR3 = (s.reg(.rax), s.reg(.rdx))
    #expect(s.cpu.run(maxInstructions: 2).executed == 2)
    return (afterCR3.0, afterCR3.1, s.reg(.rax))
  }

  @Test func globalEntriesSurviveCR3WritesUntilINVLPG() throws {
    // SDM Vol. 3, 4.10.4.1: MOV to CR3 keeps global entries (CR4.PGE); INVLPG drops them too.
    let (eax, edx, afterInvlpg) = try runGlobalProgram(cr4: ControlBit.cr4PSE | ControlBit.cr4PGE)
    #expect(eax == 0x1111 && edx == 0x6666 && afterInvlpg == 0x5555)
    // Without CR4.PGE the G bit means nothing: the CR3 write drops both.
    let (plainEAX, plainEDX, _) = try runGlobalProgram(cr4: ControlBit.cr4PSE)
    #expect(plainEAX == 0x5555 && plainEDX == 0x6666)
  }

  @Test func togglingPGEFlushesGlobalEntries() throws {
    // mov eax, [ebx]; mov cr4, ecx; mov eax, [ebx]
    let s = try sandbox([0x8b, 0x03, 0x0f, 0x22, 0xe1, 0x8b, 0x03], cr4: ControlBit.cr4PSE | ControlBit.cr4PGE) {
      $0[.rbx] = Self.globalPage
      $0[.rcx] = ControlBit.cr4PSE
    }
    try s.store32(0x1111, Self.globalPage)
    try s.store32(0x5555, 0x1f_5000)
    #expect(s.cpu.step() == .retired && s.reg(.rax) == 0x1111)
    try s.store32(UInt32(0x1f_5000 | PTE.p | PTE.w | PTE.u | PTE.a | PTE.g), Self.table + (Self.globalPage >> 12) * 4)
    #expect(s.cpu.run(maxInstructions: 2).executed == 2)
    #expect(s.reg(.rax) == 0x5555 && s.cpu.state.cr4 == ControlBit.cr4PSE)
  }

  @Test func invlpgOfALargePageDropsItsOtherPieces() throws {
    // mov eax, [ebx]; invlpg [esi]; mov eax, [ebx]: ESI is elsewhere in the same 4 MiB page.
    let s = try sandbox([0x8b, 0x03, 0x0f, 0x01, 0x3e, 0x8b, 0x03]) {
      $0[.rbx] = 0x40_0000
      $0[.rsi] = 0x7f_f000
    }
    try s.store32(0x1111, 0x80_0000)
    try s.store32(0x2222, 0xc0_0000)
    #expect(s.cpu.step() == .retired && s.reg(.rax) == 0x1111)
    try s.store32(UInt32(0xc0_0000 | PTE.p | PTE.w | PTE.u | PTE.ps | PTE.a), Self.directory + 4)
    #expect(s.cpu.run(maxInstructions: 2).executed == 2)
    #expect(s.reg(.rax) == 0x2222)
  }

  @Test func remappedCodePageRunsTheNewBytesAfterINVLPG() throws {
    // The decode cache is keyed by physical address, so a remapped code page needs only the
    // TLB (and the fetch's cached page) dropped: jmp 1F6000h; (there) mov eax, 1; jmp back;
    // invlpg [ebx]; jmp 1F6000h, which now maps the frame at 1F7000h: mov eax, 2.
    let code: [UInt8] =
      [0xe9, 0xfb, 0x5f, 0x0f, 0x00] + Array(repeating: 0x90, count: 11) + [
        0x0f, 0x01, 0x3b, 0xe9, 0xe8, 0x5f, 0x0f, 0x00,
      ]
    let s = try sandbox(code) { $0[.rbx] = 0x1f_6000 }
    try s.load(code: [0xb8, 0x01, 0x00, 0x00, 0x00, 0xe9, 0x06, 0xa0, 0xf0, 0xff], at: 0x1f_6000)
    try s.load(code: [0xb8, 0x02, 0x00, 0x00, 0x00, 0xf4], at: 0x1f_7000)
    #expect(s.cpu.run(maxInstructions: 3).executed == 3)
    #expect(s.reg(.rax) == 1 && s.cpu.state.rip == Layout.code + 0x10)
    try s.store32(UInt32(0x1f_7000 | PTE.p | PTE.w | PTE.u | PTE.a), Self.table + (0x1f_6000 >> 12) * 4)
    #expect(s.cpu.run(maxInstructions: 10).stop == .halted)
    #expect(s.reg(.rax) == 2)
  }

  @Test func invlpgIsPrivilegedAndNeedsMemory() throws {
    let (_, user) = try stepFault([0x0f, 0x01, 0x3b]) {
      $0[.cs] = .flatCode64(selector: 0x33, dpl: 3)
      $0[.ss] = .flatData(selector: 0x2b, dpl: 3)
    }
    #expect(user == .exception(.generalProtection(0)))
    let (_, register) = try stepFault([0x0f, 0x01, 0xfa])  // mod = 3, reg = 7, rm = 2: no such form
    #expect(register == .exception(.invalidOpcode))
    // A non-canonical address makes it a no-op, not a fault.
    try stepOne([0x0f, 0x01, 0x3b]) { $0[.rbx] = 0x8000_0000_0000 }
  }
}

/// PAE paging (SDM Vol. 3, 4.4): PDPTE registers, 8-byte entries, 2 MiB pages, NX.
struct PAEPagingTests {
  static let pdpt: UInt64 = 0x40_0000
  static let directory: UInt64 = 0x40_1000
  static let table: UInt64 = 0x40_2000
  static let badPDPT: UInt64 = 0x40_3000
  static let notPresent: UInt64 = 0x1f_0000

  /// PDPTE 0 → directory; PDE 0 → table (first 2 MiB identity, 4 KiB pages); PDE 1: 2 MiB
  /// identity page (data, stack); PDE 2: 2 MiB page at 4 MiB with XD; PDE 3: 2 MiB page at
  /// 6 MiB with reserved bit 13. PDPTEs 1-3 are not present. `badPDPT` has a reserved bit.
  func sandbox(
    _ code: [UInt8], efer: UInt64 = ControlBit.eferNXE, setup: (inout X86State) -> Void = { _ in }
  ) throws -> X86Sandbox {
    let s = try X86Sandbox()
    try s.load(code: code, at: Layout.code)
    let rights = PTE.p | PTE.w | PTE.u
    try s.store64(Self.directory | PTE.p, Self.pdpt)
    try s.store64(Self.directory | PTE.p | PTE.w, Self.badPDPT)  // bit 1 is reserved in a PDPTE
    try s.store64(Self.table | rights, Self.directory)
    try s.store64(0x20_0000 | rights | PTE.ps, Self.directory + 8)
    try s.store64(0x40_0000 | rights | PTE.ps | PTE.xd, Self.directory + 16)
    try s.store64(0x60_0000 | rights | PTE.ps | 1 << 13, Self.directory + 24)
    for page in UInt64(0)..<512 {
      let address = page << 12
      try s.store64(address == Self.notPresent ? 0 : address | rights, Self.table + page * 8)
    }
    var state = protectedModeState(cr3: Self.pdpt, cr4: ControlBit.cr4PAE, efer: efer)
    setup(&state)
    s.cpu.state = state
    return s
  }

  @Test func translationsAndAccessedDirtyBits() throws {
    // mov eax, [ebx]; mov [esi], eax
    let s = try sandbox([0x8b, 0x03, 0x89, 0x06]) {
      $0[.rbx] = 0x1f_5008
      $0[.rsi] = Layout.data + 0x40
    }
    try s.store32(0xfeed, 0x1f_5008)
    #expect(s.cpu.run(maxInstructions: 2).executed == 2)
    #expect(try s.load32(Layout.data + 0x40) == 0xfeed)
    let rights = PTE.p | PTE.w | PTE.u
    #expect(try s.load64(Self.directory) == Self.table | rights | PTE.a)
    #expect(try s.load64(Self.table + 0x1f5 * 8) == 0x1f_5000 | rights | PTE.a)
    #expect(try s.load64(Self.directory + 8) == 0x20_0000 | rights | PTE.ps | PTE.a | PTE.d)
    // PDPTEs are registers: the walk does not write the one in memory.
    #expect(try s.load64(Self.pdpt) == Self.directory | PTE.p)
    #expect(try translate(s, 0x3f_f123) == 0x3f_f123)
  }

  @Test func executeDisableNeedsNXE() throws {
    let fetch = try sandbox([0x90]) { $0.rip = 0x40_0000 }
    try fetch.load(code: [0x90], at: 0x40_0000)
    #expect(
      fetch.cpu.step() == .exception(.pageFault(PageFaultCode.present | PageFaultCode.instructionFetch)))
    #expect(fetch.cpu.state.cr2 == 0x40_0000)
    #expect(try translate(fetch, 0x40_0010) == 0x40_0010)  // reads are fine
    // Without EFER.NXE bit 63 is reserved, for any access.
    let reserved = try sandbox([0x8b, 0x03], efer: 0) { $0[.rbx] = 0x40_0000 }
    #expect(reserved.cpu.step() == .exception(.pageFault(PageFaultCode.present | PageFaultCode.reservedBit)))
  }

  @Test func reservedBitsAndMissingPDPTE() throws {
    let large = try sandbox([0x89, 0x03]) { $0[.rbx] = 0x60_0000 }
    #expect(
      large.cpu.step()
        == .exception(.pageFault(PageFaultCode.present | PageFaultCode.reservedBit | PageFaultCode.write)))
    let missing = try sandbox([0x8b, 0x03]) { $0[.rbx] = 0x4000_1000 }
    #expect(missing.cpu.step() == .exception(.pageFault(0)) && missing.cpu.state.cr2 == 0x4000_1000)
    let notPresent = try sandbox([0x8b, 0x03]) { $0[.rbx] = Self.notPresent }
    #expect(notPresent.cpu.step() == .exception(.pageFault(0)))
  }

  @Test func pdptesLoadOnCR3WriteAndAreCheckedThere() throws {
    // mov cr3, ecx; mov eax, [ebx]
    let s = try sandbox([0x0f, 0x22, 0xd9, 0x8b, 0x03]) {
      $0[.rbx] = 0x4000_1010
      $0[.rcx] = Self.pdpt
    }
    // Making PDPTE 1 present in memory changes nothing until CR3 is written (SDM 4.4.1).
    try s.store64(Self.directory | PTE.p, Self.pdpt + 8)
    try s.store32(0x4321, 0x1010)
    #expect(throws: X86Exception.pageFault(0)) { try translate(s, 0x4000_1010) }
    #expect(s.cpu.run(maxInstructions: 2).executed == 2)
    #expect(s.reg(.rax) == 0x4321)

    // A present PDPTE with a reserved bit: #GP(0), and CR3 keeps its value.
    let t = try sandbox([0x0f, 0x22, 0xd9]) { $0[.rcx] = Self.badPDPT }
    #expect(t.cpu.step() == .exception(.generalProtection(0)))
    #expect(t.cpu.state.cr3 == Self.pdpt && t.cpu.state.rip == Layout.code)
  }

  @Test func enablingPAEPagingLoadsThePDPTEs() throws {
    // mov cr0, eax; mov eax, [ebx] (paging off at first; code is identity-mapped)
    let enable = [UInt8]([0x0f, 0x22, 0xc0, 0x8b, 0x03])
    let pagingOn = ControlBit.cr0PE | ControlBit.cr0PG | 0x10
    let s = try sandbox(enable) {
      $0.cr0 &= ~ControlBit.cr0PG
      $0[.rax] = pagingOn
      $0[.rbx] = 0x1f_5000
    }
    try s.store32(0x77, 0x1f_5000)
    #expect(s.cpu.run(maxInstructions: 2).executed == 2)
    #expect(s.cpu.state.cr0 == pagingOn && s.reg(.rax) == 0x77 && !s.cpu.state.longModeActive)
    let bad = try sandbox(enable) {
      $0.cr0 &= ~ControlBit.cr0PG
      $0.cr3 = Self.badPDPT
      $0[.rax] = pagingOn
    }
    #expect(bad.cpu.step() == .exception(.generalProtection(0)))
    #expect(bad.cpu.state.cr0 & ControlBit.cr0PG == 0)
  }
}

/// SMEP and SMAP under 4-level paging (SDM Vol. 3, 4.6.1); the sandbox maps every page user.
struct SupervisorProtectionTests {
  @Test func smepForbidsSupervisorFetchesFromUserPages() throws {
    let (s, result) = try stepFault([0x90]) { $0.cr4 |= ControlBit.cr4SMEP }
    #expect(result == .exception(.pageFault(PageFaultCode.present | PageFaultCode.instructionFetch)))
    #expect(s.cpu.state.cr2 == Layout.code)
  }

  @Test func smapForbidsSupervisorDataAccessUnlessAC() throws {
    // stac; mov rax, [rbx]; clac; mov rax, [rbx]; mov [rbx], rax
    let s = try makeSandbox([0x0f, 0x01, 0xcb, 0x48, 0x8b, 0x03, 0x0f, 0x01, 0xca, 0x48, 0x8b, 0x03]) {
      $0.cr4 |= ControlBit.cr4SMAP
      $0[.rbx] = Layout.data
    }
    try s.store64(42, Layout.data)
    #expect(s.cpu.run(maxInstructions: 3).executed == 3)
    #expect(s.reg(.rax) == 42 && s.rflags & RFlagsBit.alignmentCheck == 0)
    // The same page, now with AC clear: the earlier translation must not be reused.
    #expect(s.cpu.step() == .exception(.pageFault(PageFaultCode.present)))
    let (_, write) = try stepFault([0x48, 0x89, 0x03]) {
      $0.cr4 |= ControlBit.cr4SMAP
      $0[.rbx] = Layout.data
    }
    #expect(write == .exception(.pageFault(PageFaultCode.present | PageFaultCode.write)))
  }

  @Test func implicitSupervisorAccessesIgnoreACAndCPL() throws {
    // SDM Vol. 3, 4.6.1: an implicit supervisor access (a descriptor-table read) to a user page
    // under SMAP faults even with AC set, and reports U/S = 0 even at CPL 3.
    let s = try makeSandbox([0x90]) {
      $0.cr4 |= ControlBit.cr4SMAP
      $0.rflags |= RFlagsBit.alignmentCheck
      $0[.cs] = .flatCode64(selector: 0x33, dpl: 3)
      $0[.ss] = .flatData(selector: 0x2b, dpl: 3)
    }
    #expect(throws: X86Exception.pageFault(PageFaultCode.present)) {
      try s.cpu.core.translateImplicitSupervisor(Layout.data, .read)
    }
    #expect(try translate(s, Layout.data) == Layout.data)  // the explicit user access is fine
  }

  @Test func stacIsUndefinedOutsideRing0() throws {
    let (_, result) = try stepFault([0x0f, 0x01, 0xcb]) {
      $0[.cs] = .flatCode64(selector: 0x33, dpl: 3)
      $0[.ss] = .flatData(selector: 0x2b, dpl: 3)
    }
    #expect(result == .exception(.invalidOpcode))
  }
}
