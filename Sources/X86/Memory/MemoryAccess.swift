import GuestMemory

/// Guest memory as instructions see it: segment:offset → linear → physical → RAM or MMIO.
///
/// Segmentation: in 64-bit mode only FS and GS have a base, and addresses must be canonical
/// (#GP(0), or #SS(0) for stack references). Outside 64-bit mode the limit and type are
/// checked (SegmentChecks.swift) and the base is added.
extension X86Core {
  @inline(__always)
  mutating func linearAddress(
    _ segment: UInt8, _ offset: UInt64, size: UInt8 = 1, _ kind: AccessKind = .read
  ) throws(X86Exception) -> UInt64 {
    if codeMode == .bits64 {
      let linear = segment >= SegmentName.fs.rawValue ? offset &+ state.segments[Int(segment)].base : offset
      // Canonical: bits 63:47 all equal (48-bit linear addresses).
      if UInt64(bitPattern: Int64(bitPattern: linear << 16) >> 16) != linear {
        throw segment == SegmentName.ss.rawValue ? .stackFault(0) : .generalProtection(0)
      }
      return linear
    }
    try checkSegmentAccess(segment, offset, size: size, kind)
    return (state.segmentBounds[Int(segment)].base &+ offset) & 0xffff_ffff
  }

  /// The offset part of the r/m memory operand (base + index·scale + displacement, wrapped
  /// to the address size). RIP-relative uses the next instruction's RIP, already in `state.rip`.
  @inline(__always)
  mutating func effectiveAddress(_ d: DecodedInstruction) -> UInt64 {
    var address = d.displacement
    if d.base != DecodedInstruction.Register.none {
      address &+= d.base == DecodedInstruction.Register.rip ? state.rip : state.gpr[Int(d.base & 15)]
    }
    if d.index != DecodedInstruction.Register.none { address &+= state.gpr[Int(d.index & 15)] &<< UInt64(d.scale) }
    return address & sizeMask(d.addressSize)
  }

  // MARK: Reads and writes at segment:offset

  @inline(__always)
  mutating func read(_ segment: UInt8, _ offset: UInt64, size: UInt8) throws(X86Exception) -> UInt64 {
    try readLinear(try linearAddress(segment, offset, size: size), size: size, .read)
  }

  /// The memory operand of `d` at `offset`: read with write intent when `d` writes it back
  /// (`Flag.readModifyWrite`), so a fault on the read reports W = 1 as the hardware does.
  @inline(__always)
  mutating func readOperand(_ d: DecodedInstruction, _ offset: UInt64, size: UInt8) throws(X86Exception) -> UInt64 {
    let kind: AccessKind = d.has(DecodedInstruction.Flag.readModifyWrite) ? .write : .read
    return try readLinear(try linearAddress(d.segment, offset, size: size, kind), size: size, kind)
  }

  @inline(__always)
  mutating func write(_ segment: UInt8, _ offset: UInt64, size: UInt8, _ value: UInt64) throws(X86Exception) {
    try writeLinear(try linearAddress(segment, offset, size: size, .write), size: size, value)
  }

  // MARK: Linear

  /// #AC(0): a misaligned data access at CPL 3 with CR0.AM and RFLAGS.AC set (SDM Vol. 3,
  /// 6.15 "Interrupt 17"). It is checked before paging: a misaligned access to a page that is
  /// not present raises #AC, not #PF, as the host CPU shows. Only misaligned accesses pay for
  /// the test of the three conditions.
  @inline(__always)
  mutating func checkAlignment(_ linear: UInt64, size: UInt8) throws(X86Exception) {
    guard linear & UInt64(size &- 1) != 0 else { return }
    if state.cr0 & ControlBit.cr0AM != 0 && state.flagBits & RFlagsBit.alignmentCheck != 0 && privilegeLevel == 3 {
      throw X86Exception(vector: X86Exception.Vector.alignmentCheck, errorCode: 0)
    }
  }

  /// An aligned access within a page cached in the data-page cache (`TLB.dataReadTags`) is a
  /// tag comparison and a RAM load; anything else takes `readLinearSlow`, out of line so that
  /// the callers' frames stay small.
  @inline(__always)
  mutating func readLinear(_ linear: UInt64, size: UInt8, _ kind: AccessKind) throws(X86Exception) -> UInt64 {
    if kind != .execute && linear & UInt64(size &- 1) == 0 {
      let slot = TLB.dataSlot(linear)
      let tag = TLB.dataTag(linear, privilege: state.dataTagPrivilege)
      if (kind == .write ? tlb.dataWriteTags[slot] : tlb.dataReadTags[slot]) == tag,
        let value = ramValue(tlb.dataPhysicalPages[slot] | linear & 0xfff, size: size)
      {
        return value
      }
    }
    return try readLinearSlow(linear, size: size, kind)
  }

  @inline(never)
  mutating func readLinearSlow(_ linear: UInt64, size: UInt8, _ kind: AccessKind) throws(X86Exception) -> UInt64 {
    if kind != .execute { try checkAlignment(linear, size: size) }
    if linear & 0xfff &+ UInt64(size) <= 0x1000 {
      let physical = try translate(linear, kind)
      // Data breakpoints and watch ranges (DebugExceptions.swift): one flag while none is set.
      // A read with write intent (read-modify-write) counts as a read here; its write follows.
      if debug.checksAccesses && kind != .execute {
        noteDataAccess(linear: linear, size: size, write: false, physical: physical, secondPhysical: 0)
      }
      if kind != .execute { fillDataPage(linear, physical: physical, kind) }
      return readPhysical(physical, size: size)
    }
    // Split across two pages: both translate before anything is read.
    let firstCount = 0x1000 - (linear & 0xfff)
    let first = try translate(linear, kind)
    let second = try translate(linear &+ firstCount, kind)
    if debug.checksAccesses && kind != .execute {
      noteDataAccess(linear: linear, size: size, write: false, physical: first, secondPhysical: second)
    }
    var value: UInt64 = 0
    for index in 0..<UInt64(size) {
      let physical = index < firstCount ? first &+ index : second &+ (index - firstCount)
      value |= readPhysical(physical, size: 1) << (index * 8)
    }
    return value
  }

  /// The write counterpart of `readLinear`'s fast path: a hit needs no self-modifying-code
  /// check (write tags are never set for code pages).
  @inline(__always)
  mutating func writeLinear(_ linear: UInt64, size: UInt8, _ value: UInt64) throws(X86Exception) {
    if linear & UInt64(size &- 1) == 0 {
      let slot = TLB.dataSlot(linear)
      if tlb.dataWriteTags[slot] == TLB.dataTag(linear, privilege: state.dataTagPrivilege),
        storeRAM(tlb.dataPhysicalPages[slot] | linear & 0xfff, size: size, value)
      {
        return
      }
    }
    try writeLinearSlow(linear, size: size, value)
  }

  @inline(never)
  mutating func writeLinearSlow(_ linear: UInt64, size: UInt8, _ value: UInt64) throws(X86Exception) {
    try checkAlignment(linear, size: size)
    if linear & 0xfff &+ UInt64(size) <= 0x1000 {
      let physical = try translate(linear, .write)
      if debug.checksAccesses {
        noteDataAccess(linear: linear, size: size, write: true, physical: physical, secondPhysical: 0)
      }
      writePhysical(physical, size: size, value)
      fillDataPage(linear, physical: physical, .write)
      return
    }
    let firstCount = 0x1000 - (linear & 0xfff)
    let first = try translate(linear, .write)
    let second = try translate(linear &+ firstCount, .write)
    if debug.checksAccesses {
      noteDataAccess(linear: linear, size: size, write: true, physical: first, secondPhysical: second)
    }
    for index in 0..<UInt64(size) {
      let physical = index < firstCount ? first &+ index : second &+ (index - firstCount)
      writePhysical(physical, size: 1, value >> (index * 8))
    }
  }

  /// Caches the page of an access that just succeeded in the data-page cache (`TLB`), when it
  /// may be: the TLB holds its translation with this right (or paging is off: with SMAP, say,
  /// a supervisor access to a user page is allowed but never cached, and must walk again), no
  /// data checks are armed, the page is all guest RAM and, for a write, holds no decoded code.
  mutating func fillDataPage(_ linear: UInt64, physical: UInt64, _ kind: AccessKind) {
    guard !debug.checksAccesses else { return }
    if pagingEnabled {
      guard tlb.lookup(linear, permission: TLB.permissionBit(kind, user: privilegeLevel == 3)) != nil else { return }
    }
    let physicalPage = physical & ~0xfff
    guard ram.contains(GuestAddress(physicalPage), length: 0x1000) else { return }
    if kind == .write {
      let page = Int(truncatingIfNeeded: physicalPage >> 12)
      guard page >= decodeCache.pageCount || decodeCache.codePages[page] == 0 else { return }
    }
    let slot = TLB.dataSlot(linear)
    let tag = TLB.dataTag(linear, privilege: state.dataTagPrivilege)
    // The slot's other tag stays only if it names the same page (one physical page per slot).
    if tlb.dataReadTags[slot] != tag { tlb.dataReadTags[slot] = 0 }
    if tlb.dataWriteTags[slot] != tag { tlb.dataWriteTags[slot] = 0 }
    tlb.dataPhysicalPages[slot] = physicalPage
    if kind == .write { tlb.dataWriteTags[slot] = tag } else { tlb.dataReadTags[slot] = tag }
  }

  /// A RAM load for the data-page cache: nil when not RAM after all (then the slow path).
  @inline(__always)
  func ramValue(_ physical: UInt64, size: UInt8) -> UInt64? {
    switch size {
    case 1: ram.loadPhysical(UInt8.self, at: physical).map(UInt64.init)
    case 2: ram.loadPhysical(UInt16.self, at: physical).map(UInt64.init)
    case 4: ram.loadPhysical(UInt32.self, at: physical).map(UInt64.init)
    default: ram.loadPhysical(UInt64.self, at: physical)
    }
  }

  /// A RAM store for the data-page cache: false, with nothing written, when not writable RAM.
  @inline(__always)
  func storeRAM(_ physical: UInt64, size: UInt8, _ value: UInt64) -> Bool {
    switch size {
    case 1: ram.storePhysical(UInt8(truncatingIfNeeded: value), at: physical)
    case 2: ram.storePhysical(UInt16(truncatingIfNeeded: value), at: physical)
    case 4: ram.storePhysical(UInt32(truncatingIfNeeded: value), at: physical)
    default: ram.storePhysical(value, at: physical)
    }
  }

  // MARK: Physical

  @inline(__always)
  mutating func readPhysical(_ physical: UInt64, size: UInt8) -> UInt64 {
    let value: UInt64? =
      switch size {
      case 1: ram.loadPhysical(UInt8.self, at: physical).map(UInt64.init)
      case 2: ram.loadPhysical(UInt16.self, at: physical).map(UInt64.init)
      case 4: ram.loadPhysical(UInt32.self, at: physical).map(UInt64.init)
      default: ram.loadPhysical(UInt64.self, at: physical)
      }
    if let value { return value }
    bus.willAccess(retiredInstructions: retiredInstructions, state: state)
    return bus.mmioRead(physical, size: Int(size))
  }

  @inline(__always)
  mutating func writePhysical(_ physical: UInt64, size: UInt8, _ value: UInt64) {
    let stored: Bool =
      switch size {
      case 1: ram.storePhysical(UInt8(truncatingIfNeeded: value), at: physical)
      case 2: ram.storePhysical(UInt16(truncatingIfNeeded: value), at: physical)
      case 4: ram.storePhysical(UInt32(truncatingIfNeeded: value), at: physical)
      default: ram.storePhysical(value, at: physical)
      }
    if !stored {
      bus.willAccess(retiredInstructions: retiredInstructions, state: state)
      if bus.mmioWrite(physical, size: Int(size), value: value) { ioStopRequested = true }
      return
    }
    decodeCache.noteWrite(physical, size: size)
  }
}
