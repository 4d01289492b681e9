/// A segment register's checks on data accesses outside 64-bit mode (SDM Vol. 3, 5.3 and
/// 5.4), worked out once per segment load instead of once per access: the base and, for reads
/// and for writes, the range of offsets an access may touch. An access of `size` bytes at
/// `offset` passes when offset ≥ first and offset + size - 1 ≤ last (without wrapping). A
/// type that forbids the access (a code segment for writes, an execute-only one for reads,
/// an unusable register for both, in protected mode only) gets the empty range first = 1,
/// last = 0. `checkSegmentAccess` (SegmentChecks.swift) uses these; `X86State` recomputes
/// them whenever `segments` or CR0 is written.
struct SegmentBounds: Sendable {
  var base: UInt64 = 0
  var readFirst: UInt64 = 0
  var readLast: UInt64 = 0xffff
  var writeFirst: UInt64 = 0
  var writeLast: UInt64 = 0xffff

  init() {}

  init(_ descriptor: SegmentRegister, protectedMode: Bool) {
    base = descriptor.base
    // The limit check (`SegmentRegister.contains`): for an expand-down data segment the valid
    // offsets run from limit + 1 to 0xFFFF or 0xFFFF_FFFF (B).
    let first: UInt64
    let last: UInt64
    if descriptor.isCodeOrData && descriptor.type & 0xc == 0x4 {
      first = UInt64(descriptor.limit) &+ 1
      last = descriptor.defaultBig ? 0xffff_ffff : 0xffff
    } else {
      first = 0
      last = UInt64(descriptor.limit)
    }
    readFirst = first
    readLast = last
    writeFirst = first
    writeLast = last
    // Types are checked only in protected mode; real mode keeps whatever the hidden part holds.
    guard protectedMode else { return }
    let isCode = descriptor.type & 8 != 0
    // Code segments are never writable; data segments only with W.
    let writable = !descriptor.unusable && !isCode && descriptor.type & 2 != 0
    // Execute-only code segments cannot be read.
    let readable = !descriptor.unusable && !(isCode && descriptor.type & 2 == 0)
    if !writable {
      writeFirst = 1
      writeLast = 0
    }
    if !readable {
      readFirst = 1
      readLast = 0
    }
  }
}
