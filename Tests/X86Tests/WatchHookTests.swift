import Testing

@testable import X86

/// The host's watch ranges (`X86CPU.setWatchRanges`, `watchHits`): invisible to the guest,
/// reported after the instruction, for every data access and no other.
struct WatchHookTests {
  static func watch(_ start: UInt64, _ length: UInt64, _ kinds: WatchKinds, _ space: WatchAddressSpace = .linear)
    -> WatchRange
  {
    WatchRange(start: start, length: length, kinds: kinds, space: space)
  }

  @Test func aStoreHitsTheOneRangeAmongManyThatOverlaps() throws {
    // 200 ranges, 16 bytes apart, none touching data ... data + 7 except index 150.
    let s = try makeSandbox([0x48, 0x89, 0x03]) {  // mov [rbx], rax
      $0[.rbx] = Layout.data
    }
    var ranges = (0..<200).map { Self.watch(Layout.data + 0x1000 + UInt64($0) * 16, 8, [.read, .write]) }
    ranges[150] = Self.watch(Layout.data + 6, 1, .write)
    s.cpu.setWatchRanges(ranges)
    #expect(s.cpu.step() == .retired)
    #expect(
      s.cpu.watchHits == [
        WatchHit(address: Layout.data, size: 8, kind: .write, rangeIndex: 150, instructionPointer: Layout.code)
      ])
    // The guest saw nothing: DR6 unchanged, RIP after the instruction.
    #expect(s.cpu.state.dr6 == 0xffff_0ff0 && s.cpu.state.rip == Layout.code + 3)
  }

  @Test func readsAndWritesAreTold() throws {
    // mov rax, [rbx] then mov [rbx], rax, with a write-only and a read-only range on the data.
    let s = try makeSandbox([0x48, 0x8b, 0x03, 0x48, 0x89, 0x03]) { $0[.rbx] = Layout.data }
    s.cpu.setWatchRanges([Self.watch(Layout.data, 8, .write), Self.watch(Layout.data, 8, .read)])
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.watchHits.map(\.rangeIndex) == [1] && s.cpu.watchHits.map(\.kind) == [.read])
    s.cpu.clearWatchHits()
    #expect(s.cpu.watchHits.isEmpty)
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.watchHits.map(\.rangeIndex) == [0] && s.cpu.watchHits.map(\.kind) == [.write])
  }

  @Test func partialOverlapAtEitherEnd() throws {
    // An 8-byte store at data + 4 overlaps [data, data + 6) by two bytes and [data + 11, +100)
    // by one; [data + 12, +4) and [data, data + 4) touch it without overlapping.
    let s = try makeSandbox([0x48, 0x89, 0x03]) { $0[.rbx] = Layout.data + 4 }
    s.cpu.setWatchRanges([
      Self.watch(Layout.data, 6, .write), Self.watch(Layout.data + 12, 4, .write),
      Self.watch(Layout.data + 11, 100, .write), Self.watch(Layout.data, 4, .write),
    ])
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.watchHits.map(\.rangeIndex) == [0, 2])
    #expect(s.cpu.watchHits.allSatisfy { $0.address == Layout.data + 4 && $0.size == 8 })
  }

  @Test func nothingOverlappingMeansNoHits() throws {
    let s = try makeSandbox([0x48, 0x89, 0x03, 0x48, 0x8b, 0x03, 0x50, 0x58]) { $0[.rbx] = Layout.data }
    s.cpu.setWatchRanges([
      Self.watch(Layout.data + 8, 8, [.read, .write]), Self.watch(Layout.data - 8, 8, [.read, .write]),
      Self.watch(Layout.data, 8, []), Self.watch(Layout.data, 0, [.read, .write]),
    ])
    #expect(s.cpu.run(maxInstructions: 4).executed == 4)
    #expect(s.cpu.watchHits.isEmpty)
  }

  @Test func readModifyWriteReportsTheReadThenTheWrite() throws {
    let s = try makeSandbox([0x48, 0x01, 0x03]) { $0[.rbx] = Layout.data }  // add [rbx], rax
    s.cpu.setWatchRanges([Self.watch(Layout.data, 1, [.read, .write])])
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.watchHits.map(\.kind) == [.read, .write])
  }

  @Test func cmpxchgWritesEvenWhenItFails() throws {
    // cmpxchg [rbx], rcx (48 0f b1 0b) with RAX != [rbx]: the destination is written back
    // unchanged (SDM Vol. 2, CMPXCHG: "the destination operand is written back if the
    // comparison fails").
    let s = try makeSandbox([0x48, 0x0f, 0xb1, 0x0b]) {
      $0[.rbx] = Layout.data
      $0[.rax] = 1
    }
    s.cpu.setWatchRanges([Self.watch(Layout.data, 8, [.read, .write])])
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.watchHits.map(\.kind) == [.read, .write])
  }

  @Test func stackAccessesOfPushPopCallRet() throws {
    // push rax; pop rcx; call +0; ret — a range over the top stack slot.
    let s = try makeSandbox([0x50, 0x59, 0xe8, 0, 0, 0, 0, 0xc3]) { _ in }
    s.cpu.setWatchRanges([Self.watch(Layout.stackTop - 8, 8, [.read, .write])])
    #expect(s.cpu.run(maxInstructions: 1).executed == 1)
    #expect(s.cpu.watchHits.map(\.kind) == [.write])
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.watchHits.map(\.kind) == [.write, .read, .write, .read])
    #expect(
      s.cpu.watchHits.map(\.instructionPointer) == [Layout.code, Layout.code + 1, Layout.code + 2, Layout.code + 7])
  }

  @Test func repeatedStringStopsAfterTheIterationThatHit() throws {
    // rep stosb over 16 bytes with a range on byte 5: the step stops after iteration 6 (bytes
    // 0-5 written, RCX = 10, RIP at the instruction), reported as retired; the next step
    // finishes without another hit.
    let s = try makeSandbox([0xf3, 0xaa]) {
      $0[.rcx] = 16
      $0[.rdi] = Layout.data
      $0[.rax] = 0xee
    }
    s.cpu.setWatchRanges([Self.watch(Layout.data + 5, 1, .write)])
    #expect(s.cpu.step() == .retired)
    #expect(s.reg(.rcx) == 10 && s.cpu.state.rip == Layout.code && s.reg(.rdi) == Layout.data + 6)
    #expect(
      s.cpu.watchHits == [
        WatchHit(address: Layout.data + 5, size: 1, kind: .write, rangeIndex: 0, instructionPointer: Layout.code)
      ])
    #expect(s.cpu.step() == .retired)
    #expect(s.reg(.rcx) == 0 && s.cpu.state.rip == Layout.code + 2)
    #expect(s.cpu.watchHits.count == 1)
    #expect(try s.read(at: Layout.data, count: 17) == [UInt8](repeating: 0xee, count: 16) + [0])
  }

  @Test func movsReportsItsReadsAndWritesSeparately() throws {
    // movsq (48 a5) once: a read range on the source and a write range on the destination.
    let s = try makeSandbox([0x48, 0xa5]) {
      $0[.rsi] = Layout.data
      $0[.rdi] = Layout.data + 0x40
    }
    s.cpu.setWatchRanges([Self.watch(Layout.data, 0x80, .read), Self.watch(Layout.data, 0x80, .write)])
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.watchHits.map(\.address) == [Layout.data, Layout.data + 0x40])
    #expect(s.cpu.watchHits.map(\.rangeIndex) == [0, 1])
  }

  @Test func runStopsAfterAHit() throws {
    let s = try makeSandbox([0x90, 0x48, 0x89, 0x03, 0x90, 0x90]) { $0[.rbx] = Layout.data }
    s.cpu.setWatchRanges([Self.watch(Layout.data, 8, .write)])
    let (executed, stop) = s.cpu.run(maxInstructions: 100)
    #expect(executed == 2 && stop == .retired && s.cpu.state.rip == Layout.code + 4)
    #expect(s.cpu.watchHits.count == 1)
  }

  @Test func physicalRangesSeeThroughPaging() throws {
    // Map linear 0xa0_0000 (2 MiB page 5) onto physical 0x20_0000 (the data page): a store
    // through it hits a physical range on the data and not a linear one.
    let s = try makeSandbox([0x48, 0x89, 0x03]) { $0[.rbx] = 0xa0_0010 }
    try s.store64(0x20_0000 | 0xe7, X86Sandbox.pageTableBase + 0x2000 + 5 * 8)
    s.cpu.state = s.cpu.state  // flush the TLB
    s.cpu.setWatchRanges([Self.watch(Layout.data + 0x10, 8, .write, .physical), Self.watch(Layout.data, 0x100, .write)])
    #expect(s.cpu.step() == .retired)
    #expect(
      s.cpu.watchHits == [
        WatchHit(address: Layout.data + 0x10, size: 8, kind: .write, rangeIndex: 0, instructionPointer: Layout.code)
      ])
    #expect(try s.load64(Layout.data + 0x10) == 0)
  }

  @Test func pageWalksAreNotWatched() throws {
    // A physical range over all the page tables: the walks of the fetch and the load read
    // them, the instruction does not.
    let s = try makeSandbox([0x48, 0x8b, 0x03]) { $0[.rbx] = Layout.data }
    s.cpu.setWatchRanges([Self.watch(X86Sandbox.pageTableBase, 0x3000, [.read, .write], .physical)])
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.watchHits.isEmpty)
  }

  @Test func mmioAccessesCount() throws {
    // Past the sandbox's 16 MiB of RAM, still identity-mapped: MMIO (the unmapped bus reads 1s).
    let s = try makeSandbox([0x48, 0x8b, 0x03]) { $0[.rbx] = 0x2000_0000 }
    s.cpu.setWatchRanges([Self.watch(0x2000_0000, 8, .read, .physical)])
    #expect(s.cpu.step() == .retired)
    #expect(s.reg(.rax) == ~0)
    #expect(s.cpu.watchHits.map(\.address) == [0x2000_0000])
  }

  @Test func aFaultKeepsTheHitsOfEarlierAccesses() throws {
    // push qword [rbx] (ff 33) reads [rbx] and then faults on the push (RSP non-canonical):
    // #SS(0), and the read is reported.
    let s = try makeSandbox([0xff, 0x33]) {
      $0[.rbx] = Layout.data
      $0[.rsp] = 0x8000_0000_0000_0008
    }
    s.cpu.setWatchRanges([Self.watch(Layout.data, 8, .read)])
    #expect(s.cpu.step() == .exception(.stackFault(0)))
    #expect(s.cpu.watchHits.map(\.kind) == [.read])
  }

  @Test func executeRangeStopsBeforeTheInstructionOnce() throws {
    let s = try makeSandbox([0x90, 0x48, 0xff, 0xc0, 0x90]) { _ in }
    s.cpu.setWatchRanges([Self.watch(Layout.code + 2, 1, .execute)])  // inside the INC
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.watchHits.isEmpty)
    // The INC starts at code + 1: its first byte is not in the range.
    #expect(s.cpu.step() == .retired && s.reg(.rax) == 1)
    s.cpu.setWatchRanges([Self.watch(Layout.code + 4, 1, .execute)])
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.state.rip == Layout.code + 4 && s.cpu.retiredInstructions == 2)
    #expect(
      s.cpu.watchHits == [
        WatchHit(address: Layout.code + 4, size: 1, kind: .execute, rangeIndex: 0, instructionPointer: Layout.code + 4)
      ])
    // The next step executes it.
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.state.rip == Layout.code + 5 && s.cpu.retiredInstructions == 3 && s.cpu.watchHits.count == 1)
  }

  @Test func clearingTheRangesTurnsTheHooksOff() throws {
    let s = try makeSandbox([0x48, 0x89, 0x03]) { $0[.rbx] = Layout.data }
    s.cpu.setWatchRanges([Self.watch(Layout.data, 8, .write)])
    s.cpu.setWatchRanges([])
    #expect(s.cpu.core.debug.armed == 0 && !s.cpu.core.debug.checksAccesses)
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.watchHits.isEmpty)
  }
}
