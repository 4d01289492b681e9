import GuestMemory
import KVM

/// GDT and LDT descriptors read from guest memory through the guest's page tables, for the
/// debugger's views of the guest (the base of a handler's code segment outside 64-bit mode).
/// Events themselves are delivered by the interpreter (Engine/KVMAssist.swift), never here.
public enum SegmentDescriptors {
  public struct Failure: Error, Equatable, CustomStringConvertible {
    public let reason: String
    public var description: String { reason }
  }

  /// The hidden-cache form of a GDT (or LDT) descriptor.
  public static func descriptor(_ selector: UInt16, special: SpecialRegisters, walker: PageWalker) throws -> Segment {
    let table = selector & 4 != 0 ? special.ldt : Segment(base: special.gdt.base, limit: UInt32(special.gdt.limit))
    let index = UInt64(selector & ~7)
    guard index != 0 || selector & 4 != 0, index + 7 <= UInt64(table.limit) else {
      throw Failure(reason: "selector 0x\(String(selector, radix: 16)) is outside its descriptor table")
    }
    let raw = try readUInt64(walker, table.base + index)
    let limit = UInt32((raw & 0xffff) | ((raw >> 32) & 0xf_0000))
    let granular = raw & (1 << 55) != 0
    return Segment(
      base: ((raw >> 16) & 0xff_ffff) | ((raw >> 32) & 0xff00_0000), limit: granular ? (limit << 12) | 0xfff : limit,
      selector: selector, type: UInt8((raw >> 40) & 0xf), present: raw & (1 << 47) != 0,
      privilegeLevel: UInt8((raw >> 45) & 3), defaultSize32: raw & (1 << 54) != 0, isCodeOrData: raw & (1 << 44) != 0,
      longMode: raw & (1 << 53) != 0, granularity: granular, available: raw & (1 << 52) != 0)
  }

  static func readUInt64(_ walker: PageWalker, _ linear: UInt64) throws -> UInt64 {
    try walker.read(linear: linear, count: 8).enumerated().reduce(0) {
      $0 | UInt64($1.element) << (8 * UInt64($1.offset))
    }
  }
}
