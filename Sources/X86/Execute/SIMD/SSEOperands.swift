/// The mandatory-prefix field the decoder leaves in `DecodedInstruction.immediate2` for `.sse`.
enum SSEPrefix {
  static let none: UInt16 = 0
  static let p66: UInt16 = 1
  static let f3: UInt16 = 2
  static let f2: UInt16 = 3
  static let mask: UInt16 = 3
  /// REX.W (MOVD/MOVQ and the conversions to and from general registers widen to 64 bits).
  static let rexW: UInt16 = 4
}

/// MXCSR bits (SDM Vol. 1, 10.2.3).
enum MXCSRBit {
  static let invalid: UInt32 = 1 << 0
  static let denormal: UInt32 = 1 << 1
  static let divideByZero: UInt32 = 1 << 2
  static let overflow: UInt32 = 1 << 3
  static let underflow: UInt32 = 1 << 4
  static let precision: UInt32 = 1 << 5
  static let flags: UInt32 = 0x3f
  static let denormalsAreZero: UInt32 = 1 << 6
  /// The six masks sit 7 bits above their flags.
  static let maskShift: UInt32 = 7
  static let roundingShift: UInt32 = 13
  static let flushToZero: UInt32 = 1 << 15
  /// What LDMXCSR and FXRSTOR accept (MXCSR_MASK in the FXSAVE image): bits 0-15, DAZ included.
  static let writable: UInt32 = 0xffff
}

/// CR0 and CR4 bits that gate x87 and SSE (SDM Vol. 3, 2.5 and table 2-2).
enum FPUControlBit {
  static let cr0MP: UInt64 = 1 << 1
  static let cr0EM: UInt64 = 1 << 2
  static let cr0TS: UInt64 = 1 << 3
  static let cr0NE: UInt64 = 1 << 5
  static let cr4OSFXSR: UInt64 = 1 << 9
  static let cr4OSXMMEXCPT: UInt64 = 1 << 10
}

extension X86Exception.Vector {
  static let deviceNotAvailable: UInt8 = 7
  static let x87FloatingPoint: UInt8 = 16
  static let simdFloatingPoint: UInt8 = 19
}

/// XMM register and memory operands, and the checks every SSE instruction makes first.
extension X86Core {
  /// SDM Vol. 3, table 2-2 and 13.1: SSE instructions are #UD with CR0.EM set or CR4.OSFXSR
  /// clear, then #NM with CR0.TS set.
  @inline(__always)
  mutating func checkSSEAvailable() throws(X86Exception) {
    if state.cr0 & FPUControlBit.cr0EM != 0 || state.cr4 & FPUControlBit.cr4OSFXSR == 0 { throw .invalidOpcode }
    if state.cr0 & FPUControlBit.cr0TS != 0 { throw X86Exception(vector: X86Exception.Vector.deviceNotAvailable) }
  }

  @inline(__always) mutating func xmm(_ index: UInt8) -> UInt128 { state.fpu.xmm[Int(index & 15)] }
  @inline(__always) mutating func setXMM(_ index: UInt8, _ value: UInt128) { state.fpu.xmm[Int(index & 15)] = value }

  /// The 16-byte memory operand at `offset`. `aligned`: legacy-SSE m128 operands other than
  /// the explicitly unaligned moves must be 16-byte aligned, else #GP(0) (SDM Vol. 1, 11.4.1),
  /// checked on the linear address before paging.
  mutating func readVector(_ d: DecodedInstruction, offset: UInt64, aligned: Bool) throws(X86Exception) -> UInt128 {
    try checkVectorAlignment(d, offset: offset, aligned: aligned)
    let linear = try linearAddress(d.segment, offset)
    // #AC sees one 16-byte operand (the unaligned forms at CPL 3 with CR0.AM and RFLAGS.AC).
    try checkAlignment(linear, size: 16)
    let high = (offset &+ 8) & sizeMask(d.addressSize)
    // Both halves translate (and may fault) before the value is used; reads change nothing.
    let lowPart = try readLinear(linear, size: 8, .read)
    let highPart = try readLinear(try linearAddress(d.segment, high), size: 8, .read)
    return UInt128(highPart) << 64 | UInt128(lowPart)
  }

  mutating func writeVector(_ d: DecodedInstruction, offset: UInt64, aligned: Bool, _ value: UInt128)
    throws(X86Exception)
  {
    try checkVectorAlignment(d, offset: offset, aligned: aligned)
    let linear = try linearAddress(d.segment, offset)
    let highLinear = try linearAddress(d.segment, (offset &+ 8) & sizeMask(d.addressSize))
    try checkAlignment(linear, size: 16)
    // Both pages must be writable before either half is written, so a fault stores nothing;
    // a fault on the second page names its first byte, as the hardware's CR2 does.
    _ = try translate(linear, .write)
    if linear & 0xfff > 0xff0 { _ = try translate((linear | 0xfff) &+ 1, .write) }
    try writeLinear(linear, size: 8, UInt64(truncatingIfNeeded: value))
    try writeLinear(highLinear, size: 8, UInt64(truncatingIfNeeded: value >> 64))
  }

  /// The alignment #GP(0) of the aligned forms comes before the canonical check of the
  /// address (#GP or #SS): a misaligned non-canonical stack reference is #GP(0) on the host.
  @inline(__always)
  mutating func checkVectorAlignment(_ d: DecodedInstruction, offset: UInt64, aligned: Bool) throws(X86Exception) {
    guard aligned else { return }
    let base = codeMode != .bits64 || d.segment >= SegmentName.fs.rawValue ? state.segments[Int(d.segment)].base : 0
    if (offset &+ base) & 15 != 0 { throw .generalProtection(0) }
  }

  /// The xmm/m128 source operand.
  @inline(__always)
  mutating func vectorSource(_ d: DecodedInstruction, aligned: Bool = true) throws(X86Exception) -> UInt128 {
    if d.isMemory { return try readVector(d, offset: effectiveAddress(d), aligned: aligned) }
    return xmm(d.rm)
  }

  /// The xmm/m32 or xmm/m64 scalar source operand (a register gives its low lane).
  @inline(__always)
  mutating func scalarSource(_ d: DecodedInstruction, size: UInt8) throws(X86Exception) -> UInt64 {
    if d.isMemory { return try read(d.segment, effectiveAddress(d), size: size) }
    return UInt64(truncatingIfNeeded: xmm(d.rm)) & sizeMask(size)
  }
}

/// Lane access on a 128-bit vector.
@inline(__always) func lane(_ v: UInt128, _ index: Int, width: Int) -> UInt64 {
  UInt64(truncatingIfNeeded: v >> (index * width)) & (width == 64 ? ~0 : (1 << UInt64(width)) - 1)
}

@inline(__always) func withLane(_ v: UInt128, _ index: Int, width: Int, _ value: UInt64) -> UInt128 {
  let mask: UInt128 = width == 64 ? UInt128(UInt64.max) : (UInt128(1) << width) - 1
  return v & ~(mask << (index * width)) | (UInt128(value) & mask) << (index * width)
}
