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

  /// "START-END" (inclusive), hex with 0x or decimal; START must not be above END. An error
  /// says what is wrong with the text, for the caller to put after it.
  public static func parseRange(_ text: String) throws(DebuggerError) -> ClosedRange<UInt64> {
    let parts = text.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
    guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
      throw DebuggerError("not START-END (try 0x100000-0x1fffff)")
    }
    let start = try number(parts[0], "the start")
    let end = try number(parts[1], "the end")
    guard start <= end else { throw DebuggerError("inverted: its start is above its end") }
    return start...end
  }

  /// The highest CR3 base: bits 51:12 of CR3 hold the table's physical address.
  public static let maximumCR3: UInt64 = 0x000f_ffff_ffff_f000

  /// A CR3 value to match: the page-aligned base of a top-level page table.
  public static func parseCR3(_ text: String) throws(DebuggerError) -> UInt64 {
    let value = try number(text)
    guard value & 0xfff == 0 else {
      throw DebuggerError("not page-aligned (its low 12 bits must be zero)")
    }
    guard value <= maximumCR3 else {
      // `keeps` compares bits 51:12 only, so such a filter would silently keep nothing.
      throw DebuggerError("above the 52-bit physical address space, so no CR3 can hold it")
    }
    return value
  }

  /// `text` as a number, or an error saying what it is instead; `part` names which number of
  /// several it is ("the end"), nil when it is the whole value.
  static func number(_ text: String, _ part: String? = nil) throws(DebuggerError) -> UInt64 {
    if let value = parseNumber(text) { return value }
    let unsigned = text.lowercased().trimmingPrefix("-")
    let hex = unsigned.hasPrefix("0x")
    let digits = unsigned.dropFirst(hex ? 2 : 0)
    let numeral = !digits.isEmpty && digits.allSatisfy { $0.isASCII && (hex ? $0.isHexDigit : $0.isNumber) }
    let subject = part.map { "\($0) \(text) " } ?? ""
    if numeral && text.hasPrefix("-") { throw DebuggerError(subject + "must not be negative") }
    if numeral {
      throw DebuggerError(subject + (part == nil ? "at most 0xffffffffffffffff (64 bits)" : "is more than 64 bits"))
    }
    throw DebuggerError(part.map { "\($0) '\(text)' is not a number" } ?? "not a number")
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
