import GuestMemory
import KVM
import Machine

/// The guest's memory and registers as a debugger sees them, kept in step with the stepper's
/// own view.
extension Stepper {
  /// The segment and control registers as of the last stop (kept current by the stepper, so
  /// a debugger need not ask KVM at every stop).
  public var specialRegisters: SpecialRegisters { special }

  /// Guest memory at a linear address as the guest wrote it: the stepper's own INT3s are
  /// shown as the bytes they replaced. With `cr3`, the address is translated through that
  /// address space (another process's page tables) in the current paging mode.
  public func readMemory(linear: UInt64, count: Int, cr3: UInt64? = nil) throws -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(count)
    try walker(cr3: cr3).forEachPage(linear: linear, count: count) { physical, piece in
      bytes += breakpoints.unplanted(try machine.memory.read(at: physical, count: piece.count), at: physical)
    }
    return bytes
  }

  /// Writes guest memory at a linear address (under `cr3` if given), keeping planted
  /// breakpoints planted.
  public func writeMemory(linear: UInt64, _ bytes: [UInt8], cr3: UInt64? = nil) throws {
    try walker(cr3: cr3).forEachPage(linear: linear, count: bytes.count) { physical, piece in
      try machine.memory.write(bytes[piece], at: physical)
      try breakpoints.rewritten(Array(bytes[piece]), at: physical, memory: machine.memory)
    }
    machine.hostWroteGuestMemory()
  }

  /// The guest's page walker for its current paging mode, through `cr3` or its own CR3.
  public func walker(cr3: UInt64? = nil) -> PageWalker {
    PageWalker(
      memory: machine.memory,
      mode: PagingMode(cr0: special.cr0, cr3: cr3 ?? special.cr3, cr4: special.cr4, efer: special.efer))
  }

  /// Records a register write from a debugger, keeping the stepper's view in step.
  public func registersChanged(_ registers: Registers, special newSpecial: SpecialRegisters?) {
    guestTrapFlag = registers.rflags & RFlags.trap != 0
    if let newSpecial { special = newSpecial }
    knownPC = nil
  }

  /// Reloads the segment and control registers from KVM (for callers inside a run, where the
  /// guest may have changed them since the last stop).
  public func refreshSpecialRegisters() throws {
    special = try vcpu.specialRegisters()
  }
}
