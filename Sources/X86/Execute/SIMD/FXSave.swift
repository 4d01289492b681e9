/// 0F AE (group 15): FXSAVE, FXRSTOR, LDMXCSR, STMXCSR, LFENCE, MFENCE, SFENCE, CLFLUSH.
///
/// The FXSAVE image (SDM Vol. 1, 10.5.1, tables 10-2 and 10-3): FCW, FSW, the abridged tag
/// word (one bit per physical register, 1 = valid), FOP, the last instruction and data
/// pointers (64-bit offsets with REX.W, else 32-bit offset + 16-bit selector, written as 0
/// since selectors are not tracked), MXCSR and MXCSR_MASK, ST0-ST7 in stack order (ST(i) =
/// physical register (TOP + i) mod 8) in 16-byte slots, then XMM0-15 (XMM0-7 outside 64-bit
/// mode). Bytes 464-511 are left alone, as the SDM reserves them for software.
///
/// `FloatingPointState.st` is indexed by physical register and `ftw` is the abridged tag
/// word, so the image is the state rotated by TOP (FSW bits 13:11).
extension X86Core {
  mutating func group15(_ d: DecodedInstruction, prefix: UInt16) throws(X86Exception) {
    let kind = d.reg & 7
    guard prefix == SSEPrefix.none else { throw .invalidOpcode }
    if !d.isMemory {
      // LFENCE/MFENCE/SFENCE: ordering only, and one interpreter thread is always ordered.
      guard kind >= 5 else { throw .invalidOpcode }
      return
    }
    switch kind {
    case 0, 1:
      // FXSAVE/FXRSTOR: #NM when CR0.TS or CR0.EM is set (SDM Vol. 2, FXSAVE "Protected
      // Mode Exceptions"); OSFXSR only decides whether XMM state is included, which this
      // model always does.
      if state.cr0 & (FPUControlBit.cr0TS | FPUControlBit.cr0EM) != 0 {
        throw X86Exception(vector: X86Exception.Vector.deviceNotAvailable)
      }
      let wide = d.immediate2 & SSEPrefix.rexW != 0
      if kind == 0 { try fxsave(d, wide: wide) } else { try fxrstor(d, wide: wide) }
    case 2, 3:
      try checkSSEAvailable()
      let offset = effectiveAddress(d)
      if kind == 2 {
        // LDMXCSR: a reserved bit set is #GP(0) (SDM Vol. 2, LDMXCSR).
        let value = UInt32(truncatingIfNeeded: try read(d.segment, offset, size: 4))
        if value & ~MXCSRBit.writable != 0 { throw .generalProtection(0) }
        state.fpu.mxcsr = value
      } else {
        try write(d.segment, offset, size: 4, UInt64(state.fpu.mxcsr))
      }
    case 7:
      // CLFLUSH: no cache to flush, but the address is checked like a read (SDM Vol. 2, CLFLUSH).
      _ = try translate(try linearAddress(d.segment, effectiveAddress(d)), .read)
    default:
      throw .invalidOpcode  // XSAVE (/4), XRSTOR (/5), XSAVEOPT (/6): not advertised
    }
  }

  /// The 512-byte area's linear address: 16-byte aligned or #GP(0), and (for a store) both
  /// pages writable before anything is written.
  mutating func fxsaveArea(_ d: DecodedInstruction, write: Bool) throws(X86Exception) -> UInt64 {
    let offset = effectiveAddress(d)
    let linear = try linearAddress(d.segment, offset)
    if linear & 15 != 0 {
      // With alignment checking on (CPL 3, CR0.AM, RFLAGS.AC) the SDM lets #AC replace #GP(0)
      // (Vol. 2, FXSAVE). The host CPU (AMD) raises #AC only for an address that is not even
      // 4-byte aligned, and #GP(0) for one that is 4- but not 16-byte aligned.
      try checkAlignment(linear, size: 4)
      throw .generalProtection(0)
    }
    _ = try linearAddress(d.segment, (offset &+ 511) & sizeMask(d.addressSize))
    _ = try translate(linear, write ? .write : .read)
    _ = try translate(linear &+ 511, write ? .write : .read)
    return offset
  }

  @inline(__always) var fpuTop: Int { mutating get { Int((state.fpu.fsw >> 11) & 7) } }

  mutating func fxsave(_ d: DecodedInstruction, wide: Bool) throws(X86Exception) {
    let base = try fxsaveArea(d, write: true)
    let mask = sizeMask(d.addressSize)
    let fpu = state.fpu
    let header =
      UInt64(fpu.fcw) | UInt64(fpu.fsw) << 16 | UInt64(fpu.ftw) << 32 | UInt64(fpu.lastOpcode) << 48
    try write(d.segment, base, size: 8, header)
    let instructionPointer = wide ? fpu.lastInstructionPointer : fpu.lastInstructionPointer & 0xffff_ffff
    let dataPointer = wide ? fpu.lastDataPointer : fpu.lastDataPointer & 0xffff_ffff
    try write(d.segment, (base &+ 8) & mask, size: 8, instructionPointer)
    try write(d.segment, (base &+ 16) & mask, size: 8, dataPointer)
    try write(d.segment, (base &+ 24) & mask, size: 8, UInt64(fpu.mxcsr) | UInt64(MXCSRBit.writable) << 32)
    let top = fpuTop
    for index in 0..<8 {
      let register = fpu.st[(top + index) & 7]
      let slot = (base &+ 32 &+ UInt64(index * 16)) & mask
      try write(d.segment, slot, size: 8, register.significand)
      try write(d.segment, (slot &+ 8) & mask, size: 8, UInt64(register.signExponent))
    }
    let count = codeMode == .bits64 ? 16 : 8
    for index in 0..<count {
      let slot = (base &+ 160 &+ UInt64(index * 16)) & mask
      try write(d.segment, slot, size: 8, UInt64(truncatingIfNeeded: fpu.xmm[index]))
      try write(d.segment, (slot &+ 8) & mask, size: 8, UInt64(truncatingIfNeeded: fpu.xmm[index] >> 64))
    }
  }

  mutating func fxrstor(_ d: DecodedInstruction, wide: Bool) throws(X86Exception) {
    let base = try fxsaveArea(d, write: false)
    let mask = sizeMask(d.addressSize)
    // Everything is read before anything changes, so a fault or a bad MXCSR leaves the state as it was.
    let mxcsr = UInt32(truncatingIfNeeded: try read(d.segment, (base &+ 24) & mask, size: 4))
    if mxcsr & ~MXCSRBit.writable != 0 { throw .generalProtection(0) }
    var fpu = state.fpu
    let header = try read(d.segment, base, size: 8)
    fpu.fcw = UInt16(truncatingIfNeeded: header)
    fpu.fsw = UInt16(truncatingIfNeeded: header >> 16)
    fpu.ftw = UInt8(truncatingIfNeeded: header >> 32)
    fpu.lastOpcode = UInt16(truncatingIfNeeded: header >> 48) & 0x7ff
    let instructionPointer = try read(d.segment, (base &+ 8) & mask, size: 8)
    let dataPointer = try read(d.segment, (base &+ 16) & mask, size: 8)
    fpu.lastInstructionPointer = wide ? instructionPointer : instructionPointer & 0xffff_ffff
    fpu.lastDataPointer = wide ? dataPointer : dataPointer & 0xffff_ffff
    fpu.mxcsr = mxcsr
    let top = Int((fpu.fsw >> 11) & 7)
    for index in 0..<8 {
      let slot = (base &+ 32 &+ UInt64(index * 16)) & mask
      let significand = try read(d.segment, slot, size: 8)
      let signExponent = UInt16(truncatingIfNeeded: try read(d.segment, (slot &+ 8) & mask, size: 2))
      fpu.st[(top + index) & 7] = X87Register(significand: significand, signExponent: signExponent)
    }
    let count = codeMode == .bits64 ? 16 : 8
    for index in 0..<count {
      let slot = (base &+ 160 &+ UInt64(index * 16)) & mask
      let low = try read(d.segment, slot, size: 8)
      let high = try read(d.segment, (slot &+ 8) & mask, size: 8)
      fpu.xmm[index] = UInt128(high) << 64 | UInt128(low)
    }
    state.fpu = fpu
  }
}
