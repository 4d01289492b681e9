import CKVM

/// A segment register with its hidden descriptor cache, as KVM exposes it.
public struct Segment: Sendable, Equatable {
  public var base: UInt64 = 0
  public var limit: UInt32 = 0xffff
  public var selector: UInt16 = 0
  /// Descriptor type field (bits 8-11 of the descriptor's high word).
  public var type: UInt8 = 0
  public var present = true
  public var privilegeLevel: UInt8 = 0
  /// D/B: 32-bit default operand size (code) or 32-bit stack (data).
  public var defaultSize32 = false
  /// S: a code or data segment, not a system one.
  public var isCodeOrData = true
  /// L: a 64-bit code segment.
  public var longMode = false
  /// G: limit counted in 4 KiB pages.
  public var granularity = false
  public var available = false
  public var unusable = false

  public init(
    base: UInt64 = 0, limit: UInt32 = 0xffff, selector: UInt16 = 0, type: UInt8 = 0, present: Bool = true,
    privilegeLevel: UInt8 = 0, defaultSize32: Bool = false, isCodeOrData: Bool = true, longMode: Bool = false,
    granularity: Bool = false, available: Bool = false, unusable: Bool = false
  ) {
    self.base = base
    self.limit = limit
    self.selector = selector
    self.type = type
    self.present = present
    self.privilegeLevel = privilegeLevel
    self.defaultSize32 = defaultSize32
    self.isCodeOrData = isCodeOrData
    self.longMode = longMode
    self.granularity = granularity
    self.available = available
    self.unusable = unusable
  }

  init(_ raw: kvm_segment) {
    base = raw.base
    limit = raw.limit
    selector = raw.selector
    type = raw.type
    present = raw.present != 0
    privilegeLevel = raw.dpl
    defaultSize32 = raw.db != 0
    isCodeOrData = raw.s != 0
    longMode = raw.l != 0
    granularity = raw.g != 0
    available = raw.avl != 0
    unusable = raw.unusable != 0
  }

  var raw: kvm_segment {
    kvm_segment(
      base: base, limit: limit, selector: selector, type: type, present: present ? 1 : 0, dpl: privilegeLevel,
      db: defaultSize32 ? 1 : 0, s: isCodeOrData ? 1 : 0, l: longMode ? 1 : 0, g: granularity ? 1 : 0,
      avl: available ? 1 : 0, unusable: unusable ? 1 : 0, padding: 0)
  }
}

/// GDTR or IDTR.
public struct DescriptorTable: Sendable, Equatable {
  public var base: UInt64
  public var limit: UInt16

  public init(base: UInt64 = 0, limit: UInt16 = 0xffff) {
    self.base = base
    self.limit = limit
  }
}

/// Segment, control and descriptor-table registers of one vCPU (KVM_GET_SREGS).
public struct SpecialRegisters: Sendable, Equatable {
  public var cs = Segment(), ds = Segment(), es = Segment(), fs = Segment(), gs = Segment(), ss = Segment()
  public var tr = Segment(), ldt = Segment()
  public var gdt = DescriptorTable(), idt = DescriptorTable()
  public var cr0: UInt64 = 0, cr2: UInt64 = 0, cr3: UInt64 = 0, cr4: UInt64 = 0, cr8: UInt64 = 0
  public var efer: UInt64 = 0
  public var apicBase: UInt64 = 0
  /// Pending external interrupt bitmap (only meaningful without an in-kernel irqchip).
  var interruptBitmap: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

  public init() {}

  init(_ raw: kvm_sregs) {
    cs = Segment(raw.cs)
    ds = Segment(raw.ds)
    es = Segment(raw.es)
    fs = Segment(raw.fs)
    gs = Segment(raw.gs)
    ss = Segment(raw.ss)
    tr = Segment(raw.tr)
    ldt = Segment(raw.ldt)
    gdt = DescriptorTable(base: raw.gdt.base, limit: raw.gdt.limit)
    idt = DescriptorTable(base: raw.idt.base, limit: raw.idt.limit)
    cr0 = raw.cr0
    cr2 = raw.cr2
    cr3 = raw.cr3
    cr4 = raw.cr4
    cr8 = raw.cr8
    efer = raw.efer
    apicBase = raw.apic_base
    interruptBitmap = raw.interrupt_bitmap
  }

  var raw: kvm_sregs {
    var raw = kvm_sregs()
    raw.cs = cs.raw
    raw.ds = ds.raw
    raw.es = es.raw
    raw.fs = fs.raw
    raw.gs = gs.raw
    raw.ss = ss.raw
    raw.tr = tr.raw
    raw.ldt = ldt.raw
    raw.gdt.base = gdt.base
    raw.gdt.limit = gdt.limit
    raw.idt.base = idt.base
    raw.idt.limit = idt.limit
    raw.cr0 = cr0
    raw.cr2 = cr2
    raw.cr3 = cr3
    raw.cr4 = cr4
    raw.cr8 = cr8
    raw.efer = efer
    raw.apic_base = apicBase
    raw.interrupt_bitmap = interruptBitmap
    return raw
  }

  public static func == (lhs: SpecialRegisters, rhs: SpecialRegisters) -> Bool {
    lhs.cs == rhs.cs && lhs.ds == rhs.ds && lhs.es == rhs.es && lhs.fs == rhs.fs && lhs.gs == rhs.gs
      && lhs.ss == rhs.ss && lhs.tr == rhs.tr && lhs.ldt == rhs.ldt && lhs.gdt == rhs.gdt && lhs.idt == rhs.idt
      && lhs.cr0 == rhs.cr0 && lhs.cr2 == rhs.cr2 && lhs.cr3 == rhs.cr3 && lhs.cr4 == rhs.cr4 && lhs.cr8 == rhs.cr8
      && lhs.efer == rhs.efer && lhs.apicBase == rhs.apicBase
  }
}
