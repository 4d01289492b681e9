import Debugger
import GuestMemory
import Introspection
import KVM
import Machine
import Synchronization
import TestGuests
import Testing

let requiresKVM = ConditionTrait.enabled(
  if: Hypervisor.isAvailable, "SKIPPED: /dev/kvm is not available here, so this KVM event test DID NOT RUN")

/// The engines each guest test runs on (see `TestEngine`).
enum Engines {
  static let all = TestEngine.available
}

extension TestEngine {
  var choice: AcceleratorChoice { self == .kvm ? .kvm : .emu }
}

/// Collects what handlers saw, from whichever thread drives the vCPU.
final class Recorder<Value: Sendable>: Sendable {
  private let values = Mutex<[Value]>([])
  func append(_ value: Value) { values.withLock { $0.append(value) } }
  var all: [Value] { values.withLock { $0 } }
}

struct HandlerFailure: Error, CustomStringConvertible {
  var description: String { "the handler gave up on purpose" }
}

/// The event API on real guests. Expected events come from each guest's source and
/// disassembly (`llvm-objdump -d`), never from a run.
@Suite struct EventAPITests {
  func session(
    _ guest: GuestImage, on engine: TestEngine, console: CapturedConsole = CapturedConsole(), cpus: Int = 1
  ) throws -> IntrospectionSession {
    var configuration = MachineConfiguration(kernel: guest.image, kernelName: guest.name)
    configuration.accelerator = engine.choice
    configuration.cpuCount = cpus
    return try IntrospectionSession(machine: Machine(configuration: configuration, console: console))
  }

  func symbol(_ name: String, in guest: GuestImage) throws -> UInt64 {
    try #require(try ELFFile(guest.elf).symbols().first { $0.name == name }).address
  }

  static let pass = RunOutcome.debugExit(value: 0x10, status: 33)

  @Test(arguments: Engines.all) func exceptionsAreSeenAtFullSpeedAndStillReachTheGuest(engine: TestEngine) throws {
    let console = CapturedConsole()
    let session = try session(TestGuests.longEvents, on: engine, console: console)
    let seen = Recorder<(Event, UInt64)>()
    for filter in [EventFilter.exception(vectors: []), .interrupt(vectors: [])] {
      try session.subscribe(filter) { event, context in
        seen.append((event, try context.pc()))
        return .continue
      }
    }
    #expect(try session.run() == .machineEnded(Self.pass))
    // Guests/tests/long_events.S: INT3, INT 0x40, UD2, DIV by zero, a non-canonical load, a
    // load above the identity map, then five #DB from its own TF; each at its handler. INT n
    // is a software interrupt, an `exception` event (see StopReason); KVM at full speed does
    // not see the cause, so there vector 0x40 counts as an interrupt (see Stepper).
    let handler = { (name: String) in try self.symbol(name, in: TestGuests.longEvents) }
    let int40: Event = engine == .kvm ? .interrupt(vector: 0x40) : .exception(vector: 0x40)
    let expected: [(Event, UInt64)] =
      [
        (.exception(vector: 3), try handler("bp_handler")), (int40, try handler("int40_handler")),
        (.exception(vector: 6), try handler("ud_handler")), (.exception(vector: 0), try handler("de_handler")),
        (.exception(vector: 13), try handler("gp_handler")), (.exception(vector: 14), try handler("pf_handler")),
      ] + Array(repeating: (Event.exception(vector: 1), try handler("db_handler")), count: 5)
    #expect(seen.all.map(\.0) == expected.map(\.0))
    #expect(seen.all.map(\.1) == expected.map(\.1))
    #expect(console.text == ExpectedOutput.longEvents)
  }

  @Test(arguments: Engines.all) func hostBreakpointsAreEventsAndTheGuestsOwnStayItsOwn(engine: TestEngine) throws {
    let console = CapturedConsole()
    let session = try session(TestGuests.longEvents, on: engine, console: console)
    let report = try symbol("report", in: TestGuests.longEvents)
    let events = try symbol("events", in: TestGuests.longEvents)
    let seen = Recorder<Event>()
    for filter in [EventFilter.softwareBreakpoint(at: report), .hardwareBreakpoint(at: events)] {
      try session.subscribe(filter) { event, _ in
        seen.append(event)
        return .continue
      }
    }
    #expect(try session.run() == .machineEnded(Self.pass))
    // Each host breakpoint once; the guest's INT3 and TF traps went to its handlers.
    #expect(seen.all == [.hardwareBreakpoint(address: events), .softwareBreakpoint(address: report)])
    #expect(console.text == ExpectedOutput.longEvents)
  }

  @Test(arguments: Engines.all) func aBreakpointInALoopFiresOncePerIterationWithItsRegisters(engine: TestEngine) throws
  {
    let session = try session(TestGuests.tightLoop, on: engine)
    let loop = try symbol("loop", in: TestGuests.tightLoop)
    let counts = Recorder<UInt64>()
    try session.subscribe(.softwareBreakpoint(at: loop)) { _, context in
      counts.append(try context.registers().rcx)
      return counts.all.count == 2000 ? .stop : .continue
    }
    #expect(try session.run() == .stopped(vcpu: 0, event: .softwareBreakpoint(address: loop)))
    // tight_loop.S: ECX counts down from 100000, and `loop` is reached with each value (the
    // first 2000 here; Benchmarks/events.sh runs all of them).
    #expect(counts.all == Array(stride(from: 100_000, to: 98_000, by: -1)))
    // Going on from the stop: the next hit is the next iteration.
    let next = Recorder<UInt64>()
    try session.unsubscribe(try #require(session.subscriptionIDs.first))
    try session.subscribe(.softwareBreakpoint(at: loop)) { _, context in
      next.append(try context.registers().rcx)
      return .stop
    }
    _ = try session.run()
    #expect(next.all == [98_000])
  }

  @Test(arguments: Engines.all) func msrWritesArriveBeforeTheyTakeEffectAndCanBeRefused(engine: TestEngine) throws {
    let lstar: UInt32 = 0xc000_0082
    let efer: UInt32 = 0xc000_0080
    let entry = try symbol("syscall_entry", in: TestGuests.msrWrites)
    let console = CapturedConsole()
    let watched = try session(TestGuests.msrWrites, on: engine, console: console)
    let seen = Recorder<Event>()
    try watched.subscribe(.msrWrite([lstar, efer])) { event, _ in
      seen.append(event)
      return .continue
    }
    #expect(try watched.run() == .machineEnded(Self.pass))
    // msr_writes.S: LSTAR = syscall_entry, then EFER = 0x500 | SCE.
    #expect(
      seen.all == [.access(.msrWrite(index: lstar, value: entry)), .access(.msrWrite(index: efer, value: 0x501))])
    #expect(console.text == "msrs ok\n")

    // Refusing the LSTAR write: the guest reads the old value back and exits with 0x11.
    let refused = try session(TestGuests.msrWrites, on: engine)
    let before = Recorder<UInt64>()
    try refused.subscribe(.msrWrite([lstar])) { _, context in
      before.append(try context.modelSpecificRegister(lstar))
      return .emulateAndSkip()
    }
    #expect(try refused.run() == .machineEnded(.debugExit(value: 0x11, status: 35)))
    #expect(before.all == [0])  // LSTAR is 0 after reset (SDM vol. 4) and not yet written
  }

  @Test(arguments: Engines.all) func portAndMMIOAccessesArriveFirstAndReadsCanBeAnswered(engine: TestEngine) throws {
    let session = try session(TestGuests.stepExits, on: engine)
    let seen = Recorder<GuestAccess>()
    let alAtOutsb = Recorder<UInt64>()
    try session.subscribe(.port(0x3ff...0x3ff)) { event, context in
      guard case .access(let access) = event else { return .continue }
      seen.append(access)
      if case .portWrite(_, _, 0x61) = access { alAtOutsb.append(try context.registers().rax & 0xff) }
      if case .portRead = access { return .emulateAndSkip(readValue: 0x42) }
      return .continue
    }
    try session.subscribe(.mmio(0xd000_0000...0xd000_0fff)) { event, _ in
      guard case .access(let access) = event else { return .continue }
      seen.append(access)
      if case .mmioRead = access { return .emulateAndSkip(readValue: 0x41) }
      return .continue
    }
    #expect(try session.run() == .machineEnded(.halted))
    // step_exits.S, in order: OUT 0x5a; IN; OUTSB "a"; REP OUTSB "bc"; INSB; MMIO store 1,
    // load, INCL (a read, then the write of what it read plus one). Its REP INSB reads the
    // port RDTSC left in DX, outside the filter.
    #expect(
      seen.all == [
        .portWrite(port: 0x3ff, size: 1, value: 0x5a), .portRead(port: 0x3ff, size: 1),
        .portWrite(port: 0x3ff, size: 1, value: 0x61), .portWrite(port: 0x3ff, size: 1, value: 0x62),
        .portWrite(port: 0x3ff, size: 1, value: 0x63), .portRead(port: 0x3ff, size: 1),
        .mmioWrite(address: 0xd000_0000, size: 4, value: 1), .mmioRead(address: 0xd000_0000, size: 4),
        .mmioRead(address: 0xd000_0000, size: 4), .mmioWrite(address: 0xd000_0000, size: 4, value: 0x42),
      ])
    // The IN got the handler's 0x42 instead of the floating bus's 0xff.
    #expect(alAtOutsb.all == [0x42])
  }

  @Test(arguments: Engines.all) func aGuestRequestTogglesSingleStepLikeXenAccess(engine: TestEngine) throws {
    let session = try session(TestGuests.guestRequest, on: engine)
    let seen = Recorder<Event>()
    try session.subscribe(.guestRequest) { event, _ in
      seen.append(event)
      return .toggleSingleStep
    }
    try session.subscribe(.singleStep) { event, _ in
      seen.append(event)
      return .continue
    }
    #expect(try session.run() == .machineEnded(Self.pass))
    // guest_request.S: request 1 (stepping on), then nop, add, xor and the OUT of request 0,
    // one step event after each (at the next instruction), and the request that ends it.
    #expect(
      seen.all == [
        .guestRequest(value: 1), .singleStep(pc: 0x10_000b), .singleStep(pc: 0x10_000e), .singleStep(pc: 0x10_0010),
        .singleStep(pc: 0x10_0011), .guestRequest(value: 0),
      ])
  }

  /// Memory-access events, through each kind of access in Guests/tests/memory_accesses.S:
  /// each arrives after the accessing instruction (the label after it, from the guest's
  /// source), with the access's kind, address and size; a physical watch sees the access
  /// through the identity map; an execute watch fires before the instruction. On KVM the
  /// watched page also holds the code: KVM sees it absent, and the interpreter twin runs the
  /// code there, comparing every access, without moving the vCPU off KVM.
  @Test(arguments: Engines.all) func memoryAccessEventsSeeEveryKindOfAccess(engine: TestEngine) throws {
    let guest = TestGuests.memoryAccesses
    let session = try session(guest, on: engine)
    func at(_ name: String) throws -> UInt64 { try symbol(name, in: guest) }
    let watches = [
      MemoryWatch(start: try at("var_write"), length: 8, kinds: .write),
      MemoryWatch(start: try at("var_read"), length: 8, kinds: .read),
      MemoryWatch(start: try at("var_rmw"), length: 8, kinds: [.read, .write]),
      MemoryWatch(start: try at("var_push"), length: 8, kinds: .write),
      MemoryWatch(start: try at("var_source"), length: 8, kinds: .read),
      // Guest-physical: Hyperstep's boot page tables map the low memory 1:1.
      MemoryWatch(start: try at("var_copy"), length: 8, kinds: .write, physical: true),
      MemoryWatch(start: try at("after_movs"), length: 1, kinds: .execute),
    ]
    let seen = Recorder<(MemoryAccessKinds, UInt64, UInt64, UInt64)>()
    for watch in watches {
      try session.subscribe(.memoryAccess(watch)) { event, context in
        guard case .memoryAccess(let hit, _) = event else { return .continue }
        seen.append((hit.kind, hit.address, hit.size, try context.pc()))
        return .continue
      }
    }
    #expect(try session.run() == .machineEnded(Self.pass))
    let expected: [(MemoryAccessKinds, UInt64, UInt64, UInt64)] = [
      (.write, try at("var_write"), 8, try at("after_store")),
      (.read, try at("var_read"), 8, try at("after_load")),
      (.read, try at("var_rmw"), 8, try at("after_rmw")),  // ADD reads its destination first,
      (.write, try at("var_rmw"), 8, try at("after_rmw")),  // then writes it back
      (.write, try at("var_push"), 8, try at("after_push")),
      (.read, try at("var_source"), 8, try at("after_movs")),
      (.write, try at("var_copy"), 8, try at("after_movs")),
      (.execute, try at("after_movs"), 1, try at("after_movs")),  // before the instruction runs
    ]
    #expect(seen.all.map(\.0) == expected.map(\.0))
    #expect(seen.all.map(\.1) == expected.map(\.1))
    #expect(seen.all.map(\.2) == expected.map(\.2))
    #expect(seen.all.map(\.3) == expected.map(\.3))
    #expect(session.engine == (engine == .kvm ? .kvm : .interpreter))
    #expect(session.machine.memoryProtection.isEmpty)  // all RAM KVM's again after the run
  }

  /// Memory-access events on data in a page of its own (Guests/tests/watch_pages.S), on KVM
  /// served as MMIO exits KVM's emulator makes for the absent page (a load, a store, both
  /// halves of a read-modify-write, each with its size), then on a virtual address the guest
  /// remaps by rewriting its page-table entry: both reads through it are seen, the second on
  /// the new physical page. Expected accesses from the guest's source. (The guest loads its
  /// own CR3 first, which KVM does not report: the watches follow it from the next stop, here
  /// a hardware breakpoint after the load, as a debugger's would be.)
  @Test(arguments: Engines.all) func memoryAccessEventsOnAPageOfItsOwnAndARemappedOne(engine: TestEngine) throws {
    let guest = TestGuests.watchPages
    let session = try session(guest, on: engine)
    func at(_ name: String) throws -> UInt64 { try symbol(name, in: guest) }
    let watches = [
      MemoryWatch(start: try at("far_read"), length: 8, kinds: [.read, .write]),
      MemoryWatch(start: try at("far_write"), length: 8, kinds: [.read, .write]),
      MemoryWatch(start: try at("far_rmw") + 4, length: 1, kinds: [.read, .write]),
      MemoryWatch(start: 0x4000_0000, length: 8, kinds: .read),
    ]
    let seen = Recorder<(MemoryAccessKinds, UInt64, UInt64, UInt64)>()
    for watch in watches {
      try session.subscribe(.memoryAccess(watch)) { event, context in
        guard case .memoryAccess(let hit, _) = event else { return .continue }
        seen.append((hit.kind, hit.address, hit.size, try context.pc()))
        return .continue
      }
    }
    try session.subscribe(.hardwareBreakpoint(at: try at("remapped"))) { _, _ in .continue }
    #expect(try session.run() == .machineEnded(Self.pass))
    let expected: [(MemoryAccessKinds, UInt64, UInt64, UInt64)] = [
      (.read, try at("far_read"), 8, try at("after_far_read")),
      (.write, try at("far_write"), 8, try at("after_far_write")),
      (.read, try at("far_rmw"), 8, try at("after_far_rmw")),  // INCQ reads the quadword,
      (.write, try at("far_rmw"), 8, try at("after_far_rmw")),  // then writes it back
      (.read, 0x4000_0000, 8, try at("after_read_a")),
      (.read, 0x4000_0000, 8, try at("after_read_b")),
    ]
    #expect(seen.all.map(\.0) == expected.map(\.0))
    #expect(seen.all.map(\.1) == expected.map(\.1))
    #expect(seen.all.map(\.2) == expected.map(\.2))
    #expect(seen.all.map(\.3) == expected.map(\.3))
    #expect(session.engine == (engine == .kvm ? .kvm : .interpreter))
  }

  /// KVM serves memory watches through its memory slots only on one-vCPU machines: with two
  /// vCPUs a memory-access subscription is refused there, not ignored.
  @Test(requiresKVM) func memoryAccessEventsAreRefusedOnKVMWithSeveralVCPUs() throws {
    let session = try session(TestGuests.memoryAccesses, on: .kvm, cpus: 2)
    #expect(throws: IntrospectionError.self) {
      try session.subscribe(.memoryAccess(MemoryWatch(start: 0x10_0000, length: 8, kinds: .write))) { _, _ in .continue
      }
    }
  }

  @Test(arguments: Engines.all) func memoryIsReadableThroughAnotherAddressSpace(engine: TestEngine) throws {
    let session = try session(TestGuests.tightLoop, on: engine)
    let start = try symbol("_start", in: TestGuests.tightLoop)
    let results = Recorder<[UInt8]>()
    let translated = Recorder<UInt64>()
    let failures = Recorder<String>()
    try session.subscribe(.hardwareBreakpoint(at: start)) { _, context in
      // A second 4-level address space built by hand (SDM vol. 3, 4.5): PML4 at 2 MiB, then
      // PDPT, PD and PT in the next pages, mapping virtual 0x7f12_3456_7000 to physical
      // 0x30_0000, a page holding a marker. Entry flags 0x3: present and writable.
      let virtual: UInt64 = 0x7f12_3456_7000
      let tables: UInt64 = 0x20_0000
      let indices = [39, 30, 21, 12].map { Int((virtual >> UInt64($0)) & 0x1ff) }
      for level in 0..<4 {
        let next = level < 3 ? tables + UInt64(level + 1) * 0x1000 : 0x30_0000
        let entry = next | 0x3
        let bytes = (0..<8).map { UInt8(truncatingIfNeeded: entry >> (8 * UInt64($0))) }
        try context.writePhysical(tables + UInt64(level) * 0x1000 + UInt64(indices[level] * 8), bytes)
      }
      try context.writePhysical(0x30_0000 + 0x123, Array("hyperstep".utf8))
      results.append(try context.readMemory(virtual: virtual + 0x123, count: 9, cr3: tables))
      translated.append(try context.translate(virtual: virtual + 0x123, cr3: tables))
      // The guest's own CR3 (Hyperstep's identity map of the low 4 GiB) does not map it.
      do { _ = try context.readMemory(virtual: virtual + 0x123, count: 9) } catch { failures.append("\(error)") }
      try context.writeMemory(virtual: virtual + 0x200, [1, 2, 3], cr3: tables)
      results.append(try context.readPhysical(0x30_0200, count: 3))
      // A CR3 that is not page-aligned (its low bits are PCID or cache flags) is refused.
      do { _ = try context.readMemory(virtual: virtual, count: 1, cr3: tables | 0x18) } catch {
        failures.append("\(error)")
      }
      return .stop
    }
    #expect(try session.run() == .stopped(vcpu: 0, event: .hardwareBreakpoint(address: start)))
    #expect(results.all == [Array("hyperstep".utf8), [1, 2, 3]])
    #expect(translated.all == [0x30_0123])
    #expect(failures.all.count == 2)
    #expect(
      failures.all.last
        == "CR3 0x200018 is not page-aligned (bits 11:0 hold PCID or cache flags; pass cr3 & ~0xfff)")
  }

  @Test(arguments: Engines.all) func aThrowingHandlerEndsTheSessionWithItsError(engine: TestEngine) throws {
    let session = try session(TestGuests.tightLoop, on: engine)
    let loop = try symbol("loop", in: TestGuests.tightLoop)
    let calls = Recorder<Int>()
    let failing = try session.subscribe(.softwareBreakpoint(at: loop)) { _, _ in
      calls.append(1)
      if calls.all.count == 3 { throw HandlerFailure() }
      return .continue
    }
    let error = #expect(throws: IntrospectionError.self) { try session.run() }
    #expect(
      error?.description
        == "the handler for software breakpoint at 0x\(String(loop, radix: 16)) on vCPU 0 failed: the handler gave up on purpose"
    )
    #expect(calls.all.count == 3)
    // The session stopped cleanly: the breakpoint is gone from guest memory, and the machine
    // can be watched again from where it stopped (two iterations later, one breakpoint on).
    let again = Recorder<UInt64>()
    try session.unsubscribe(failing)
    try session.subscribe(.halt) { _, _ in .continue }
    try session.subscribe(.shutdown) { event, context in
      again.append(try context.registers().rcx)
      return .continue
    }
    #expect(try session.run() == .machineEnded(Self.pass))
    #expect(again.all == [0])
  }

  @Test(arguments: Engines.all) func handlersCanSubscribeAndUnsubscribeDuringARun(engine: TestEngine) throws {
    let session = try session(TestGuests.tightLoop, on: engine)
    let loop = try symbol("loop", in: TestGuests.tightLoop)
    let done = try symbol("done", in: TestGuests.tightLoop)
    let counts = Recorder<UInt64>()
    let later = Recorder<(Event, UInt64)>()
    try session.subscribe(.softwareBreakpoint(at: loop)) { _, context in
      counts.append(try context.registers().rcx)
      if counts.all.count == 3 {
        // Enough of the loop: this breakpoint goes, one after the loop comes.
        try context.unsubscribe(try #require(session.subscriptionIDs.first))
        try context.subscribe(.hardwareBreakpoint(at: done)) { event, context in
          later.append((event, try context.registers().rcx))
          return .continue
        }
      }
      return .continue
    }
    #expect(try session.run() == .machineEnded(Self.pass))
    // tight_loop.S: `loop` is reached with ECX = 100000, 99999, 99998, ...; `done` once, with
    // ECX = 0. The INT3 at `loop` is gone from memory (`add $1, %rax` begins with 0x48).
    #expect(counts.all == [100_000, 99_999, 99_998])
    #expect(later.all.map(\.0) == [.hardwareBreakpoint(address: done)])
    #expect(later.all.map(\.1) == [0])
    #expect(try session.machine.memory.read(at: GuestAddress(loop), count: 1) == [0x48])
  }

  @Test(arguments: Engines.all) func hostAndGuestBreakpointsShareTheDebugRegisters(engine: TestEngine) throws {
    let console = CapturedConsole()
    let session = try session(TestGuests.sharedBreakpoints, on: engine, console: console)
    let hostA = try symbol("host_a", in: TestGuests.sharedBreakpoints)
    let hostB = try symbol("host_b", in: TestGuests.sharedBreakpoints)
    let seen = Recorder<Event>()
    for address in [hostA, hostB] {
      try session.subscribe(.hardwareBreakpoint(at: address)) { event, _ in
        seen.append(event)
        return .continue
      }
    }
    #expect(try session.run() == .machineEnded(Self.pass))
    // The host's two breakpoints fire as host events, once each (shared_breakpoints.S calls
    // each once); the guest's own DR0 breakpoint reached its own handler twice with B0 in
    // DR6, and DR0/DR7 read back what it wrote (the guest's output, from its source).
    #expect(seen.all == [.hardwareBreakpoint(address: hostA), .hardwareBreakpoint(address: hostB)])
    #expect(console.text == "dr0=ok dr7=ok\nhits=00000002\ndr6=ffff0ff1 ffff0ff1\n")
  }

  /// The guest's own data breakpoint (DR0, a write watchpoint) and instruction breakpoint
  /// (DR1) beside two host hardware breakpoints, on both engines; on this host's KVM, which
  /// delivers no data breakpoints, the #DB for DR0 is Hyperstep's (GuestDataBreakpoints).
  /// The host's breakpoints fire once each (install_db_handler and print_db_results are each
  /// called once); the guest's handler saw both its hits with the SDM's DR6 (its source's
  /// header: ffff0ff1 after the watchpoint, ffff0ff2 after the breakpoint).
  @Test(arguments: Engines.all) func theGuestsOwnWatchpointBesideTwoHostBreakpoints(engine: TestEngine) throws {
    let console = CapturedConsole()
    let guest = TestGuests.guestWatchpoints
    let session = try session(guest, on: engine, console: console)
    let install = try symbol("install_db_handler", in: guest)
    let print = try symbol("print_db_results", in: guest)
    let seen = Recorder<Event>()
    for address in [install, print] {
      try session.subscribe(.hardwareBreakpoint(at: address)) { event, _ in
        seen.append(event)
        return .continue
      }
    }
    #expect(try session.run() == .machineEnded(Self.pass))
    #expect(seen.all == [.hardwareBreakpoint(address: install), .hardwareBreakpoint(address: print)])
    #expect(console.text == "dr0=ok dr7=ok\nhits=00000002\ndr6=ffff0ff1 ffff0ff2\n")
  }

  /// KVM only: debug-register slots are KVM's limit (the interpreter compares the PC with any
  /// number of breakpoint addresses).
  @Test(requiresKVM) func moreBreakpointsThanFreeSlotsIsAClearError() throws {
    let session = try session(TestGuests.sharedBreakpoints, on: .kvm)
    let hostA = try symbol("host_a", in: TestGuests.sharedBreakpoints)
    // Four host breakpoints fit while the guest has none; once it holds DR0 (from the stop at
    // host_a on), the next run cannot place them all, and the guest keeps its own.
    for address in [hostA, 0x1000, 0x2000, 0x3000] {
      try session.subscribe(.hardwareBreakpoint(at: address)) { _, _ in .continue }
    }
    let error = #expect(throws: IntrospectionError.self) { try session.run() }
    #expect(
      error?.description
        == "vCPU 0: no free debug-register slot for 4 host hardware breakpoints: the guest's own breakpoints hold DR0 of the four"
    )
    #expect(try session.machine.cpus[0].debugRegisters().dr7 & 0xff == 0x01)
  }

  @Test(arguments: Engines.all) func accessSubscriptionsFromAHandlerAreRefused(engine: TestEngine) throws {
    let session = try session(TestGuests.tightLoop, on: engine)
    let loop = try symbol("loop", in: TestGuests.tightLoop)
    try session.subscribe(.softwareBreakpoint(at: loop)) { _, context in
      try context.subscribe(.port(0xf4...0xf4)) { _, _ in .continue }
      return .continue
    }
    let error = #expect(throws: IntrospectionError.self) { try session.run() }
    #expect(
      error?.description
        == "the handler for software breakpoint at 0x\(String(loop, radix: 16)) on vCPU 0 failed: "
        + "port, MMIO and MSR subscriptions are made before run(), not from a handler")
  }

  @Test(arguments: Engines.all) func answersThatCannotBeCarriedOutAreErrors(engine: TestEngine) throws {
    let session = try session(TestGuests.tightLoop, on: engine)
    let loop = try symbol("loop", in: TestGuests.tightLoop)
    try session.subscribe(.softwareBreakpoint(at: loop)) { _, _ in .emulateAndSkip() }
    let error = #expect(throws: IntrospectionError.self) { try session.run() }
    #expect(error?.description.hasPrefix("emulate-and-skip answers port, MMIO and MSR events only") == true)
  }

  @Test(arguments: Engines.all) func badSubscriptionsAreRefused(engine: TestEngine) throws {
    let session = try session(TestGuests.tightLoop, on: engine)
    for address: UInt64 in [0x1000, 0x2000, 0x3000, 0x4000] {
      try session.subscribe(.hardwareBreakpoint(at: address)) { _, _ in .continue }
    }
    func refusal(_ filter: EventFilter, vcpus: Set<Int>? = nil) -> String? {
      do {
        try session.subscribe(filter, vcpus: vcpus) { _, _ in .continue }
        return nil
      } catch { return "\(error)" }
    }
    #expect(
      refusal(.hardwareBreakpoint(at: 0x5000))
        == "all four debug-register slots are in use: no hardware breakpoint at 0x5000")
    #expect(refusal(.hardwareBreakpoint(at: 0x4000)) == nil)  // the same address shares its slot
    #expect(refusal(.writeWatchpoint(at: 0x1000, length: 0)) == "a write watchpoint covers 1 to 8 bytes, not 0")
    #expect(refusal(.writeWatchpoint(at: 0x1000, length: 9)) == "a write watchpoint covers 1 to 8 bytes, not 9")
    #expect(refusal(.exception(vectors: [14, 40])) == "exception vectors are 0-31; use .interrupt for vectors 32-255")
    #expect(refusal(.msrWrite([])) == "an MSR-write subscription needs at least one MSR")
    #expect(refusal(.msrWrite((0..<17).map { 0xc000_0100 + $0 })) == "at most 16 MSRs can be watched, 17 asked for")
    #expect(refusal(.halt, vcpus: [3]) == "there is no vCPU 3 (the machine has 1)")
    #expect(throws: IntrospectionError.self) { try session.setSingleStep(true, vcpu: 1) }
  }
}
