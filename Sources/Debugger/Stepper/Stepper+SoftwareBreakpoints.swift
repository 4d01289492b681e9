import GuestMemory
import KVM

/// The host's software breakpoints: INT3 bytes in guest memory, recorded in the
/// `BreakpointStore` shared by every vCPU's stepper.
extension Stepper {
  /// Plants an INT3 at a linear address (through the current page tables).
  public func insertSoftwareBreakpoint(at linear: UInt64) throws {
    guard breakpoints[linear] == nil else { return }
    let physical = try walker().translate(linear)
    let current = try machine.memory.load(UInt8.self, at: physical)
    let original = handlers.originalBytes([current], at: physical)[0]
    breakpoints[linear] = (physical, original)
    if breakpoints.plantsBytes { try machine.memory.store(UInt8(0xcc), at: physical) }
  }

  public func isSoftwareBreakpoint(_ linear: UInt64) -> Bool { breakpoints[linear] != nil }

  public func removeSoftwareBreakpoint(at linear: UInt64) throws {
    guard let entry = breakpoints[linear] else { return }
    breakpoints[linear] = nil
    guard breakpoints.plantsBytes else { return }
    let handlerPlanted = handlers.vectors(at: linear) != nil
    try machine.memory.store(handlerPlanted ? UInt8(0xcc) : entry.original, at: entry.physical)
  }
}
