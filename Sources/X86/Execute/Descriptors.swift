/// Segment descriptors and the implicit supervisor-mode accesses that read them (SDM Vol. 3,
/// 3.4.5 and 5.x): GDT/LDT/IDT entries, TSS stack fields, accessed bits, and stack frames
/// that delivery builds before CPL changes.
struct SegmentDescriptor {
  /// The low 8 bytes of the descriptor as stored in the table.
  var raw: UInt64

  var type: UInt8 { UInt8(truncatingIfNeeded: raw >> 40) & 0xf }
  /// S: a code or data segment (else a system segment or gate).
  var isCodeOrData: Bool { raw >> 44 & 1 != 0 }
  var dpl: UInt8 { UInt8(truncatingIfNeeded: raw >> 45) & 3 }
  var present: Bool { raw >> 47 & 1 != 0 }
  var isCode: Bool { isCodeOrData && type & 8 != 0 }
  var isData: Bool { isCodeOrData && type & 8 == 0 }
  /// Code: conforming (C). Data: expand-down (E).
  var conforming: Bool { type & 4 != 0 }
  /// Code: readable (R). Data: writable (W).
  var readableOrWritable: Bool { type & 2 != 0 }
  var longMode: Bool { raw >> 53 & 1 != 0 }
  var defaultBig: Bool { raw >> 54 & 1 != 0 }
  var granularity: Bool { raw >> 55 & 1 != 0 }

  var base: UInt64 { (raw >> 16) & 0xff_ffff | (raw >> 32) & 0xff00_0000 }
  /// The limit in bytes: scaled by 4 KiB with G (SDM Vol. 3, 3.4.5).
  var limit: UInt32 {
    let raw20 = UInt32(truncatingIfNeeded: raw & 0xffff | (raw >> 32) & 0xf_0000)
    return granularity ? raw20 << 12 | 0xfff : raw20
  }

  /// The hidden part CS holds when running at `cpl`. The interpreter reads CPL from CS.DPL,
  /// so for a conforming segment (whose DPL may be below CPL, SDM Vol. 3, 5.8.1.2) the hidden
  /// DPL is the CPL; for a non-conforming one the two are equal anyway.
  func codeSegment(selector: UInt16, cpl: UInt8) -> SegmentRegister {
    var segment = segment(selector: selector & 0xfffc | UInt16(cpl))
    segment.dpl = cpl
    return segment
  }

  // Gates (SDM Vol. 3, 5.8.3 and 6.11).
  var gateSelector: UInt16 { UInt16(truncatingIfNeeded: raw >> 16) }
  var gateOffset: UInt64 { raw & 0xffff | (raw >> 32) & 0xffff_0000 }

  /// The hidden part a segment register holds after loading this descriptor: with the
  /// accessed bit set for code and data, since the load sets it in the table too.
  func segment(selector: UInt16) -> SegmentRegister {
    SegmentRegister(
      selector: selector, base: base, limit: limit, type: isCodeOrData ? type | 1 : type,
      isCodeOrData: isCodeOrData, dpl: dpl,
      present: present, longMode: longMode, defaultBig: defaultBig, granularity: granularity,
      available: raw >> 52 & 1 != 0)
  }
}

extension X86Core {
  // MARK: Implicit supervisor accesses

  /// Linear addresses wrap at 4 GiB outside IA-32e mode.
  @inline(__always) mutating func systemLinear(_ address: UInt64) -> UInt64 {
    state.longModeActive ? address : address & 0xffff_ffff
  }

  /// Translation with an explicit user/supervisor mode: descriptor-table and TSS accesses are
  /// supervisor accesses whatever the CPL, and delivery writes the handler's stack at the
  /// handler's privilege (SDM Vol. 3, 4.6). No alignment check applies to these.
  mutating func translate(_ linear: UInt64, _ kind: AccessKind, user: Bool) throws(X86Exception) -> UInt64 {
    if !pagingEnabled { return linear }
    if let physical = tlb.lookup(linear, permission: TLB.permissionBit(kind, user: user)) { return physical }
    return try walk(linear, kind, user: user)
  }

  mutating func systemRead(_ address: UInt64, size: UInt8, user: Bool = false) throws(X86Exception) -> UInt64 {
    let linear = systemLinear(address)
    if linear & 0xfff &+ UInt64(size) <= 0x1000 {
      return readPhysical(try translate(linear, .read, user: user), size: size)
    }
    let firstCount = 0x1000 - (linear & 0xfff)
    let first = try translate(linear, .read, user: user)
    let second = try translate(systemLinear(linear &+ firstCount), .read, user: user)
    var value: UInt64 = 0
    for index in 0..<UInt64(size) {
      let physical = index < firstCount ? first &+ index : second &+ (index - firstCount)
      value |= readPhysical(physical, size: 1) << (index * 8)
    }
    return value
  }

  mutating func systemWrite(_ address: UInt64, size: UInt8, _ value: UInt64, user: Bool = false) throws(X86Exception) {
    let linear = systemLinear(address)
    if linear & 0xfff &+ UInt64(size) <= 0x1000 {
      writePhysical(try translate(linear, .write, user: user), size: size, value)
      return
    }
    let firstCount = 0x1000 - (linear & 0xfff)
    let first = try translate(linear, .write, user: user)
    let second = try translate(systemLinear(linear &+ firstCount), .write, user: user)
    for index in 0..<UInt64(size) {
      let physical = index < firstCount ? first &+ index : second &+ (index - firstCount)
      writePhysical(physical, size: 1, value >> (index * 8))
    }
  }

  // MARK: Descriptor tables

  /// The linear address of a selector's descriptor in the GDT or LDT (TI), or nil when its
  /// 8 bytes are beyond the table's limit (or the LDT is unusable).
  mutating func descriptorAddress(_ selector: UInt16) -> UInt64? {
    let offset = UInt64(selector & 0xfff8)
    if selector & 4 != 0 {
      if state.ldtr.unusable || offset | 7 > UInt64(state.ldtr.limit) { return nil }
      return state.ldtr.base &+ offset
    }
    if offset | 7 > UInt64(state.gdtr.limit) { return nil }
    return state.gdtr.base &+ offset
  }

  /// Reads a selector's descriptor; throws `error` when it lies beyond the table's limit.
  mutating func readDescriptor(_ selector: UInt16, else error: X86Exception) throws(X86Exception) -> (
    SegmentDescriptor, UInt64
  ) {
    guard let address = descriptorAddress(selector) else { throw error }
    return (SegmentDescriptor(raw: try systemRead(address, size: 8)), address)
  }

  /// Sets the accessed bit (type bit 0) of a code/data descriptor, as every segment load does
  /// (SDM Vol. 3, 3.4.5.1). A no-op when it is already set, so read-only tables keep working.
  mutating func setAccessed(_ descriptor: SegmentDescriptor, at address: UInt64) throws(X86Exception) {
    guard descriptor.isCodeOrData && descriptor.type & 1 == 0 else { return }
    try systemWrite(address &+ 5, size: 1, (descriptor.raw >> 40) & 0xff | 1)
  }

  /// Error code naming a selector: index and TI, RPL replaced by EXT (SDM Vol. 3, 6.13).
  @inline(__always) static func selectorError(_ selector: UInt16, ext: UInt32 = 0) -> UInt32 {
    UInt32(selector & 0xfffc) | ext
  }

  /// After CS changes: the decoder's mode follows CS.L/CS.D (and the cache is tagged by mode).
  mutating func codeSegmentChanged() {
    codeMode = state.codeMode
  }

  /// A stack-segment push or pop offset checked against SS's limit (expand-up or expand-down)
  /// for `size` bytes; outside 64-bit mode only. Throws `.stackFault(code)`.
  mutating func checkStackLimit(_ ss: SegmentRegister, _ offset: UInt64, size: UInt8, code: UInt32) throws(X86Exception)
  {
    if !ss.contains(offset, size: size) { throw .stackFault(code) }
  }

}

extension SegmentRegister {
  /// Whether [offset, offset + size) lies within the limit (SDM Vol. 3, 5.3): for an
  /// expand-down data segment the valid offsets run from limit + 1 to 0xFFFF or 0xFFFF_FFFF (B).
  @inline(__always)
  func contains(_ offset: UInt64, size: UInt8) -> Bool {
    let last = offset &+ UInt64(size) &- 1
    if isCodeOrData && type & 0xc == 0x4 {
      let upper: UInt64 = defaultBig ? 0xffff_ffff : 0xffff
      return offset > UInt64(limit) && last <= upper && last >= offset
    }
    return last <= UInt64(limit) && last >= offset
  }

  /// The null segment a data register holds after a null selector is loaded (SDM Vol. 3, 3.4.3).
  static func null(selector: UInt16, dpl: UInt8 = 0) -> SegmentRegister {
    SegmentRegister(selector: selector, limit: 0, type: 0, dpl: dpl, present: false, unusable: true)
  }
}
