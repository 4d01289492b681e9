import GuestMemory
import KVM

/// Watchpoints at full speed on KVM: the watched bytes' guest-physical pages are made
/// read-only or absent to KVM (as EPT-based introspection does), so the guest runs natively
/// and only an access to one of those pages leaves KVM, as MMIO: a write to a read-only page,
/// any access to an absent one. The run loops carry those accesses out on RAM themselves
/// (`serviceDeviceExit`), so the guest sees its memory as always, and note each one for the
/// vCPU (`takeProtectedAccesses`), so a debugger's run can stop after the instruction and
/// say exactly which watched bytes it read or wrote. An instruction fetch from an absent page
/// is not MMIO KVM can run: it fails to emulate it, and the interpreter runs it (KVMAssist).
public struct MemoryProtection: Sendable, Equatable {
  /// Guest-physical page numbers (address >> 12) KVM sees read-only: writes leave KVM.
  public var readOnly: Set<UInt64>
  /// Page numbers KVM sees no memory at: every access leaves KVM. Wins over `readOnly`.
  public var absent: Set<UInt64>

  public init(readOnly: Set<UInt64> = [], absent: Set<UInt64> = []) {
    self.readOnly = readOnly
    self.absent = absent
  }

  public var isEmpty: Bool { readOnly.isEmpty && absent.isEmpty }
}

/// One guest access to a protected page that KVM handed back and the machine carried out.
public struct ProtectedAccess: Sendable, Equatable {
  public var physical: UInt64
  public var size: Int
  public var isWrite: Bool

  public init(physical: UInt64, size: Int, isWrite: Bool) {
    self.physical = physical
    self.size = size
    self.isWrite = isWrite
  }
}

extension Machine {
  /// Whether accesses to guest-physical pages can be made to leave KVM: a KVM with read-only
  /// memory slots, and one vCPU (changing the slots removes them for a moment, and another
  /// vCPU running then would see its RAM as MMIO).
  public var canWriteProtect: Bool { vm != nil && hasReadOnlySlots && cpus.count == 1 }

  /// Makes exactly these guest-physical pages read-only to KVM, keeping the absent ones; an
  /// empty set makes the others writable again. Nothing is done when nothing changes.
  public func protectFromWrites(pages: Set<UInt64>) throws {
    try protectMemory(MemoryProtection(readOnly: pages, absent: debuggerProtection.absent))
  }

  /// Makes KVM see exactly these pages read-only or absent, and all other RAM as RAM (an
  /// empty protection: all of it). Nothing is done when it is the one in force. Only while no
  /// vCPU is in KVM_RUN.
  public func protectMemory(_ protection: MemoryProtection) throws {
    try applyProtection(debugger: protection, guest: nil)
  }

  /// Sets the debugger's part of the protection, the guest's own data breakpoints' part
  /// (GuestDataBreakpoints.swift), or both (nil: unchanged), and gives KVM their union.
  func applyProtection(debugger: MemoryProtection?, guest: MemoryProtection?) throws {
    guard let vm else { throw MachineError.host("memory protection needs KVM") }
    try protectionParts.withLock { parts in
      if let debugger { parts.debugger = debugger }
      if let guest { parts.guest = guest }
      var union = MemoryProtection(
        readOnly: parts.debugger.readOnly.union(parts.guest.readOnly),
        absent: parts.debugger.absent.union(parts.guest.absent))
      union.readOnly.subtract(union.absent)
      try writeProtection.withLock { current in
        guard current != union else { return }
        do {
          try memory.protect(readOnly: union.readOnly, absent: union.absent, with: vm)
        } catch {
          throw MachineError.host("cannot change KVM's memory slots: \(error)")
        }
        current = union
      }
    }
  }

  /// The protection in force: the debugger's (`protectMemory`) and the guest's breakpoints'.
  public var memoryProtection: MemoryProtection { writeProtection.withLock { $0 } }

  /// The debugger's part of it (`protectMemory`).
  public var debuggerProtection: MemoryProtection { protectionParts.withLock { $0.debugger } }

  /// The pages a guest write leaves KVM on: the read-only and the absent ones.
  public var writeProtectedPages: Set<UInt64> { writeProtection.withLock { $0.readOnly.union($0.absent) } }

  /// Whether any of `size` bytes at a guest-physical address lies in a page a guest write
  /// leaves KVM on (read-only or absent).
  public func isWriteProtected(_ physical: UInt64, size: Int = 1) -> Bool {
    let (first, last) = Self.pages(physical, size)
    return writeProtection.withLock {
      $0.readOnly.contains(first) || $0.readOnly.contains(last) || $0.absent.contains(first) || $0.absent.contains(last)
    }
  }

  /// Whether any of `size` bytes at a guest-physical address lies in a page KVM sees absent.
  public func isAbsentToKVM(_ physical: UInt64, size: Int = 1) -> Bool {
    let (first, last) = Self.pages(physical, size)
    return writeProtection.withLock { $0.absent.contains(first) || $0.absent.contains(last) }
  }

  private static func pages(_ physical: UInt64, _ size: Int) -> (UInt64, UInt64) {
    (physical >> 12, (physical &+ UInt64(max(size, 1)) &- 1) >> 12)
  }

  /// Carries out a guest write KVM handed back because it hit a protected page: the value's
  /// bytes, little-endian, into RAM, noted for the vCPU. Returns false for any other address.
  func completeProtectedWrite(_ address: UInt64, size: Int, value: UInt64, by vcpu: Int) -> Bool {
    guard isWriteProtected(address, size: size) else { return false }
    let bytes = (0..<size).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
    // The address is RAM (a protected page is a RAM page): this cannot fail.
    try? memory.write(bytes, at: GuestAddress(address))
    noteProtectedAccess(ProtectedAccess(physical: address, size: size, isWrite: true), by: vcpu)
    return true
  }

  /// The value of a guest read KVM handed back because it hit an absent page, from RAM (little-
  /// endian), noted for the vCPU; nil for any other address.
  func completeProtectedRead(_ address: UInt64, size: Int, by vcpu: Int) -> UInt64? {
    guard isAbsentToKVM(address, size: size),
      let bytes = try? memory.read(at: GuestAddress(address), count: min(max(size, 1), 8))
    else { return nil }
    noteProtectedAccess(ProtectedAccess(physical: address, size: size, isWrite: false), by: vcpu)
    return bytes.enumerated().reduce(0) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
  }

  private func noteProtectedAccess(_ access: ProtectedAccess, by vcpu: Int) {
    protectedAccesses.withLock { $0[vcpu, default: []].append(access) }
  }

  /// The protected-page accesses carried out for this vCPU since the last call, oldest first.
  public func takeProtectedAccesses(vcpu: Int) -> [ProtectedAccess] {
    protectedAccesses.withLock { logs in
      guard let log = logs[vcpu], !log.isEmpty else { return [] }
      logs[vcpu] = []
      return log
    }
  }
}
