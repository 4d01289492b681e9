/// The six segment registers, in the encoding order of the ModRM reg field (SDM Vol. 2, 3.1.1.3)
/// and of segment-override prefixes.
public enum SegmentName: UInt8, Sendable, CaseIterable {
  case es = 0
  case cs, ss, ds, fs, gs
}

/// A segment register with its hidden descriptor cache (SDM Vol. 3, 3.4.3 and 3.4.5).
///
/// Field names follow the descriptor, not KVM's struct, but each maps one-to-one onto KVM's
/// `Segment` (type, s, dpl, present, l, db, g, avl, unusable), so an engine can convert both ways.
public struct SegmentRegister: Sendable, Equatable {
  public var selector: UInt16
  public var base: UInt64
  /// The limit in bytes (already scaled by G), as the hidden part holds it.
  public var limit: UInt32
  /// Descriptor type, 4 bits (for code/data: bit 3 code, bit 1 writable/readable, bit 0 accessed).
  public var type: UInt8
  /// S: a code or data segment (true), or a system segment (false).
  public var isCodeOrData: Bool
  public var dpl: UInt8
  public var present: Bool
  /// L: a 64-bit code segment.
  public var longMode: Bool
  /// D/B: 32-bit default operand size (code) or 32-bit stack pointer (stack).
  public var defaultBig: Bool
  /// G: limit counted in 4 KiB pages (the limit above is already scaled).
  public var granularity: Bool
  public var available: Bool
  /// A null selector loaded into a data segment register (VMX's "unusable").
  public var unusable: Bool

  public init(
    selector: UInt16 = 0, base: UInt64 = 0, limit: UInt32 = 0xffff, type: UInt8 = 3, isCodeOrData: Bool = true,
    dpl: UInt8 = 0, present: Bool = true, longMode: Bool = false, defaultBig: Bool = false,
    granularity: Bool = false, available: Bool = false, unusable: Bool = false
  ) {
    self.selector = selector
    self.base = base
    self.limit = limit
    self.type = type
    self.isCodeOrData = isCodeOrData
    self.dpl = dpl
    self.present = present
    self.longMode = longMode
    self.defaultBig = defaultBig
    self.granularity = granularity
    self.available = available
    self.unusable = unusable
  }

  /// A flat 64-bit code segment (L=1, D=0), type execute/read, accessed.
  public static func flatCode64(selector: UInt16 = 0x08, dpl: UInt8 = 0) -> SegmentRegister {
    SegmentRegister(
      selector: selector, limit: 0xffff_ffff, type: 0xb, dpl: dpl, longMode: true, granularity: true)
  }

  /// A flat 4 GiB read/write data segment, accessed, D/B=1.
  public static func flatData(selector: UInt16 = 0x10, dpl: UInt8 = 0) -> SegmentRegister {
    SegmentRegister(selector: selector, limit: 0xffff_ffff, type: 0x3, dpl: dpl, defaultBig: true, granularity: true)
  }
}

/// GDTR or IDTR: a base and a 16-bit limit.
public struct DescriptorTableRegister: Sendable, Equatable {
  public var base: UInt64
  public var limit: UInt16

  public init(base: UInt64 = 0, limit: UInt16 = 0xffff) {
    self.base = base
    self.limit = limit
  }
}
