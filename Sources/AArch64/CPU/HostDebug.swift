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

  public init(start: UInt64, length: UInt64, reads: Bool, writes: Bool) {
    self.start = start
    self.length = max(length, 1)
    self.reads = reads
    self.writes = writes
  }
}

struct HostDebug {
  var breakpoints: Set<UInt64> = []
  var watches: [HostWatch] = []
  /// The next step executes the instruction at the PC even if it has a breakpoint (a
  /// debugger resuming from a breakpoint stop).
  var passBreakpointOnce = false
  /// The access a watched range caught, reported by the step that stopped.
  var hit: (address: UInt64, write: Bool)?
  var armed: Bool { !breakpoints.isEmpty || !watches.isEmpty }
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
    host.hit = (address, write)
    throw .hostStop
  }
}
