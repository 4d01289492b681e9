/// The stage 1 MMU of the EL1&0 translation regime: VMSAv8-64 with the 4 KiB granule, up to
/// 48-bit virtual and physical addresses, TTBR0_EL1 and TTBR1_EL1 (ARM ARM D5), and a
/// direct-mapped TLB in front of it.
///
/// The TLB ignores ASIDs and the nG bit: it is flushed whole by every TLBI and by every write
/// to SCTLR_EL1, TCR_EL1, TTBR0/1_EL1 or MAIR_EL1. Dropping translations early is always
/// allowed (a TLB is only a cache, D5.10), so the guest sees exactly the architecture's
/// results without the TLB's bookkeeping.
enum A64Access: Sendable {
  case fetch, read, write
}

/// One translation: the physical page and what each EL may do with it.
struct A64TLBEntry {
  var tag: UInt64 = .max
  var physicalPage: UInt64 = 0
  /// Permission bits (`A64TLBEntry.read0` ...) and the memory type.
  var permissions: UInt8 = 0
  /// The level of the leaf descriptor, for permission faults' status codes.
  var level: UInt8 = 3
  /// The MAIR_EL1 attribute byte and the descriptor's SH field, for PAR_EL1.
  var attributes: UInt8 = 0
  var shareability: UInt8 = 0

  static let read0: UInt8 = 1 << 0
  static let write0: UInt8 = 1 << 1
  static let execute0: UInt8 = 1 << 2
  static let read1: UInt8 = 1 << 3
  static let write1: UInt8 = 1 << 4
  static let execute1: UInt8 = 1 << 5
  /// Device memory: every access must be aligned (B2.5.2).
  static let device: UInt8 = 1 << 6
}

struct A64TLB {
  static let entryCount = 256
  var entries: [A64TLBEntry] = Array(repeating: A64TLBEntry(), count: entryCount)

  @inline(__always) static func slot(_ virtualPage: UInt64) -> Int {
    Int(truncatingIfNeeded: virtualPage & UInt64(entryCount - 1))
  }

  mutating func flush() {
    for slot in 0..<A64TLB.entryCount { entries[slot].tag = .max }
  }
}

extension A64Core {
  /// The physical address of `address` for an access of `kind`, checked for the current EL
  /// (EL0 when `unprivileged`, for LDTR/STTR at EL1). Alignment is the caller's.
  @inline(__always)
  mutating func translate(_ address: UInt64, _ kind: A64Access, unprivileged: Bool = false) throws(A64Exception)
    -> UInt64
  {
    try translateWithType(address, kind, unprivileged: unprivileged).physical
  }

  /// As `translate`, also saying whether the memory is Device memory.
  @inline(__always)
  mutating func translateWithType(_ address: UInt64, _ kind: A64Access, unprivileged: Bool = false)
    throws(A64Exception) -> (physical: UInt64, device: Bool)
  {
    let el0 = state.pstate.el == 0 || unprivileged
    if state.system.sctlr & 1 == 0 {
      // MMU off (D5.2.9): flat, Normal memory for fetches, Device-nGnRnE for data; an address
      // beyond the 48-bit physical space is an address size fault at level 0.
      guard address >> 48 == 0 else { throw abort(address, kind, .addressSize, level: 0) }
      return (address, kind != .fetch)
    }
    let page = address >> 12
    let slot = A64TLB.slot(page)
    var entry = tlb.entries[slot]
    if entry.tag != page {
      entry = try walk(address, kind)
      tlb.entries[slot] = entry
    }
    let needed: UInt8
    switch kind {
    case .fetch: needed = el0 ? A64TLBEntry.execute0 : A64TLBEntry.execute1
    case .read: needed = el0 ? A64TLBEntry.read0 : A64TLBEntry.read1
    case .write: needed = el0 ? A64TLBEntry.write0 : A64TLBEntry.write1
    }
    guard entry.permissions & needed != 0 else {
      throw abort(address, kind, .permission, level: Int(entry.level))
    }
    return (entry.physicalPage << 12 | address & 0xfff, entry.permissions & A64TLBEntry.device != 0)
  }

  /// The memory attributes of a translated address, for AT: the MAIR attribute byte and SH.
  /// With the MMU off, data is Device-nGnRnE and Outer Shareable (D5.2.9).
  mutating func attributes(of address: UInt64) -> (attributes: UInt8, shareability: UInt8) {
    guard state.system.sctlr & 1 != 0 else { return (0, 0b10) }
    let entry = tlb.entries[A64TLB.slot(address >> 12)]
    return entry.tag == address >> 12 ? (entry.attributes, entry.shareability) : (0, 0)
  }

  /// The abort an access of `kind` at `address` takes.
  func abort(_ address: UInt64, _ kind: A64Access, _ status: A64Exception.FaultStatus, level: Int) -> A64Exception {
    let lower = state.pstate.el == 0
    return kind == .fetch
      ? .instructionAbort(address, status, level: level, fromLowerLevel: lower)
      : .dataAbort(address, status, level: level, write: kind == .write, fromLowerLevel: lower)
  }

  /// The translation table walk (D5.2, AArch64.TranslationTableWalk for the 4 KiB granule).
  mutating func walk(_ address: UInt64, _ kind: A64Access) throws(A64Exception) -> A64TLBEntry {
    let tcr = state.system.tcr
    let upper = address >> 55 & 1 != 0
    let size = upper ? (tcr >> 16) & 0x3f : tcr & 0x3f
    // TxSZ below 16 is treated as 16 (48-bit VAs), above 39 as 39 (D5.2.3, the 4 KiB granule).
    let inputBits = 64 - Int(min(max(size, 16), 39))
    let disabled = upper ? tcr >> 23 & 1 != 0 : tcr >> 7 & 1 != 0
    // The bits above the input size must all equal bit 55 (the top byte counts here: TBI
    // only changes what data accesses compare, and is applied by the caller before this).
    let top = address >> UInt64(inputBits)
    let expected: UInt64 = upper ? (UInt64.max >> UInt64(inputBits)) : 0
    guard !disabled, top == expected else { throw abort(address, kind, .translation, level: 0) }
    let ttbr = upper ? state.system.ttbr1 : state.system.ttbr0
    var level = 4 - (inputBits - 12 + 8) / 9
    // BADDR, bits 47-1: a first-level table smaller than a page is aligned to its size only.
    var table = ttbr & 0x0000_ffff_ffff_fffe
    // Hierarchical attributes from table descriptors (D5.3.3).
    var noEL0 = false
    var readOnly = false
    var executeNever0 = false
    var executeNever1 = false
    while true {
      let shift = 12 + 9 * (3 - level)
      let index = (address & (UInt64.max >> UInt64(64 - inputBits))) >> UInt64(shift) & 0x1ff
      guard let descriptor = ram.loadPhysical(UInt64.self, at: table &+ index &* 8) else {
        throw abort(address, kind, .synchronousExternal, level: level)
      }
      let type = descriptor & 3
      if type == 3 && level < 3 {
        noEL0 = noEL0 || descriptor >> 61 & 1 != 0
        readOnly = readOnly || descriptor >> 62 & 1 != 0
        executeNever0 = executeNever0 || descriptor >> 60 & 1 != 0
        executeNever1 = executeNever1 || descriptor >> 59 & 1 != 0
        table = descriptor & 0x0000_ffff_ffff_f000
        level += 1
        continue
      }
      // A block at level 1 or 2, or a page at level 3; anything else is invalid.
      guard type == 1 && (level == 1 || level == 2) || type == 3 && level == 3 else {
        throw abort(address, kind, .translation, level: level)
      }
      guard descriptor >> 10 & 1 != 0 else { throw abort(address, kind, .accessFlag, level: level) }
      let outputMask: UInt64 = (UInt64(1) << 48 &- 1) & ~((UInt64(1) << UInt64(shift)) &- 1)
      let physical = descriptor & outputMask | address & ((UInt64(1) << UInt64(shift)) &- 1)
      let ap = descriptor >> 6 & 3
      let el0Access = ap & 1 != 0 && !noEL0
      let writable = ap & 2 == 0 && !readOnly
      let wxn = state.system.sctlr >> 19 & 1 != 0
      var permissions: UInt8 = A64TLBEntry.read1
      if writable { permissions |= A64TLBEntry.write1 }
      if el0Access {
        permissions |= A64TLBEntry.read0
        if writable { permissions |= A64TLBEntry.write0 }
      }
      // UXN and PXN (D5.4.5); EL1 never executes what EL0 may write, and with SCTLR.WXN
      // nothing writable is executable.
      let uxn = descriptor >> 54 & 1 != 0 || executeNever0
      let pxn = descriptor >> 53 & 1 != 0 || executeNever1
      if el0Access && !uxn && !(wxn && writable) { permissions |= A64TLBEntry.execute0 }
      if !pxn && !(el0Access && writable) && !(wxn && writable) { permissions |= A64TLBEntry.execute1 }
      let attributes = state.system.mair >> (8 * (descriptor >> 2 & 7)) & 0xff
      if attributes & 0xf0 == 0 { permissions |= A64TLBEntry.device }
      return A64TLBEntry(
        tag: address >> 12, physicalPage: physical >> 12, permissions: permissions, level: UInt8(level),
        attributes: UInt8(attributes), shareability: UInt8(descriptor >> 8 & 3))
    }
  }
}
