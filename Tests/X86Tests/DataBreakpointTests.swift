import Testing

@testable import X86

/// Data breakpoints in DR0-DR3 (SDM Vol. 3, 18.2.4, 18.2.5, 18.3.1.2): a #DB trap after the
/// accessing instruction, with DR6.Bn for every matching enabled slot.
struct DataBreakpointTests {
  static let debugTrap = StepResult.exception(X86Exception(vector: 1, kind: .trap))
  static let dr6Reset: UInt64 = 0xffff_0ff0

  /// DR7 with slot `slot` locally enabled, R/W = `rw` (1 write, 3 read/write), LEN code `len`
  /// (0 = 1 byte, 1 = 2, 3 = 4, 2 = 8).
  static func dr7(slot: UInt64, rw: UInt64, len: UInt64) -> UInt64 {
    1 << (2 * slot) | rw << (16 + 4 * slot) | len << (18 + 4 * slot)
  }

  @Test func writeBreakpointTrapsAfterTheStore() throws {
    // mov [rbx], rax (48 89 03): 8 bytes at data; DR0 = data + 4, 4 bytes, write.
    let (s, result) = try stepFault([0x48, 0x89, 0x03]) {
      $0[.rbx] = Layout.data
      $0[.rax] = 0x1122_3344_5566_7788
      $0.dr[0] = Layout.data + 4
      $0.dr7 = 0x400 | Self.dr7(slot: 0, rw: 1, len: 3)
    }
    #expect(result == Self.debugTrap)
    #expect(s.cpu.state.rip == Layout.code + 3)
    #expect(try s.load64(Layout.data) == 0x1122_3344_5566_7788)
    #expect(s.cpu.state.dr6 == Self.dr6Reset | 0x1)
  }

  @Test func writeOnlyBreakpointIgnoresReads() throws {
    // mov rax, [rbx] (48 8b 03) against a write breakpoint: retires; against R/W = 11: traps.
    let (_, quiet) = try stepFault([0x48, 0x8b, 0x03]) {
      $0[.rbx] = Layout.data
      $0.dr[1] = Layout.data
      $0.dr7 = 0x400 | Self.dr7(slot: 1, rw: 1, len: 3)
    }
    #expect(quiet == .retired)
    let (s, hit) = try stepFault([0x48, 0x8b, 0x03]) {
      $0[.rbx] = Layout.data
      $0.dr[1] = Layout.data
      $0.dr7 = 0x400 | Self.dr7(slot: 1, rw: 3, len: 3)
    }
    #expect(hit == Self.debugTrap)
    #expect(s.cpu.state.dr6 == Self.dr6Reset | 0x2)
  }

  @Test func lengthMasksTheLowAddressBits() throws {
    // SDM Vol. 3, 18.2.5: LEN masks the low bits of DRn. DR2 = data + 5 with LEN = 4 covers
    // data + 4 ... data + 7; with LEN = 8, DR2 = data + 9 covers data + 8 ... data + 15.
    func hits(_ dr: UInt64, len: UInt64, byteAt offset: UInt64) throws -> Bool {
      // mov byte [rbx], al (88 03)
      let (_, result) = try stepFault([0x88, 0x03]) {
        $0[.rbx] = Layout.data + offset
        $0.dr[2] = Layout.data + dr
        $0.dr7 = 0x400 | Self.dr7(slot: 2, rw: 1, len: len)
      }
      return result == Self.debugTrap
    }
    #expect(try hits(5, len: 3, byteAt: 4))
    #expect(try hits(5, len: 3, byteAt: 7))
    #expect(try !hits(5, len: 3, byteAt: 3))
    #expect(try !hits(5, len: 3, byteAt: 8))
    #expect(try hits(9, len: 2, byteAt: 8))
    #expect(try hits(9, len: 2, byteAt: 15))
    #expect(try !hits(9, len: 2, byteAt: 16))
    #expect(try hits(6, len: 1, byteAt: 7))  // 2 bytes: data + 6, data + 7
    #expect(try !hits(6, len: 1, byteAt: 5))
    #expect(try hits(6, len: 0, byteAt: 6))  // 1 byte
    #expect(try !hits(6, len: 0, byteAt: 7))
  }

  @Test func aWordAccessOverlappingOneByteHits() throws {
    // mov [rbx], eax (89 03) at data + 2 touches data + 2 ... data + 5; a 1-byte breakpoint at
    // data + 5 hits ("any of the bytes participating in an access", SDM Vol. 3, 18.2.5).
    let (_, result) = try stepFault([0x89, 0x03]) {
      $0[.rbx] = Layout.data + 2
      $0.dr[3] = Layout.data + 5
      $0.dr7 = 0x400 | Self.dr7(slot: 3, rw: 1, len: 0)
    }
    #expect(result == Self.debugTrap)
  }

  @Test func pushHitsAStackBreakpoint() throws {
    let (s, result) = try stepFault([0x50]) {  // push rax
      $0.dr[0] = Layout.stackTop - 8
      $0.dr7 = 0x400 | Self.dr7(slot: 0, rw: 1, len: 2)
    }
    #expect(result == Self.debugTrap)
    #expect(s.reg(.rsp) == Layout.stackTop - 8 && s.cpu.state.rip == Layout.code + 1)
  }

  @Test func callAndRetStackAccessesHit() throws {
    // call +0 (e8 00 00 00 00) writes the return address; ret (c3) reads it.
    let (_, call) = try stepFault([0xe8, 0, 0, 0, 0]) {
      $0.dr[0] = Layout.stackTop - 8
      $0.dr7 = 0x400 | Self.dr7(slot: 0, rw: 1, len: 2)
    }
    #expect(call == Self.debugTrap)
    let (s, ret) = try stepFault([0xc3]) {
      $0[.rsp] = Layout.stackTop - 8
      $0.dr[0] = Layout.stackTop - 8
      $0.dr7 = 0x400 | Self.dr7(slot: 0, rw: 3, len: 2)
    }
    #expect(ret == Self.debugTrap)
    #expect(s.cpu.state.rip == 0)  // the (zero) return address was popped
  }

  @Test func readModifyWriteHitsWriteAndReadWriteBreakpoints() throws {
    // add [rbx], rax (48 01 03): slot 0 write-only and slot 2 read/write both match: B0 | B2.
    let (s, result) = try stepFault([0x48, 0x01, 0x03]) {
      $0[.rbx] = Layout.data
      $0[.rax] = 5
      $0.dr[0] = Layout.data
      $0.dr[2] = Layout.data
      $0.dr7 = 0x400 | Self.dr7(slot: 0, rw: 1, len: 2) | Self.dr7(slot: 2, rw: 3, len: 2)
    }
    #expect(result == Self.debugTrap)
    #expect(s.cpu.state.dr6 == Self.dr6Reset | 0x5)
    #expect(try s.load64(Layout.data) == 5)
  }

  @Test func repMovsTrapsAfterTheIterationThatHit() throws {
    // rep movsq (f3 48 a5), RCX = 4, from data to data + 0x100; a write breakpoint on the
    // second destination quadword: the trap comes after iteration 2 (SDM Vol. 3, 18.3.1.2),
    // with RCX = 2, RSI/RDI advanced twice, RIP at the instruction and RF set.
    let s = try makeSandbox([0xf3, 0x48, 0xa5]) {
      $0[.rcx] = 4
      $0[.rsi] = Layout.data
      $0[.rdi] = Layout.data + 0x100
      $0.dr[1] = Layout.data + 0x108
      $0.dr7 = 0x400 | Self.dr7(slot: 1, rw: 1, len: 2)
    }
    for index in 0..<UInt64(4) { try s.store64(index + 1, Layout.data + 8 * index) }
    #expect(s.cpu.step() == Self.debugTrap)
    #expect(s.reg(.rcx) == 2 && s.reg(.rsi) == Layout.data + 16 && s.reg(.rdi) == Layout.data + 0x110)
    #expect(s.cpu.state.rip == Layout.code && s.rflags & RFlagsBit.resume != 0)
    #expect(try s.load64(Layout.data + 0x108) == 2 && (try s.load64(Layout.data + 0x110)) == 0)
    #expect(s.cpu.state.dr6 == Self.dr6Reset | 0x2)
    // Resuming finishes the copy without another trap, and clears RF.
    #expect(s.cpu.step() == .retired)
    #expect(s.reg(.rcx) == 0 && s.cpu.state.rip == Layout.code + 3 && s.rflags & RFlagsBit.resume == 0)
    #expect(try s.load64(Layout.data + 0x118) == 4)
  }

  @Test func dataBreakpointAndSingleStepReportTogether() throws {
    let (s, result) = try stepFault([0x48, 0x89, 0x03]) {
      $0[.rbx] = Layout.data
      $0.rflags = F.fixed | F.tf
      $0.dr[0] = Layout.data
      $0.dr7 = 0x400 | Self.dr7(slot: 0, rw: 1, len: 2)
    }
    #expect(result == Self.debugTrap)
    #expect(s.cpu.state.dr6 == Self.dr6Reset | DebugRegisterBit.dr6BS | 0x1)
  }

  @Test func pageWalksAndFetchesAreNotDataAccesses() throws {
    // A read/write breakpoint on the PML4 entry (read by the walk after the TLB flush) and on
    // the code bytes (fetched): neither is a data access, so the instruction just retires.
    let (s, result) = try stepFault([0x48, 0x8b, 0x03]) {
      $0[.rbx] = Layout.data
      $0.dr[0] = X86Sandbox.pageTableBase
      $0.dr[1] = Layout.code
      $0.dr7 = 0x400 | Self.dr7(slot: 0, rw: 3, len: 2) | Self.dr7(slot: 1, rw: 3, len: 2)
    }
    #expect(result == .retired)
    #expect(s.cpu.state.dr6 == Self.dr6Reset)
  }

  @Test func aFaultingAccessDoesNotHit() throws {
    // mov [rbx], rax with RBX non-canonical: #GP(0), no trap, DR6 untouched.
    let (s, result) = try stepFault([0x48, 0x89, 0x03]) {
      $0[.rbx] = 0x8000_0000_0000_0000
      $0.dr[0] = 0x8000_0000_0000_0000
      $0.dr7 = 0x400 | Self.dr7(slot: 0, rw: 3, len: 2)
    }
    #expect(result == .exception(.generalProtection(0)))
    #expect(s.cpu.state.dr6 == Self.dr6Reset)
  }

  @Test func disablingTheSlotStopsTheTraps() throws {
    // The same breakpoint with L0/G0 clear (only R/W and LEN set): no trap.
    let (_, result) = try stepFault([0x48, 0x89, 0x03]) {
      $0[.rbx] = Layout.data
      $0.dr[0] = Layout.data
      $0.dr7 = 0x400 | Self.dr7(slot: 0, rw: 1, len: 2) & ~0x3
    }
    #expect(result == .retired)
  }

  // MARK: I/O breakpoints (R/W = 10 with CR4.DE; SDM Vol. 3, 18.2.4)

  @Test func ioBreakpointTrapsAfterTheAccessWithDebugExtensions() throws {
    // out dx, al (ee) to 0x3f8 with DR0 = 0x3f8, R/W = 10, LEN = 1 byte.
    let (s, result) = try stepFault([0xee]) {
      $0.cr4 |= DebugRegisterBit.cr4DE
      $0[.rdx] = 0x3f8
      $0.dr[0] = 0x3f8
      $0.dr7 = 0x400 | Self.dr7(slot: 0, rw: 2, len: 0)
    }
    #expect(result == Self.debugTrap)
    #expect(s.cpu.state.rip == Layout.code + 1 && s.cpu.state.dr6 == Self.dr6Reset | 0x1)
  }

  @Test func ioBreakpointRangeAndAlignment() throws {
    // DR3 = 0x3f9 with LEN = 2 covers ports 0x3f8-0x3f9 (aligned down): in al, dx (ec) at 0x3f8
    // hits, at 0x3fa does not; a 4-byte in eax, dx (ed) at 0x3f6 overlaps it.
    func hits(_ code: [UInt8], port: UInt64) throws -> Bool {
      let (_, result) = try stepFault(code) {
        $0.cr4 |= DebugRegisterBit.cr4DE
        $0[.rdx] = port
        $0.dr[3] = 0x3f9
        $0.dr7 = 0x400 | Self.dr7(slot: 3, rw: 2, len: 1)
      }
      return result == Self.debugTrap
    }
    #expect(try hits([0xec], port: 0x3f8))
    #expect(try !hits([0xec], port: 0x3fa))
    #expect(try !hits([0xec], port: 0x3f7))
    #expect(try hits([0xed], port: 0x3f6))
  }

  @Test func ioBreakpointNeedsDebugExtensions() throws {
    let (_, result) = try stepFault([0xee]) {
      $0[.rdx] = 0x3f8
      $0.dr[0] = 0x3f8
      $0.dr7 = 0x400 | Self.dr7(slot: 0, rw: 2, len: 0)
    }
    #expect(result == .retired)
  }

  @Test func repOutsbTrapsAfterEachMatchingIteration() throws {
    // rep outsb (f3 6e) to port 0x80 with RCX = 3: the I/O breakpoint on 0x80 traps after the
    // first iteration, RIP back at the instruction (SDM Vol. 3, 18.3.1.2).
    let (s, result) = try stepFault([0xf3, 0x6e]) {
      $0.cr4 |= DebugRegisterBit.cr4DE
      $0[.rdx] = 0x80
      $0[.rcx] = 3
      $0[.rsi] = Layout.data
      $0.dr[1] = 0x80
      $0.dr7 = 0x400 | Self.dr7(slot: 1, rw: 2, len: 0)
    }
    #expect(result == Self.debugTrap)
    #expect(s.reg(.rcx) == 2 && s.reg(.rsi) == Layout.data + 1 && s.cpu.state.rip == Layout.code)
    #expect(s.cpu.state.dr6 == Self.dr6Reset | 0x2)
  }

  @Test func hitsOfAnInstructionThatFaultsLaterAreDropped() throws {
    // push qword [rbx] (ff 33) reads [rbx] (a read/write breakpoint matches), then its push
    // faults (#SS(0), RSP non-canonical): the instruction did not complete, so no #DB trap.
    let (s, result) = try stepFault([0xff, 0x33]) {
      $0[.rbx] = Layout.data
      $0[.rsp] = 0x8000_0000_0000_0008
      $0.dr[0] = Layout.data
      $0.dr7 = 0x400 | Self.dr7(slot: 0, rw: 3, len: 2)
    }
    #expect(result == .exception(.stackFault(0)))
    #expect(s.cpu.state.dr6 == Self.dr6Reset && s.cpu.state.rip == Layout.code)
  }

  /// A bus whose port writes ask to stop the run.
  final class StoppingBus: X86IOBus {
    func portRead(_ port: UInt16, size: Int) -> UInt32 { 0 }
    func portWrite(_ port: UInt16, size: Int, value: UInt32) -> Bool { true }
    func mmioRead(_ address: UInt64, size: Int) -> UInt64 { 0 }
    func mmioWrite(_ address: UInt64, size: Int, value: UInt64) -> Bool { false }
  }

  @Test func aTrapAfterAnIOStopIsTakenAtTheNextStep() throws {
    // out dx, al (ee) with TF to a port that stops the run: the step reports the I/O stop,
    // and the next step takes the single-step trap of the OUT before executing anything.
    let s = try X86Sandbox(bus: StoppingBus())
    try s.load(code: [0xee, 0x90], at: Layout.code)
    var state = s.cpu.state
    state.rip = Layout.code
    state[.rsp] = Layout.stackTop
    state.rflags = F.fixed | F.tf
    s.cpu.state = state
    #expect(s.cpu.step() == .ioStop)
    #expect(s.cpu.state.rip == Layout.code + 1 && s.cpu.state.dr6 == Self.dr6Reset)
    #expect(s.cpu.step() == Self.debugTrap)
    #expect(s.cpu.state.rip == Layout.code + 1 && s.cpu.retiredInstructions == 1)
    #expect(s.cpu.state.dr6 == Self.dr6Reset | DebugRegisterBit.dr6BS)
  }
}
