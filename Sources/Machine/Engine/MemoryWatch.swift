import X86

/// What a memory watch looks for: reads, writes, instruction fetches (any combination).
public struct MemoryAccessKinds: OptionSet, Sendable, Hashable {
  public let rawValue: UInt8
  public init(rawValue: UInt8) { self.rawValue = rawValue }
  public static let read = MemoryAccessKinds(rawValue: 1 << 0)
  public static let write = MemoryAccessKinds(rawValue: 1 << 1)
  public static let execute = MemoryAccessKinds(rawValue: 1 << 2)
}

/// `length` bytes of guest memory watched for accesses of `kinds`: at linear (virtual)
/// addresses, or at guest-physical ones (every mapping of the memory, libvmi's mem_access).
/// Any number of watches, of any length: the engine compares every data access the guest
/// makes (page-table walks excepted) with them. Only the interpreter engine has this today.
public struct MemoryWatch: Sendable, Hashable {
  public var start: UInt64
  public var length: UInt64
  public var kinds: MemoryAccessKinds
  public var physical: Bool

  public init(start: UInt64, length: UInt64, kinds: MemoryAccessKinds, physical: Bool = false) {
    self.start = start
    self.length = length
    self.kinds = kinds
    self.physical = physical
  }

  public func contains(_ address: UInt64) -> Bool { address &- start < length }
}

/// One access that touched a watch: seen after the instruction that made it (before it, for
/// an instruction fetch).
public struct MemoryAccessHit: Sendable, Hashable {
  /// The first byte of the access (of the part inside the watch's page, for a physical watch).
  public var address: UInt64
  public var size: UInt64
  /// Exactly one of read, write, execute.
  public var kind: MemoryAccessKinds
  /// The index of the watch in the list given to the engine.
  public var watch: Int
  /// RIP of the instruction that made the access.
  public var instructionPointer: UInt64

  public init(address: UInt64, size: UInt64, kind: MemoryAccessKinds, watch: Int, instructionPointer: UInt64) {
    self.address = address
    self.size = size
    self.kind = kind
    self.watch = watch
    self.instructionPointer = instructionPointer
  }
}

extension InterpreterVCPU {
  /// Replaces this vCPU's memory watches.
  public func setMemoryWatches(_ watches: [MemoryWatch]) {
    installedWatches = watches
    installRanges()
  }

  /// This vCPU's memory watches.
  public var memoryWatches: [MemoryWatch] { installedWatches }

  /// Host breakpoints for a run (the stepper's): the CPU compares them as execute ranges
  /// after the memory watches, so that its decoded blocks keep running everywhere but in a
  /// block that holds one (X86Core.run), where a breakpoint checked per instruction used to
  /// slow a whole run down some tenfold. A hit stops the run before the instruction, as a
  /// breakpoint does; `takeBreakpointHit` says where. Empty: none (the steps between runs
  /// check nothing).
  public func setRunBreakpoints(_ addresses: [UInt64]) {
    guard addresses != installedBreakpoints else { return }
    installedBreakpoints = addresses
    installRanges()
  }

  /// Lets the instruction at RIP run once without hitting a run breakpoint there (resuming
  /// from a stop at it).
  public func passRunBreakpoint() { cpu.suppressExecuteHit() }

  private func installRanges() {
    breakpointHit = nil
    cpu.setWatchRanges(
      installedWatches.map {
        WatchRange(
          start: $0.start, length: $0.length, kinds: WatchKinds(rawValue: $0.kinds.rawValue),
          space: $0.physical ? .physical : .linear)
      } + installedBreakpoints.map { WatchRange(start: $0, length: 1, kinds: .execute) })
  }

  /// The accesses the last instructions made to watched memory, oldest first; clears them.
  /// A run breakpoint's hit among them is kept for `takeBreakpointHit`.
  public func takeMemoryAccessHits() -> [MemoryAccessHit] {
    let hits = cpu.watchHits
    guard !hits.isEmpty else { return [] }
    cpu.clearWatchHits()
    let watchCount = installedWatches.count
    if let hit = hits.first(where: { $0.rangeIndex >= watchCount }) { breakpointHit = hit.address }
    return hits.filter { $0.rangeIndex < watchCount }.map {
      MemoryAccessHit(
        address: $0.address, size: $0.size, kind: MemoryAccessKinds(rawValue: $0.kind.rawValue),
        watch: $0.rangeIndex, instructionPointer: $0.instructionPointer)
    }
  }

  /// The run breakpoint the last run stopped at, if any; clears it. A breakpoint stops the
  /// run before its instruction, so its hit is the run's last; hits of memory watches on the
  /// same instruction's fetch stay for `takeMemoryAccessHits`.
  public func takeBreakpointHit() -> UInt64? {
    if breakpointHit == nil {
      let watchCount = installedWatches.count
      let hits = cpu.watchHits
      guard let hit = hits.last(where: { $0.rangeIndex >= watchCount }) else { return nil }
      if hits.allSatisfy({ $0.rangeIndex >= watchCount }) { cpu.clearWatchHits() }
      return hit.address
    }
    defer { breakpointHit = nil }
    return breakpointHit
  }
}
