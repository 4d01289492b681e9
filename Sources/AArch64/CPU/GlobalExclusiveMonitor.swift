/// The global exclusive monitor shared by the vCPUs of one machine (ARM ARM B2.9.3): a
/// load-exclusive marks its reservation granule for its CPU, and a store by any other CPU
/// into that granule clears the mark, so a store-exclusive after another CPU's store fails.
/// A store-exclusive must pass both this and its CPU's local monitor.
///
/// The granule is CTR_EL0.ERG's: 2^4 words, 64 bytes. Stores check `activeMarks` first, so a
/// machine whose guest uses no exclusives pays one load and compare per store.
public final class GlobalExclusiveMonitor {
  static let granuleMask: UInt64 = ~63
  static let none = UInt64.max
  /// Each CPU's marked granule (its physical address), or `none`.
  var marks: [UInt64]
  private(set) var activeMarks = 0

  public init(cpuCount: Int) {
    marks = Array(repeating: Self.none, count: cpuCount)
  }

  func mark(_ cpu: Int, _ physical: UInt64) {
    if marks[cpu] == Self.none { activeMarks += 1 }
    marks[cpu] = physical & Self.granuleMask
  }

  func holds(_ cpu: Int, _ physical: UInt64) -> Bool { marks[cpu] == physical & Self.granuleMask }

  func clear(_ cpu: Int) {
    if marks[cpu] != Self.none { activeMarks -= 1 }
    marks[cpu] = Self.none
  }

  /// A store of `size` bytes at `physical` by `cpu`: other CPUs' marks on the granules it
  /// touches are cleared.
  @inline(__always)
  func stored(by cpu: Int, _ physical: UInt64, size: Int) {
    guard activeMarks != 0 else { return }
    let first = physical & Self.granuleMask
    let last = (physical &+ UInt64(size) &- 1) & Self.granuleMask
    for other in marks.indices where other != cpu && (marks[other] == first || marks[other] == last) {
      clear(other)
    }
  }
}
