import GuestMemory
import KVM
import Machine

/// Memory watches (reads, writes, instruction fetches; linear or physical) at full speed on
/// KVM, through pages KVM sees protected (`Machine.protectMemory`). A watched page that is
/// read or fetched from is absent to KVM, one only written to is read-only; the guest runs
/// natively elsewhere. An access to such a page leaves KVM as MMIO: the machine carries it
/// out on RAM and notes it (`takeProtectedAccesses`), the stepper lets KVM finish the
/// instruction (with an immediate exit, so nothing after it runs; its other accesses to
/// protected pages exit and are carried out the same way) and compares what it touched with
/// the watches, byte for byte: a hit stops the run after the instruction, anything else runs
/// on at once. Code on an absent page (a watch on a page that also holds code) cannot be
/// fetched by KVM: on this host it fails to emulate it, and the interpreter twin runs the
/// code while it stays on absent pages (`Machine.runAbsentCode`), comparing every access.
///
/// The page tables that map watched linear addresses are read-only to KVM too: a guest write
/// there stops the run (`.protectedPageWritten`) so the caller translates the watches again
/// and moves the protection with them. What is not seen at once: a CR3 write (no exit on
/// KVM), a page-table write the interpreter makes for KVM; the translation catches up at the
/// next stop. KVM does not set the accessed and dirty bits in page tables it sees read-only.
struct WatchPiece {
  /// The watch's index in `kvmMemoryWatches`.
  var watch: Int
  /// The piece's first byte in the watch's address space, and in guest-physical memory.
  var start: UInt64
  var physical: UInt64
  /// Bytes, all on one page.
  var length: UInt64
}

extension Stepper {
  /// The protection the memory watches (and `writeWatches`, the caller's write watchpoints
  /// compared after each write to their pages) need now, through the guest's page tables
  /// as they stand; remembers where the watched bytes are. `writesMapped` is false when a
  /// write watchpoint's byte is on an unmapped page (the caller steps and compares instead);
  /// memory-watch bytes on unmapped pages are watched from the stop after they are mapped.
  public func kvmWatchProtection(writeWatches: [(address: UInt64, length: Int)]) -> (
    protection: MemoryProtection, writesMapped: Bool
  ) {
    let walker = self.walker()
    var protection = MemoryProtection()
    var tables = Set<UInt64>()
    var pieces: [WatchPiece] = []
    for (index, watch) in kvmMemoryWatches.enumerated() {
      let hidden = !watch.kinds.isDisjoint(with: [.read, .execute])
      forEachPiece(start: watch.start, length: watch.length) { start, length in
        guard let physical = watch.physical ? start : try? walker.translate(start).value else {
          if !watch.physical { tables.formUnion(walker.tablePages(for: start)) }  // mapped later: seen then
          return
        }
        if !watch.physical { tables.formUnion(walker.tablePages(for: start)) }
        pieces.append(WatchPiece(watch: index, start: start, physical: physical, length: length))
        // Only RAM is protected: an access to a device page leaves KVM anyway.
        guard machine.memory.contains(GuestAddress(physical)) else { return }
        if hidden { protection.absent.insert(physical >> 12) } else { protection.readOnly.insert(physical >> 12) }
      }
    }
    var writesMapped = true
    var writePages = Set<UInt64>()
    for watch in writeWatches {
      forEachPiece(start: watch.address, length: UInt64(watch.length)) { start, _ in
        tables.formUnion(walker.tablePages(for: start))
        guard let physical = try? walker.translate(start) else {
          writesMapped = false
          return
        }
        if machine.memory.contains(physical) { writePages.insert(physical.value >> 12) }
      }
    }
    if !writesMapped { writePages = [] }
    protection.readOnly.formUnion(writePages)
    // KVM walks the page tables itself: they stay readable to it, only writes leave it.
    protection.absent.subtract(tables)
    protection.readOnly.formUnion(tables)
    kvmWatchPieces = pieces
    writeStopPages = writePages.union(tables)
    giveWatchesToAssist()
    return (protection, writesMapped)
  }

  /// The interpreter twin, which runs code on absent pages for KVM, compares its accesses
  /// with the memory watches and, after them, with the write-stop pages whole (a write there
  /// ends its run, so the caller compares after that instruction, not later).
  func giveWatchesToAssist() {
    let stops = writeStopPages.sorted().map {
      MemoryWatch(start: $0 << 12, length: 0x1000, kinds: .write, physical: true)
    }
    machine.setAssistMemoryWatches(kvmMemoryWatches.isEmpty ? [] : kvmMemoryWatches + stops, for: kvm)
  }

  /// Splits the twin's hits into those of the memory watches and whether any was a write to
  /// a write-stop page.
  private func assistHits(_ hits: [MemoryAccessHit]) -> (watches: [MemoryAccessHit], wroteStopPage: Bool) {
    let count = kvmMemoryWatches.count
    return (hits.filter { $0.watch < count }, hits.contains { $0.watch >= count })
  }

  /// Calls `body` for each piece of [start, start + length) that lies in one page.
  private func forEachPiece(start: UInt64, length: UInt64, _ body: (UInt64, UInt64) -> Void) {
    var done: UInt64 = 0
    while done < length {
      let cursor = start &+ done
      let inPage = min(length - done, 0x1000 - (cursor & 0xfff))
      body(cursor, inPage)
      done += inPage
    }
  }

  /// The watch hits among accesses the machine carried out on protected pages, for the
  /// instruction at linear `pc`: each access compared with each watch's pieces on its page.
  func protectedAccessHits(_ accesses: [ProtectedAccess], pc: UInt64) -> [MemoryAccessHit] {
    var hits: [MemoryAccessHit] = []
    for access in accesses {
      let kind: MemoryAccessKinds = access.isWrite ? .write : .read
      let size = UInt64(max(access.size, 1))
      for piece in kvmWatchPieces where kvmMemoryWatches[piece.watch].kinds.contains(kind) {
        guard access.physical < piece.physical &+ piece.length && piece.physical < access.physical &+ size else {
          continue
        }
        // The access's first byte in the watch's address space (the piece's page maps it).
        let address = piece.start &+ (access.physical &- piece.physical)
        let hit = MemoryAccessHit(address: address, size: size, kind: kind, watch: piece.watch, instructionPointer: pc)
        if !hits.contains(hit) { hits.append(hit) }
      }
    }
    return hits
  }

  /// A step's stop with the watch hits of its instruction (carried out on protected pages, or
  /// by the interpreter for KVM) made a `.memoryAccess` stop.
  func withWatchHits(_ stop: Stop, pc: UInt64) throws -> Stop {
    let accesses = machine.takeProtectedAccesses(vcpu: kvm.id)
    let hits = protectedAccessHits(accesses, pc: pc) + assistHits(machine.takeAssistWatchHits(kvm)).watches
    guard stop.reason == .step else { return stop }
    // The guest's own data breakpoints first: its #DB is part of the instruction.
    let bits = machine.guestDataBreakpointHits(accesses, vcpu: kvm.id)
    if bits != 0 { return try deliverGuestDataBreakpoint(bits: bits) }
    guard !hits.isEmpty else { return stop }
    return try self.stop(.memoryAccess(hits))
  }

  /// The guest's #DB for its own data breakpoints `bits`, after the instruction that hit
  /// them (GuestDataBreakpoints.swift), and the stop at its handler.
  func deliverGuestDataBreakpoint(bits: UInt64) throws -> Stop {
    let stepping = mode == .stepping
    if stepping { try releaseForOtherEngine() }
    let outcome = try machine.deliverGuestDataBreakpoint(kvm, bits: bits)
    if stepping { try reclaimFromOtherEngine() } else { try assistedInstructionDone(replantingHandlers: false) }
    if let outcome { return try stop(.exit(outcome)) }
    if stepping {
      guestTrapFlag = false  // the delivery cleared TF
      try applyDebugState(.stepping)
    }
    knownPC = nil
    return try stop(.exception(vector: 1))
  }

  /// A run's exit for a guest access to a protected page: carried out, the instruction
  /// finished, and a stop if it touched a watch (or wrote where the caller compares), nil to
  /// run on.
  func stopAfterProtectedAccess(_ exit: VCPUExit, mode running: Mode, watchingHandlers: Bool) throws -> Stop? {
    let pc = special.cs.base &+ (try kvm.registers().rip)
    _ = machine.takeProtectedAccesses(vcpu: kvm.id)  // (none should be left; these are not this instruction's)
    var action = machine.serviceDeviceExit(exit, on: kvm)
    // The rest of the instruction: its further accesses to protected pages (a read-modify-
    // write, a string move) exit as this one did.
    let (more, other) = try machine.finishProtectedInstruction(kvm)
    if more != .none { action = more }
    let accesses = machine.takeProtectedAccesses(vcpu: kvm.id)
    let hits = protectedAccessHits(accesses, pc: pc)
    if case .guestRequest(let value) = action { return try stopRunning(.guestRequest(value: value)) }
    if let outcome = machine.outcome(of: action) { return try stop(.exit(outcome)) }
    let bits = machine.guestDataBreakpointHits(accesses, vcpu: kvm.id)
    if bits != 0 {
      // The guest's own data breakpoint: its #DB, then on (a stop at its handler when the
      // caller watches handlers, as for any exception, or when a watch was hit too).
      let delivered = try deliverGuestDataBreakpoint(bits: bits)
      if watchingHandlers || delivered.reason != .exception(vector: 1) || !hits.isEmpty { return delivered }
      try applyDebugState(running)
      return nil
    }
    if !hits.isEmpty { return try stopRunning(.memoryAccess(hits)) }
    if accesses.contains(where: { $0.isWrite && writeStopPages.contains($0.physical >> 12) }) {
      return try stopRunning(.protectedPageWritten)
    }
    if let other { return try stopAfterRunning(other, mode: running, watchingHandlers: watchingHandlers) }
    return nil
  }

  /// A run's emulation failure while memory watches are served on KVM (the instruction at
  /// linear `pc`, which is no breakpoint): the interpreter runs it, and the code after it
  /// while that stays on pages absent to KVM, comparing every access with the watches. A stop
  /// for a hit (or a write the caller compares), nil to run on.
  func stopAfterAbsentCode(at pc: UInt64, mode running: Mode, watchingHandlers: Bool) throws -> Stop? {
    var hardware: [UInt64] = []
    if case .running(let addresses, _) = running { hardware = addresses }
    _ = machine.takeAssistWatchHits(kvm)
    let (_, outcome, twinHits) = try machine.runAbsentCode(kvm, limit: Self.absentCodeBudget) { next in
      // Host breakpoints and handler entries are KVM's to report: back to it there.
      breakpoints[next] == nil && !hardware.contains(next) && handlers.vectors(at: next) == nil
    }
    try assistedInstructionDone(replantingHandlers: watchingHandlers)
    if let outcome { return try stop(.exit(outcome)) }
    let (hits, wroteStopPage) = assistHits(twinHits)
    if !hits.isEmpty { return try stopRunning(.memoryAccess(hits)) }
    // The interpreter writes RAM directly, past KVM's protection: the caller compares.
    if wroteStopPage { return try stopRunning(.protectedPageWritten) }
    return nil
  }

  /// The most instructions the interpreter runs for KVM in one go on absent code pages: KVM
  /// takes over where the code leaves them, and an interrupt KVM holds for the guest waits at
  /// most this long (under a millisecond). Going back and forth costs more than the steps:
  /// 1000 at a time ran Benchmarks/watch.sh's read row 2-4 times slower than 10000.
  static let absentCodeBudget: UInt64 = 10000
}
