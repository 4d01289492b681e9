import Testing

@testable import X86

/// The interpreter's shortcuts past the full checks: the data-page cache (`TLB`: an aligned
/// access to a page already checked is a tag comparison) and the block cache. Each must give
/// way exactly when the full path would decide differently: a page turning into code, a watch
/// range set later, new code at the same RIP.
struct LookupCacheTests {
  /// mov dword [rbx+16], 0 (a store that caches the data page for writes); call rbx (runs
  /// `mov eax, 1; ret` from that page, which makes it a code page); mov byte [rbx+1], 7 (patches
  /// the immediate); call rbx; hlt. The patch must reach the second call: the first store's
  /// cached write right must not let it skip the self-modifying-code check.
  static let patchAfterCachedStore: [UInt8] = [
    0xc7, 0x43, 0x10, 0x00, 0x00, 0x00, 0x00, 0xff, 0xd3, 0xc6, 0x43, 0x01, 0x07, 0xff, 0xd3, 0xf4,
  ]
  static let callee: [UInt8] = [0xb8, 0x01, 0x00, 0x00, 0x00, 0xc3]

  @Test(arguments: [false, true])
  func aPageThatBecomesCodeLosesItsCachedWriteRight(blocks: Bool) throws {
    let s = try makeSandbox(Self.patchAfterCachedStore) { $0[.rbx] = Layout.data }
    try s.load(code: Self.callee, at: Layout.data)
    var last = StepResult.retired
    if blocks {
      last = s.cpu.run(maxInstructions: 100).stop
    } else {
      while case .retired = last { last = s.cpu.step() }
    }
    #expect(last == .halted)
    #expect(s.reg(.rax) == 7)
    #expect(try s.load32(Layout.data + 16) == 0)
  }

  @Test func aWatchRangeSetAfterTheFirstAccessesSeesTheNextOnes() throws {
    // mov [rbx], rax twice: the first caches the page; a range set between them must see the second.
    let s = try makeSandbox([0x48, 0x89, 0x03, 0x48, 0x89, 0x03]) { $0[.rbx] = Layout.data }
    #expect(s.cpu.step() == .retired)
    s.cpu.setWatchRanges([WatchRange(start: Layout.data, length: 8, kinds: .write, space: .linear)])
    #expect(s.cpu.step() == .retired)
    #expect(
      s.cpu.watchHits == [
        WatchHit(address: Layout.data, size: 8, kind: .write, rangeIndex: 0, instructionPointer: Layout.code + 3)
      ])
  }

  @Test func newCodeAtTheSameRIPRunsAfterTheStateIsWritten() throws {
    // inc eax; jmp -4 (a loop whose block runs again and again), then the same RIP under a CS whose
    // base moves it onto `dec eax; jmp -4`: 32-bit code, so that CS's base counts.
    let s = try makeSandbox([0xff, 0xc0, 0xeb, 0xfc]) { state in
      state = X86State()
      state.cr0 = ControlBit.cr0PE | 0x10
      state[.cs] = SegmentRegister(selector: 0x08, limit: 0xffff_ffff, type: 0xb, defaultBig: true)
      for segment in [SegmentName.ds, .es, .ss] { state[segment] = .flatData() }
      state.rip = Layout.code
    }
    try s.load(code: [0xff, 0xc8, 0xeb, 0xfc], at: Layout.data)
    #expect(s.cpu.run(maxInstructions: 20).executed == 20)
    #expect(s.reg(.rax) == 10 && s.cpu.state.rip == Layout.code)
    var state = s.cpu.state
    state[.cs] = SegmentRegister(
      selector: 0x08, base: Layout.data - Layout.code, limit: 0xffff_ffff, type: 0xb, defaultBig: true)
    s.cpu.state = state
    #expect(s.cpu.run(maxInstructions: 20).executed == 20)
    #expect(s.reg(.rax) == 0)
  }
}

extension PagingTests {
  /// A read caches its page in the data-page cache; the host then unmaps the page (as another
  /// processor would: no flush) and the guest's INVLPG drops it: the next read must walk and
  /// fault, by steps and by blocks alike.
  @Test(arguments: [false, true])
  func invlpgDropsAPageTheDataCacheHeld(blocks: Bool) throws {
    // mov rax, [rbx]; invlpg [rbx]; mov rax, [rbx]
    let code: [UInt8] = [0x48, 0x8b, 0x03, 0x0f, 0x01, 0x3b, 0x48, 0x8b, 0x03]
    let s = try pagedSandbox(code) { $0[.rbx] = Self.plain }
    let stop: StepResult
    if blocks {
      #expect(s.cpu.run(maxInstructions: 1).executed == 1)
      try s.store64(0, Self.pml4 + 0x3000 + (Self.plain >> 12) * 8)
      let (executed, result) = s.cpu.run(maxInstructions: 100)
      #expect(executed == 1)
      stop = result
    } else {
      #expect(s.cpu.step() == .retired)
      try s.store64(0, Self.pml4 + 0x3000 + (Self.plain >> 12) * 8)
      #expect(s.cpu.step() == .retired)
      stop = s.cpu.step()
    }
    #expect(stop == .exception(.pageFault(0)))  // not present, a supervisor read (SDM Vol. 3, 4.7)
    #expect(s.cpu.state.cr2 == Self.plain && s.cpu.state.rip == Layout.code + 6)
  }
}
