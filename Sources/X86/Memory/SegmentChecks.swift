/// Segment limit and type checks on data accesses and instruction fetches outside 64-bit
/// mode (SDM Vol. 3, 5.3 and 5.4). A violation is #GP(0), or #SS(0) for a stack reference
/// (through SS, explicitly or by default).
extension X86Core {
  /// Inlined into every data access outside 64-bit mode (it was the largest out-of-line
  /// callee of the 32-bit loads and stores in the profiles). The type and limit checks are
  /// precomputed per segment load (SegmentBounds.swift): two comparisons per access.
  @inline(__always)
  mutating func checkSegmentAccess(_ segment: UInt8, _ offset: UInt64, size: UInt8, _ kind: AccessKind)
    throws(X86Exception)
  {
    let bounds = state.segmentBounds[Int(segment)]
    let first = kind == .write ? bounds.writeFirst : bounds.readFirst
    let last = kind == .write ? bounds.writeLast : bounds.readLast
    let end = offset &+ UInt64(size) &- 1
    if offset < first || end > last || end < offset {
      throw segment == SegmentName.ss.rawValue ? .stackFault(0) : .generalProtection(0)
    }
  }

  /// The whole instruction must lie within CS's limit (SDM Vol. 3, 5.3): #GP(0) otherwise.
  @inline(__always)
  mutating func checkFetchLimit(_ start: UInt64, _ d: DecodedInstruction) throws(X86Exception) {
    if !state.segments[Int(SegmentName.cs.rawValue)].contains(start, size: d.length) {
      throw .generalProtection(0)
    }
  }
}
