import GuestMemory
import Testing

@testable import X86

/// Descriptors, gates and tables for the protection tests, encoded per SDM Vol. 3, figures
/// 3-8 (segment descriptor), 6-2 (IDT gates), 6-8 (64-bit gates) and 7-11 (64-bit TSS).
enum Desc {
  /// A segment descriptor from its fields (limit is the raw 20-bit field).
  static func segment(
    base: UInt64 = 0, limit: UInt64 = 0xfffff, type: UInt64, s: Bool = true, dpl: UInt64 = 0, present: Bool = true,
    l: Bool = false, db: Bool = false, g: Bool = true
  ) -> UInt64 {
    var raw = limit & 0xffff | (base & 0xff_ffff) << 16 | (type & 0xf) << 40 | dpl << 45
    raw |= (limit >> 16 & 0xf) << 48 | (base >> 24 & 0xff) << 56
    if s { raw |= 1 << 44 }
    if present { raw |= 1 << 47 }
    if l { raw |= 1 << 53 }
    if db { raw |= 1 << 54 }
    if g { raw |= 1 << 55 }
    return raw
  }
  static func code64(dpl: UInt64 = 0) -> UInt64 { segment(type: 0xa, dpl: dpl, l: true) }
  static func code32(dpl: UInt64 = 0, conforming: Bool = false) -> UInt64 {
    segment(type: conforming ? 0xe : 0xa, dpl: dpl, db: true)
  }
  static func data32(dpl: UInt64 = 0) -> UInt64 { segment(type: 0x2, dpl: dpl, db: true) }
  /// A 32-bit (or 16-bit) interrupt (type 14/6) or trap (15/7) gate.
  static func gate32(offset: UInt64, selector: UInt64, type: UInt64 = 0xe, dpl: UInt64 = 0, present: Bool = true)
    -> UInt64
  {
    offset & 0xffff | selector << 16 | type << 40 | dpl << 45 | (present ? 1 << 47 : 0) | (offset >> 16 & 0xffff) << 48
  }
  /// A 64-bit gate: two quadwords.
  static func gate64(offset: UInt64, selector: UInt64 = 0x08, type: UInt64 = 0xe, dpl: UInt64 = 0, ist: UInt64 = 0)
    -> (UInt64, UInt64)
  {
    (gate32(offset: offset, selector: selector, type: type, dpl: dpl) | ist << 32, offset >> 32)
  }
}

/// Where the protection tests put their tables (inside the sandbox's identity-mapped GiB).
enum SysLayout {
  static let gdt: UInt64 = 0x8000
  static let idt: UInt64 = 0x9000
  static let tss: UInt64 = 0xa000
  static let handler: UInt64 = 0x11_0000
  static let kernelStack: UInt64 = 0x40_0000
  static let istStack: UInt64 = 0x50_0000
}

/// Selectors of the 64-bit test GDT.
enum Sel {
  static let kernelCode: UInt16 = 0x08, kernelData: UInt16 = 0x10, userCode32: UInt16 = 0x18
  static let userData: UInt16 = 0x20, userCode64: UInt16 = 0x28, tss: UInt16 = 0x30
  static let kernelCode32: UInt16 = 0x40, kernelData16: UInt16 = 0x48, userData2: UInt16 = 0x50
}

extension X86Sandbox {
  /// A 64-bit GDT (see `Sel`), a 256-entry IDT of 64-bit interrupt gates to
  /// `SysLayout.handler + 16·vector` (vectors 0x80 and 3 with DPL 3), and a 64-bit TSS with
  /// RSP0 = kernelStack and IST1 = istStack. The CPU runs with them loaded.
  func installLongModeTables() throws {
    let entries: [UInt64] = [
      0, Desc.code64(), Desc.data32(), Desc.code32(dpl: 3), Desc.data32(dpl: 3), Desc.code64(dpl: 3),
      Desc.segment(base: SysLayout.tss, limit: 0x67, type: 9, s: false, g: false), 0,
      Desc.code32(), Desc.segment(type: 2, db: false), Desc.data32(dpl: 3),
    ]
    for (index, entry) in entries.enumerated() { try store64(entry, SysLayout.gdt + UInt64(index) * 8) }
    for vector in 0..<UInt64(256) {
      let dpl: UInt64 = vector == 0x80 || vector == 3 ? 3 : 0
      let (low, high) = Desc.gate64(offset: SysLayout.handler + vector * 16, dpl: dpl)
      try store64(low, SysLayout.idt + vector * 16)
      try store64(high, SysLayout.idt + vector * 16 + 8)
    }
    try store64(SysLayout.kernelStack, SysLayout.tss + 4)  // RSP0
    try store64(SysLayout.istStack, SysLayout.tss + 0x24)  // IST1
    var state = cpu.state
    state.gdtr = DescriptorTableRegister(base: SysLayout.gdt, limit: UInt16(entries.count * 8 - 1))
    state.idtr = DescriptorTableRegister(base: SysLayout.idt, limit: 256 * 16 - 1)
    state.tr = SegmentRegister(selector: Sel.tss, base: SysLayout.tss, limit: 0x67, type: 11, isCodeOrData: false)
    state[.cs] = .flatCode64(selector: Sel.kernelCode)
    state[.ss] = .flatData(selector: Sel.kernelData)
    cpu.state = state
    cpu.deliversExceptions = true
  }

  /// Switches to 64-bit user mode (CPL 3) with the user selectors.
  func enterUserMode64() {
    var state = cpu.state
    state[.cs] = .flatCode64(selector: Sel.userCode64 | 3, dpl: 3)
    state[.ss] = .flatData(selector: Sel.userData | 3, dpl: 3)
    cpu.state = state
  }

  /// The quadwords at RSP upwards.
  func stackQuads(_ count: Int) throws -> [UInt64] {
    try (0..<count).map { try load64(cpu.state[.rsp] + UInt64($0) * 8) }
  }

  func stackDwords(_ count: Int) throws -> [UInt32] {
    let base = cpu.state[.ss].base + (cpu.state[.rsp] & 0xffff_ffff)
    return try (0..<count).map { try load32(base + UInt64($0) * 4) }
  }

  func stackWords(_ count: Int) throws -> [UInt16] {
    let mask: UInt64 = cpu.state[.ss].defaultBig ? 0xffff_ffff : 0xffff
    let base = cpu.state[.ss].base + (cpu.state[.rsp] & mask)
    return try (0..<count).map { try load16(base + UInt64($0) * 2) }
  }
}
