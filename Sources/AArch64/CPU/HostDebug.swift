/// What a debugger outside the guest (Hyperstep's GDB server, trace, monitor) sets on an
/// AArch64 CPU: breakpoints by virtual address and watched ranges of virtual addresses, any
/// number of each. They touch no guest state: nothing is written into guest memory, and no
/// guest debug register, PSTATE bit or monitor changes, so the guest's own debugging works
/// unchanged underneath (the step contract).
public struct HostWatch: Sendable, Equatable {
  public var start: UInt64
  /// Bytes watched from `start` (at least 1).
  public var length: UInt64
  public var reads: Bool
  public var writes: Bool
  /// Instruction fetches: a step whose PC lies in the range stops before the instruction.
  public var executes: Bool

  public init(start: UInt64, length: UInt64, reads: Bool, writes: Bool, executes: Bool = false) {
    self.start = start
    self.length = max(length, 1)
    self.reads = reads
    self.writes = writes
    self.executes = executes
  }

  public func contains(_ address: UInt64) -> Bool { address &- start < length }
}

/// A data access a host watch saw while its stop was passed (`A64CPU.passHostStopsOnce`).
public struct HostWatchAccess: Sendable, Equatable {
  public var address: UInt64
  public var size: Int
  public var write: Bool
}

struct HostDebug {
  var breakpoints: Set<UInt64> = []
  var watches: [HostWatch] = []
  /// The next step executes the instruction at the PC even if it has a breakpoint (a
  /// debugger resuming from a breakpoint stop).
  var passBreakpointOnce = false
  /// The access a watched range caught, reported by the step that stopped.
  var hit: (address: UInt64, write: Bool)?
  /// System registers whose MSR writes stop before taking effect (an event API's
  /// system-register events): tested only in the MSR path, so they cost nothing elsewhere.
  var systemRegisterWrites: Set<SystemRegisterName> = []
  /// The write a watched system register was about to receive, reported by the step.
  var systemRegisterHit: (name: SystemRegisterName, value: UInt64)?
  /// The next instruction passes every host stop but breakpoints (which have their own pass):
  /// watches record their accesses in `passedAccesses` instead, system-register writes
  /// happen. `passing` is that for the instruction being executed.
  var passNext = false
  var passing = false
  var passedAccesses: [HostWatchAccess] = []
  var watchesFetches = false
  var armed: Bool { !breakpoints.isEmpty || !watches.isEmpty || !systemRegisterWrites.isEmpty }
}

extension A64Exception {
  /// Not an architectural exception: a host watch stopped the instruction before its access
  /// (`A64StepResult.hostWatch`); never delivered to the guest.
  static let hostStop = A64Exception(syndrome: 0xffff_ffff)
}

extension A64Core {
  /// The host watch an access of `size` bytes at virtual `address` hits, if any.
  @inline(__always)
  func hostWatchHit(_ address: UInt64, size: Int, write: Bool) -> Bool {
    let last = address &+ UInt64(size) &- 1
    for watch in host.watches where (write ? watch.writes : watch.reads) {
      if address <= watch.start &+ watch.length &- 1 && last >= watch.start { return true }
    }
    return false
  }

  /// Stops the instruction before an access a host watch covers.
  @inline(__always)
  mutating func checkHostWatch(_ address: UInt64, size: Int, write: Bool) throws(A64Exception) {
    guard hostArmed, !host.watches.isEmpty, hostWatchHit(address, size: size, write: write) else { return }
    if host.passing {
      host.passedAccesses.append(HostWatchAccess(address: address, size: size, write: write))
      return
    }
    host.hit = (address, write)
    throw .hostStop
  }

  /// The host's checks before an instruction (only while `hostArmed`): a breakpoint on the
  /// PC, or an execute watch covering it, stops the step with nothing run.
  @inline(__always)
  mutating func hostStopBeforeInstruction(_ pc: UInt64) -> A64StepResult? {
    host.passing = host.passNext
    host.passNext = false
    if !host.breakpoints.isEmpty {
      if host.passBreakpointOnce {
        host.passBreakpointOnce = false
      } else if host.breakpoints.contains(pc) {
        return .hostBreakpoint
      }
    }
    if host.watchesFetches && !host.passing && host.watches.contains(where: { $0.executes && $0.contains(pc) }) {
      return .hostFetchWatch(address: pc)
    }
    return nil
  }

  /// Stops an MSR to a host-watched system register before it takes effect.
  @inline(__always)
  mutating func checkHostSystemRegisterWrite(_ name: SystemRegisterName, _ value: UInt64) throws(A64Exception) {
    guard hostArmed, !host.passing, host.systemRegisterWrites.contains(name) else { return }
    host.systemRegisterHit = (name, value)
    throw .hostStop
  }
}
