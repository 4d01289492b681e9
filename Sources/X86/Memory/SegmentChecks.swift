/// Segment limit and type checks on data accesses and instruction fetches outside 64-bit
/// mode (SDM Vol. 3, 5.3 and 5.4). A violation is #GP(0), or #SS(0) for a stack reference
/// (through SS, explicitly or by default).
extension X86Core {
  /// Inlined into every data access outside 64-bit mode (it was the largest out-of-line
  /// callee of the 32-bit loads and stores in the profiles).
  @inline(__always)
  mutating func checkSegmentAccess(_ segment: UInt8, _ offset: UInt64, size: UInt8, _ kind: AccessKind)
    throws(X86Exception)
  {
    let descriptor = state.segments[Int(segment)]
    let fault: X86Exception = segment == SegmentName.ss.rawValue ? .stackFault(0) : .generalProtection(0)
    // Types are checked only in protected mode; real mode keeps whatever the hidden part holds.
    if state.cr0 & ControlBit.cr0PE != 0 {
      if descriptor.unusable { throw fault }
      let isCode = descriptor.type & 8 != 0
      switch kind {
      // Code segments are never writable; data segments only with W.
      case .write: if isCode || descriptor.type & 2 == 0 { throw fault }
      // Execute-only code segments cannot be read.
      default: if isCode && descriptor.type & 2 == 0 { throw fault }
      }
    }
    if !descriptor.contains(offset, size: size) { throw fault }
  }

  /// The whole instruction must lie within CS's limit (SDM Vol. 3, 5.3): #GP(0) otherwise.
  @inline(__always)
  mutating func checkFetchLimit(_ start: UInt64, _ d: DecodedInstruction) throws(X86Exception) {
    if !state.segments[Int(SegmentName.cs.rawValue)].contains(start, size: d.length) {
      throw .generalProtection(0)
    }
  }
}
