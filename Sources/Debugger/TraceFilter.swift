import KVM

/// Which stops a trace keeps: an address range, an address space (CR3), a privilege ring.
/// Stepping still covers everything; the filter only decides what is written.
public struct TraceFilter: Sendable, Equatable {
  public enum Ring: String, Sendable, CaseIterable {
    case kernel
    case user
  }

  public var range: ClosedRange<UInt64>?
  public var cr3: UInt64?
  public var ring: Ring?

  public init(range: ClosedRange<UInt64>? = nil, cr3: UInt64? = nil, ring: Ring? = nil) {
    self.range = range
    self.cr3 = cr3
    self.ring = ring
  }

  public var isEmpty: Bool { range == nil && cr3 == nil && ring == nil }

  /// "START-END" (inclusive), hex with 0x or decimal; START must not be above END.
  public static func parseRange(_ text: String) throws(DebuggerError) -> ClosedRange<UInt64> {
    let parts = text.split(separator: "-", maxSplits: 1).map(String.init)
    guard parts.count == 2, let start = parseNumber(parts[0]), let end = parseNumber(parts[1]) else {
      throw DebuggerError("range '\(text)' is not START-END")
    }
    guard start <= end else { throw DebuggerError("range '\(text)' is inverted: its start is above its end") }
    return start...end
  }

  /// A CR3 value to match: the page-aligned base of a top-level page table.
  public static func parseCR3(_ text: String) throws(DebuggerError) -> UInt64 {
    guard let value = parseNumber(text) else { throw DebuggerError("CR3 '\(text)' is not a number") }
    guard value & 0xfff == 0 else {
      throw DebuggerError("CR3 0x\(String(value, radix: 16)) is not page-aligned (its low 12 bits must be zero)")
    }
    return value
  }

  static func parseNumber(_ text: String) -> UInt64? {
    let lower = text.lowercased()
    return lower.hasPrefix("0x") ? UInt64(lower.dropFirst(2), radix: 16) : UInt64(lower)
  }

  /// Whether a stop at `pc` with these segment and control registers is kept.
  public func keeps(pc: UInt64, special: SpecialRegisters) -> Bool {
    if let range, !range.contains(pc) { return false }
    if let cr3, special.cr3 & ~0xfff & 0x000f_ffff_ffff_ffff != cr3 { return false }
    if let ring {
      let cpl = special.cs.selector & 3
      if ring == .kernel && cpl != 0 { return false }
      if ring == .user && cpl != 3 { return false }
    }
    return true
  }
}
