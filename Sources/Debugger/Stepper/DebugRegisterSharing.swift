import KVM

/// The four debug-register slots shared by the host's hardware breakpoints and the guest's
/// own, for one run at full speed.
///
/// While the host has breakpoints KVM loads only what the host gives it
/// (KVM_GUESTDBG_USE_HW_BP), so the guest's enabled slots (L or G set in its DR7, as it last
/// wrote them) are copied in as they are, and the host takes free slots from DR3 down (guests
/// start from DR0). The guest still reads back what it wrote: KVM answers its MOV from DRn
/// from its own copy. A guest slot enabled while the vCPU runs counts from the next stop: KVM
/// handles the guest's DR writes itself, without an exit.
struct DebugRegisterSharing {
  /// The slot of each host breakpoint, and its address.
  private(set) var hostSlots: [Int: UInt64] = [:]
  /// The slots the guest's own breakpoints hold.
  private(set) var guestSlots: [Int] = []

  /// Whose breakpoint a #DB's DR6 reports.
  enum Hit: Equatable {
    case host(address: UInt64)
    case guest(slot: Int)
  }

  /// DR0-DR7 to load for `hostBreakpoints` beside the guest's own `guest` registers; records
  /// which slot went to whom. Throws when there are not enough free slots (the guest keeps its own).
  mutating func share(guest: DebugRegisters, hostBreakpoints: [UInt64]) throws -> [UInt64] {
    let used = (0..<4).filter { guest.dr7 >> (2 * UInt64($0)) & 0b11 != 0 }
    let free = (0..<4).reversed().filter { !used.contains($0) }
    guard hostBreakpoints.count <= free.count else {
      throw DebuggerError(
        "no free debug-register slot for \(hostBreakpoints.count) host hardware breakpoints: the guest's own "
          + "breakpoints hold \(used.map { "DR\($0)" }.joined(separator: ", ")) of the four")
    }
    var registers: [UInt64] = [guest.address.0, guest.address.1, guest.address.2, guest.address.3, 0, 0, 0, 0]
    var dr7: UInt64 = 0
    for slot in used {
      let shift = UInt64(slot)
      dr7 |= guest.dr7 & (0b11 << (2 * shift) | 0xf << (16 + 4 * shift))  // its enables, R/W and LEN
    }
    for (address, slot) in zip(hostBreakpoints, free) {
      registers[slot] = address
      dr7 |= 1 << (2 * UInt64(slot))  // Ln: local enable; R/W and LEN 0: execution
      hostSlots[slot] = address
    }
    registers[7] = dr7
    guestSlots = used
    return registers
  }

  /// The breakpoint a #DB with this DR6 reports: a host one first, if both fired.
  func hit(dr6: UInt64) -> Hit? {
    let hits = (0..<4).filter { dr6 & (1 << UInt64($0)) != 0 }
    if let slot = hits.first(where: { hostSlots[$0] != nil }), let address = hostSlots[slot] {
      return .host(address: address)
    }
    if let slot = hits.first(where: { guestSlots.contains($0) }) { return .guest(slot: slot) }
    return nil
  }
}
