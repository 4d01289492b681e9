import AArch64
import AArch64Guests
import Debugger
import Introspection
import Machine
import Synchronization
import Testing

/// The event API on the AArch64 virt machine (issue 12, item 6), on the existing guests.
/// Addresses are a64_mmu's and a64_timer's from `llvm-objdump -d` of their ELFs (RAM at
/// 0x40000000, the text at 0x40080000); syndromes from the guests' comments, worked out from
/// the ARM ARM (D17.2.37 ESR_ELx, D17.2.40 FAR_ELx); counts from the guests' sources.
@Suite struct AArch64EventTests {
  // a64_mmu, from its listing.
  static let mmuVectors: UInt64 = 0x4008_0800
  static let mmuLevel1: UInt64 = 0x4008_2000
  static let mmuSyncHandler: UInt64 = 0x4008_0168
  static let mmuLog: UInt64 = 0x4008_9000
  static let va: UInt64 = 0x8000_0000

  static func session(_ guest: GuestImage, policy: InterruptPolicy = .block) throws -> (
    VirtIntrospectionSession, CapturedConsole
  ) {
    var configuration = MachineConfiguration(kernel: guest.elf, kernelName: guest.name)
    configuration.memorySize = 128 << 20
    let console = CapturedConsole()
    return (VirtIntrospectionSession(machine: try VirtMachine(configuration: configuration, console: console)), console)
  }

  /// Collects what handlers see; handlers are @Sendable and run on the caller's thread.
  final class Log<T: Sendable>: Sendable {
    private let items = Mutex<[T]>([])
    func add(_ item: T) { items.withLock { $0.append(item) } }
    var all: [T] { items.withLock { $0 } }
  }

  /// VBAR_EL1, TTBR0_EL1 and SCTLR_EL1 writes, each at its MSR (the PC on it, the register
  /// not written yet), with the value the guest's source computes.
  @Test func systemRegisterWritesAtTheirMSRs() throws {
    let (session, console) = try Self.session(AArch64Guests.a64Mmu)
    let seen = Log<(UInt64, SystemRegisterName, UInt64, UInt64)>()
    try session.subscribe(.systemRegisterWrite([.vbar, .ttbr0, .sctlr])) { event, context in
      guard case .systemRegisterWrite(let name, let value) = event else { return .continue }
      seen.add((try context.pc(), name, value, try context.systemRegister(name)))
      return .continue
    }
    #expect(try session.run() == .machineEnded(.debugExit(value: 0, status: 0)))
    let all = seen.all
    #expect(all.map(\.0) == [0x4008_000c, 0x4008_008c, 0x4008_009c])
    #expect(all.map(\.1) == [.vbar, .ttbr0, .sctlr])
    // vectors; level1; SCTLR_EL1 as reset (the RES1 bits of ARMv8.0, D23.2.118: 29, 28, 23,
    // 22, 20, 11) with M set.
    #expect(all.map(\.2) == [Self.mmuVectors, Self.mmuLevel1, 0x30d0_0801])
    // Before the write: VBAR_EL1 and TTBR0_EL1 reset to 0 here, SCTLR_EL1 without M.
    #expect(all.map(\.3) == [0, 0, 0x30d0_0800])
    #expect(console.text.hasPrefix("u "))
    #expect(session.machine.cpus[0].state.system.vbar == Self.mmuVectors)
  }

  /// The five aborts a64_mmu takes, with their class, ESR, FAR and ELR; then those of one
  /// class only (0x25, data abort from the current EL).
  @Test func exceptionsWithTheirSyndromes() throws {
    let (session, _) = try Self.session(AArch64Guests.a64Mmu)
    let all = Log<ExceptionSyndrome>()
    let dataAborts = Log<UInt8>()
    let pcs = Log<UInt64>()
    try session.subscribe(.exception(vectors: [])) { event, context in
      guard case .exceptionSyndrome(let syndrome) = event else { return .continue }
      all.add(syndrome)
      pcs.add(try context.pc())
      return .continue
    }
    try session.subscribe(.exception(vectors: [0x25])) { event, _ in
      if case .exceptionSyndrome(let syndrome) = event { dataAborts.add(syndrome.exceptionClass) }
      return .continue
    }
    #expect(try session.run() == .machineEnded(.debugExit(value: 0, status: 0)))
    let expected = [
      // str x1, [x20, #0x1008]: permission fault, level 3, WnR.
      ExceptionSyndrome(esr: 0x9600_004f, far: Self.va + 0x1008, elr: 0x4008_00c0),
      // ldr x1, [x20, #0x2010]: translation fault, level 3.
      ExceptionSyndrome(esr: 0x9600_0007, far: Self.va + 0x2010, elr: 0x4008_00c4),
      // ldr x1, [x20, #0x3018]: access flag fault, level 3.
      ExceptionSyndrome(esr: 0x9600_000b, far: Self.va + 0x3018, elr: 0x4008_00c8),
      // ldr x2, [x1] with x1 = 0xc0000000: translation fault, level 1.
      ExceptionSyndrome(esr: 0x9600_0005, far: 0xc000_0000, elr: 0x4008_00d0),
      // blr to page 0 + 0x100, PXN: instruction abort, permission fault, level 3.
      ExceptionSyndrome(esr: 0x8600_000f, far: Self.va + 0x100, elr: Self.va + 0x100),
    ]
    #expect(all.all == expected)
    #expect(all.all.map(\.exceptionClass) == [0x25, 0x25, 0x25, 0x25, 0x21])
    #expect(dataAborts.all == [0x25, 0x25, 0x25, 0x25])
    // At the vector: current EL with SP_EL1, synchronous (VBAR_EL1 + 0x200).
    #expect(pcs.all == Array(repeating: Self.mmuVectors + 0x200, count: 5))
  }

  /// Memory accesses to a64_mmu's log: each of its 8 entries (the 'u' line, five faults, two
  /// PAR lines) is written by one STP and one STR, three 8-byte writes (STP of two X
  /// registers is two single-copy atomic 64-bit accesses, B2.2.1); the print loop reads each
  /// entry with three LDRs. A fetch watch on sync_handler's first instruction sees each of
  /// the five exceptions, before it runs.
  @Test func memoryAccessesCountedFromTheSource() throws {
    let (session, _) = try Self.session(AArch64Guests.a64Mmu)
    let log = MemoryWatch(start: Self.mmuLog, length: 64 * 24, kinds: [.read, .write])
    let handler = MemoryWatch(start: Self.mmuSyncHandler, length: 4, kinds: .execute)
    let hits = Log<MemoryAccessHit>()
    let fetchPCs = Log<UInt64>()
    try session.subscribe(.memoryAccess(log)) { event, _ in
      if case .memoryAccess(let hit, _) = event { hits.add(hit) }
      return .continue
    }
    try session.subscribe(.memoryAccess(handler)) { event, context in
      if case .memoryAccess(let hit, _) = event, hit.kind == .execute { fetchPCs.add(try context.pc()) }
      return .continue
    }
    #expect(try session.run() == .machineEnded(.debugExit(value: 0, status: 0)))
    let writes = hits.all.filter { $0.kind == .write }
    let reads = hits.all.filter { $0.kind == .read }
    #expect(writes.count == 24 && writes.allSatisfy { $0.size == 8 })
    #expect(reads.count == 24 && reads.allSatisfy { $0.size == 8 })
    // The writes fill the log in order, 8 bytes at a time; so do the reads.
    #expect(writes.map(\.address) == (0..<24).map { Self.mmuLog + UInt64($0) * 8 })
    #expect(reads.map(\.address) == (0..<24).map { Self.mmuLog + UInt64($0) * 8 })
    // Made by log_value_x2's STP and STR and sync_handler's STP and STRs (listing), read by
    // the print loop's three LDRs.
    let writers: Set<UInt64> = [0x4008_015c, 0x4008_0160, 0x4008_0174, 0x4008_019c, 0x4008_01c0]
    #expect(Set(writes.map(\.instructionPointer)).isSubset(of: writers))
    #expect(Set(reads.map(\.instructionPointer)) == [0x4008_0114, 0x4008_0124, 0x4008_0134])
    #expect(fetchPCs.all == Array(repeating: Self.mmuSyncHandler, count: 5))
  }

  /// A software and a hardware breakpoint on the same handler (both are host breakpoints on
  /// AArch64: nothing is written into the guest), and a write watchpoint on the log's first
  /// entry: one change, after log_value_x2's STP, from zeros to 'u' (0x75).
  @Test func breakpointsAndAWriteWatchpoint() throws {
    let (session, console) = try Self.session(AArch64Guests.a64Mmu)
    let software = Log<UInt64>()
    let hardware = Log<UInt64>()
    let changes = Log<(UInt64, [UInt8], [UInt8], UInt64)>()
    let code = Log<[UInt8]>()
    try session.subscribe(.softwareBreakpoint(at: Self.mmuSyncHandler)) { event, context in
      if case .softwareBreakpoint(let address) = event { software.add(address) }
      // The handler's code reads as the guest wrote it: no breakpoint instruction planted.
      code.add(try context.readMemory(virtual: Self.mmuSyncHandler, count: 4))
      return .continue
    }
    try session.subscribe(.hardwareBreakpoint(at: Self.mmuSyncHandler)) { event, context in
      if case .hardwareBreakpoint = event { hardware.add(try context.systemRegister(.esr)) }
      return .continue
    }
    try session.subscribe(.writeWatchpoint(at: Self.mmuLog, length: 8)) { event, context in
      if case .writeWatchpoint(let address, let old, let new) = event {
        changes.add((address, old, new, try context.pc()))
      }
      return .continue
    }
    #expect(try session.run() == .machineEnded(.debugExit(value: 0, status: 0)))
    #expect(software.all == Array(repeating: Self.mmuSyncHandler, count: 5))
    // mrs x21, esr_el1 (d5385215), as the listing has it.
    #expect(code.all == Array(repeating: [0x15, 0x52, 0x38, 0xd5], count: 5))
    #expect(hardware.all == [0x9600_004f, 0x9600_0007, 0x9600_000b, 0x9600_0005, 0x8600_000f])
    #expect(changes.all.count == 1)
    let change = try #require(changes.all.first)
    #expect(change.0 == Self.mmuLog)
    #expect(change.1 == [0, 0, 0, 0, 0, 0, 0, 0])
    #expect(change.2 == [0x75, 0, 0, 0, 0, 0, 0, 0])
    #expect(change.3 == 0x4008_0160)  // after the STP at 0x4008015c
    // The guest ran as it does alone: its log printed whole.
    #expect(console.text.split(separator: "\n").count == 8)
  }

  /// Single steps from the entry, in the listing's order; the MSR to VBAR_EL1 is reported
  /// before it runs, between the step onto it and the step past it.
  @Test func singleStepsAndASystemRegisterWriteInOrder() throws {
    let (session, _) = try Self.session(AArch64Guests.a64Mmu)
    let events = Log<Event>()
    try session.setSingleStep(true, vcpu: 0)
    try session.subscribe(.singleStep) { event, _ in
      events.add(event)
      return events.all.count >= 6 ? .stop : .continue
    }
    try session.subscribe(.systemRegisterWrite([.vbar])) { event, _ in
      events.add(event)
      return .continue
    }
    let end = try session.run()
    #expect(end == .stopped(vcpu: 0, event: .singleStep(pc: 0x4008_0014)))
    #expect(
      events.all == [
        .singleStep(pc: 0x4008_0004), .singleStep(pc: 0x4008_0008), .singleStep(pc: 0x4008_000c),
        .systemRegisterWrite(.vbar, value: Self.mmuVectors), .singleStep(pc: 0x4008_0010),
        .singleStep(pc: 0x4008_0014),
      ])
  }

  /// An emulate-and-skip answer to the MAIR_EL1 write leaves MAIR_EL1 0: every attribute
  /// Device-nGnRnE (D17.2.97), so the unaligned LDUR at VA + 1 that Normal memory allowed
  /// takes an alignment fault (DFSC 0b100001, ESR 0x96000021, FAR VA + 1) before the others.
  @Test func skippingAnMSRLeavesTheRegisterAsItWas() throws {
    let (session, _) = try Self.session(AArch64Guests.a64Mmu)
    let syndromes = Log<ExceptionSyndrome>()
    try session.subscribe(.systemRegisterWrite([.mair])) { _, _ in .emulateAndSkip() }
    try session.subscribe(.exception(vectors: [0x25])) { event, _ in
      if case .exceptionSyndrome(let syndrome) = event { syndromes.add(syndrome) }
      return .continue
    }
    #expect(try session.run() == .machineEnded(.debugExit(value: 0, status: 0)))
    #expect(session.machine.cpus[0].state.system.mair == 0)
    #expect(syndromes.all.first == ExceptionSyndrome(esr: 0x9600_0021, far: Self.va + 1, elr: 0x4008_00b0))
    #expect(syndromes.all.count == 5)
  }

  /// a64_timer: three timer IRQs (vector 0) at full speed, and three reads of GICC_IAR
  /// (0x0801000c, MMIO; the MMU is off, so its VA is its PA) by the handler's LDR.
  @Test func interruptsAndMMIOReads() throws {
    let (session, console) = try Self.session(AArch64Guests.a64Timer)
    let interrupts = Log<UInt8>()
    let iar = Log<MemoryAccessHit>()
    try session.subscribe(.interrupt(vectors: [])) { event, _ in
      if case .interrupt(let vector) = event { interrupts.add(vector) }
      return .continue
    }
    try session.subscribe(.memoryAccess(MemoryWatch(start: 0x0801_000c, length: 4, kinds: [.read, .write]))) {
      event, _ in
      if case .memoryAccess(let hit, _) = event { iar.add(hit) }
      return .continue
    }
    #expect(try session.run() == .machineEnded(.powerOff))
    #expect(interrupts.all == [0, 0, 0])
    #expect(iar.all.count == 3 && iar.all.allSatisfy { $0.kind == .read && $0.size == 4 })
    #expect(console.text.contains("timer: ticks=0000000000000003"))
  }

  /// a64_request's two requests (`hvc #0x4853`, W0 = 1 then 0), each seen after its HVC;
  /// a handler turns single-stepping on at the first and off at the second, so the steps
  /// between are the store loop's, 4 iterations of 3 instructions, from the listing: the
  /// ADR and MOV after the HVC, then STR, SUBS, B.NE four times, then MOV W0 and the HVC.
  @Test func guestRequestsToggleSingleSteps() throws {
    let (session, console) = try Self.session(AArch64Guests.a64Request)
    let symbols = try ELFFile(AArch64Guests.a64Request.elf, for: .aarch64).symbols()
    let start = try #require(symbols.first { $0.name == "start_request" }?.address)
    let stop = try #require(symbols.first { $0.name == "stop_request" }?.address)
    let requests = Log<(UInt32, UInt64)>()
    let steps = Log<UInt64>()
    try session.subscribe(.guestRequest) { event, context in
      guard case .guestRequest(let value) = event else { return .continue }
      requests.add((value, try context.pc()))
      return .toggleSingleStep
    }
    try session.subscribe(.singleStep) { event, _ in
      if case .singleStep(let pc) = event { steps.add(pc) }
      return .continue
    }
    #expect(try session.run() == .machineEnded(.debugExit(value: 0, status: 0)))
    #expect(requests.all.map(\.0) == [1, 0])
    #expect(requests.all.map(\.1) == [start + 4, stop + 4])
    let loop = start + 12  // after hvc, adr x1, mov x2
    let iterations = (0..<4).flatMap { _ in [loop + 4, loop + 8, loop] }
    let expected = [start + 8, loop] + iterations.dropLast() + [loop + 12, stop, stop + 4]
    #expect(steps.all == expected)
    #expect(console.text == "request: done\n")
  }

  /// a64_smp's two CPUs each add 1 to `counter` ROUNDS = 2000 times with LDXR/ADD/STXR
  /// (its source): a write watch sees each successful STXR (a failed one stores nothing, B2.9),
  /// 2000 from each CPU, and a subscription for CPU 1 alone only CPU 1's. The guest's own
  /// count is unchanged by the stops: 4000 (0xfa0).
  @Test func perCPUSubscriptionsOnTwoCPUs() throws {
    var configuration = MachineConfiguration(kernel: AArch64Guests.a64Smp.elf, kernelName: "a64_smp")
    configuration.memorySize = 128 << 20
    configuration.cpuCount = 2
    let console = CapturedConsole()
    let session = VirtIntrospectionSession(machine: try VirtMachine(configuration: configuration, console: console))
    let symbols = try ELFFile(AArch64Guests.a64Smp.elf, for: .aarch64).symbols()
    let counter = try #require(symbols.first { $0.name == "counter" }?.address)
    let count = try #require(symbols.first { $0.name == "count" }?.address)
    let watch = MemoryWatch(start: counter, length: 8, kinds: .write)
    let all = Log<(Int, UInt64)>()
    let second = Log<Int>()
    try session.subscribe(.memoryAccess(watch)) { event, context in
      if case .memoryAccess(let hit, _) = event { all.add((context.vcpu, hit.instructionPointer)) }
      return .continue
    }
    try session.subscribe(.memoryAccess(watch), vcpus: [1]) { _, context in
      second.add(context.vcpu)
      return .continue
    }
    #expect(try session.run() == .machineEnded(.powerOff))
    #expect(all.all.filter { $0.0 == 0 }.count == 2000)
    #expect(all.all.filter { $0.0 == 1 }.count == 2000)
    // count: adr, ldr, ldxr, add, stxr: the STXR at count + 16.
    #expect(all.all.allSatisfy { $0.1 == count + 16 })
    #expect(second.all == Array(repeating: 1, count: 2000))
    #expect(console.text.contains("counter=0000000000000fa0"))
  }

  /// A handler's `.stop` at a breakpoint leaves the CPU on it; the next run carries that
  /// instruction out first, as a debugger continuing from a breakpoint does: five runs stop at
  /// sync_handler, once per exception, and the sixth runs to the end.
  @Test func runningAgainAfterAStopAtABreakpointGoesOn() throws {
    let (session, console) = try Self.session(AArch64Guests.a64Mmu)
    try session.subscribe(.softwareBreakpoint(at: Self.mmuSyncHandler)) { _, _ in .stop }
    var stops = 0
    while case .stopped(let vcpu, let event) = try session.run(), stops < 10 {
      #expect(vcpu == 0 && event == .softwareBreakpoint(address: Self.mmuSyncHandler))
      #expect(try session.context(forVCPU: 0).pc() == Self.mmuSyncHandler)
      stops += 1
    }
    #expect(stops == 5)
    #expect(console.text.split(separator: "\n").count == 8)
  }

  /// Filters that cannot work on AArch64 are refused with a sentence saying what to use.
  @Test func impossibleFiltersAreRefused() throws {
    let (session, _) = try Self.session(AArch64Guests.a64Mmu)
    func refusal(_ filter: EventFilter) -> String? {
      do {
        try session.subscribe(filter) { _, _ in .continue }
        return nil
      } catch {
        return "\(error)"
      }
    }
    #expect(refusal(.port(0x3f8...0x3ff)) == "AArch64 has no port I/O: watch a device's addresses with .memoryAccess")
    #expect(refusal(.msrWrite([0xc000_0080])) == "MSR numbers are x86's: on AArch64 subscribe to .systemRegisterWrite")
    #expect(refusal(.exception(vectors: [0x40])) == "AArch64 exception classes (ESR_EL1.EC) are 0-63")
    #expect(refusal(.interrupt(vectors: [2])) == "AArch64 interrupts are 0 (IRQ) and 1 (FIQ)")
    #expect(
      refusal(.memoryAccess(MemoryWatch(start: 0x4000_0000, length: 8, kinds: .read, physical: true)))
        == "AArch64 memory watches are by virtual address (as the CPU's accesses translate them), not physical")
    #expect(refusal(.systemRegisterWrite([])) == "a system-register subscription needs at least one register")
    #expect(refusal(.singleStep) == nil)
  }
}
