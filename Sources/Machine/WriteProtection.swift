import GuestMemory
import KVM

/// Write watchpoints at full speed on KVM: the watched bytes' guest-physical pages are made
/// read-only to KVM (as EPT-based introspection does), so the guest runs natively and only a
/// write to one of those pages leaves KVM, as an MMIO write. The run loops carry that write
/// out into RAM themselves (`serviceDeviceExit`), so the guest sees its memory as always, and
/// a debugger's run stops after the writing instruction to compare the watched bytes.
extension Machine {
  /// Whether writes to guest-physical pages can be made to leave KVM: a KVM with read-only
  /// memory slots, and one vCPU (changing the slots removes them for a moment, and another
  /// vCPU running then would see its RAM as MMIO).
  public var canWriteProtect: Bool { vm != nil && hasReadOnlySlots && cpus.count == 1 }

  /// Makes exactly these guest-physical pages (page numbers) read-only to KVM; an empty set
  /// makes all RAM writable again. Nothing is done when the set is the one in force.
  public func protectFromWrites(pages: Set<UInt64>) throws {
    guard let vm else { throw MachineError.host("write protection needs KVM") }
    try writeProtection.withLock { current in
      guard current != pages else { return }
      do {
        try memory.protectFromWrites(pages: pages, with: vm)
      } catch {
        throw MachineError.host("cannot change KVM's memory slots: \(error)")
      }
      current = pages
    }
  }

  /// The pages made read-only by `protectFromWrites`.
  public var writeProtectedPages: Set<UInt64> { writeProtection.withLock { $0 } }

  /// Whether any of `size` bytes at a guest-physical address lies in a page made read-only
  /// by `protectFromWrites`.
  public func isWriteProtected(_ physical: UInt64, size: Int = 1) -> Bool {
    let last = physical &+ UInt64(max(size, 1)) &- 1
    return writeProtection.withLock { $0.contains(physical >> 12) || $0.contains(last >> 12) }
  }

  /// Carries out a guest write KVM handed back because it hit a write-protected page: the
  /// value's bytes, little-endian, into RAM. Returns false for any other address.
  func completeProtectedWrite(_ address: UInt64, size: Int, value: UInt64) -> Bool {
    guard isWriteProtected(address, size: size) else { return false }
    let bytes = (0..<size).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
    // The address is RAM (a protected page is a RAM page): this cannot fail.
    try? memory.write(bytes, at: GuestAddress(address))
    return true
  }
}
