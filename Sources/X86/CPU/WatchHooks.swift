/// Host watch hooks: the debugger's own watchpoints (gdb's Z2/Z3/Z4, the event API), apart
/// from the guest's debug registers and invisible to the guest.
///
/// Every data access an instruction makes is compared with the ranges: loads and stores of
/// MOV and friends, string instructions (each iteration), PUSH/POP and the stack of CALL/RET/
/// ENTER/LEAVE, both halves of a read-modify-write (a read, then a write), CMPXCHG (which
/// writes even when the comparison fails, as the hardware does), MMIO. Page-table walks and
/// instruction fetches are not data accesses and never hit. Hits are recorded in `watchHits`
/// after the access's translation succeeded (so an access that page-faults does not hit).
///
/// Timing: a hit does not change the step's result: the instruction retires (`.retired`) and
/// `watchHits` says what it touched. If the instruction faulted after some accesses, the
/// result is the exception and the hits of the accesses that happened stay recorded. A
/// repeated string instruction stops after the iteration that hit, with RIP still at it and
/// its registers advanced, so hits never pile up by the million; the next step resumes it.
/// `run(maxInstructions:)` returns after a step that hit.
///
/// Execute ranges stop the CPU before an instruction whose first byte (its linear address, or
/// the physical address it is fetched from) lies in the range: the step executes nothing,
/// records the hit and returns `.retired` with `retiredInstructions` unchanged. The next step
/// at that RIP executes the instruction without reporting it again.
///
/// Cost while no range is set: nothing on accesses beyond the one flag the debug registers
/// share (`debug.checksAccesses`), and nothing per step beyond the existing debug test.
public struct WatchKinds: OptionSet, Sendable, Hashable {
  public let rawValue: UInt8
  public init(rawValue: UInt8) { self.rawValue = rawValue }
  public static let read = WatchKinds(rawValue: 1 << 0)
  public static let write = WatchKinds(rawValue: 1 << 1)
  public static let execute = WatchKinds(rawValue: 1 << 2)
}

/// Which addresses a range speaks of.
public enum WatchAddressSpace: Sendable, Hashable {
  /// Linear (virtual) addresses, after segmentation, before paging.
  case linear
  /// Guest-physical addresses, after paging: every mapping of the watched memory hits.
  case physical
}

/// `length` bytes from `start` (wrapping at 2^64; a zero length never hits).
public struct WatchRange: Sendable, Hashable {
  public var start: UInt64
  public var length: UInt64
  public var kinds: WatchKinds
  public var space: WatchAddressSpace

  public init(start: UInt64, length: UInt64, kinds: WatchKinds, space: WatchAddressSpace = .linear) {
    self.start = start
    self.length = length
    self.kinds = kinds
    self.space = space
  }
}

/// One access that overlapped a range.
public struct WatchHit: Sendable, Hashable {
  /// The access's first byte in the range's address space. A physical range hit by an access
  /// that straddles two pages reports the part on the page that overlapped.
  public var address: UInt64
  /// The access's size in bytes (of that part, for a straddling access and a physical range).
  public var size: UInt64
  /// `.read`, `.write` or `.execute`: exactly one.
  public var kind: WatchKinds
  /// The index of the range in the array given to `setWatchRanges`.
  public var rangeIndex: Int
  /// RIP of the instruction that made the access.
  public var instructionPointer: UInt64

  public init(address: UInt64, size: UInt64, kind: WatchKinds, rangeIndex: Int, instructionPointer: UInt64) {
    self.address = address
    self.size = size
    self.kind = kind
    self.rangeIndex = rangeIndex
    self.instructionPointer = instructionPointer
  }
}

extension X86CPU {
  /// Replaces the watch ranges (any number, any lengths). An empty array turns the hooks off.
  public func setWatchRanges(_ ranges: [WatchRange]) {
    // Translated blocks were made without regard to execute ranges (JITRun.swift).
    if ranges.contains(where: { $0.kinds.contains(.execute) }) || core.debug.hasExecuteRanges { core.jit?.flush() }
    core.debug.ranges = ranges
    core.debug.hasDataRanges = ranges.contains { !$0.kinds.isDisjoint(with: [.read, .write]) && $0.length != 0 }
    core.debug.hasExecuteRanges = ranges.contains { $0.kinds.contains(.execute) && $0.length != 0 }
    core.debug.executeHitSuppressed = 0
    core.refreshDebugControls()
  }

  public var watchRanges: [WatchRange] { core.debug.ranges }

  /// The instruction at RIP runs once without its execute ranges being checked (a debugger
  /// resuming from a stop at a breakpoint there), as after an execute hit.
  public func suppressExecuteHit() { core.debug.executeHitSuppressed = core.state.rip &+ 1 }

  /// The hits since the last `clearWatchHits()`, in access order.
  public var watchHits: [WatchHit] { core.debug.hits }

  public func clearWatchHits() { core.debug.hits.removeAll(keepingCapacity: true) }
}

extension X86Core {
  mutating func noteWatchedAccess(
    linear: UInt64, size: UInt64, write: Bool, physical: UInt64, secondPhysical: UInt64
  ) {
    let kind: WatchKinds = write ? .write : .read
    let inFirstPage = min(size, 0x1000 - (linear & 0xfff))
    for index in debug.ranges.indices {
      let range = debug.ranges[index]
      guard range.kinds.contains(kind) else { continue }
      switch range.space {
      case .linear:
        if rangesOverlap(range.start, range.length, linear, size) {
          recordWatchHit(WatchHit(address: linear, size: size, kind: kind, rangeIndex: index, instructionPointer: 0))
        }
      case .physical:
        if rangesOverlap(range.start, range.length, physical, inFirstPage) {
          recordWatchHit(
            WatchHit(address: physical, size: inFirstPage, kind: kind, rangeIndex: index, instructionPointer: 0))
        }
        if inFirstPage < size && rangesOverlap(range.start, range.length, secondPhysical, size - inFirstPage) {
          recordWatchHit(
            WatchHit(
              address: secondPhysical, size: size - inFirstPage, kind: kind, rangeIndex: index, instructionPointer: 0))
        }
      }
    }
  }

  private mutating func recordWatchHit(_ hit: WatchHit) {
    var hit = hit
    hit.instructionPointer = debug.currentInstruction
    debug.hits.append(hit)
    debug.iterationHit = true
    debug.stopRun = true
  }

  /// Before an instruction: does an execute range cover its first byte? Then stop without
  /// executing it (see the type's comment). Returns nil to go on.
  mutating func executeWatchStop() -> StepResult? {
    let rip = state.rip
    if debug.executeHitSuppressed == rip &+ 1 {
      debug.executeHitSuppressed = 0
      return nil
    }
    debug.executeHitSuppressed = 0
    let linear =
      codeMode == .bits64 ? rip : (state.segments[Int(SegmentName.cs.rawValue)].base &+ rip) & 0xffff_ffff
    var physical: UInt64?
    var stopped = false
    for index in debug.ranges.indices {
      let range = debug.ranges[index]
      guard range.kinds.contains(.execute) else { continue }
      let address: UInt64
      switch range.space {
      case .linear: address = linear
      case .physical:
        // A fetch that would fault has no physical address; the fault comes from the fetch.
        if physical == nil { physical = try? translate(linear, .execute) }
        guard let physical else { continue }
        address = physical
      }
      if rangesOverlap(range.start, range.length, address, 1) {
        debug.hits.append(
          WatchHit(address: address, size: 1, kind: .execute, rangeIndex: index, instructionPointer: rip))
        stopped = true
      }
    }
    guard stopped else { return nil }
    debug.executeHitSuppressed = rip &+ 1
    debug.stopRun = true
    return .retired
  }
}
