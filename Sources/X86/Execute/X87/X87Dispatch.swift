/// The x87 escape opcodes D8-DF and FWAIT (SDM Vol. 2, appendix A.4, tables ).
///
/// Order of checks (SDM Vol. 3, table 2-2 and 8.6): CR0.EM or CR0.TS is #NM (FWAIT only
/// with MP and TS); then, for waiting instructions, a pending unmasked exception (FSW.ES) is
/// #MF (vector 16; with CR0.NE clear real hardware signals FERR# to the interrupt controller
/// instead, which is not modelled, so #MF is raised either way).
extension X86Core {
  mutating func x87(_ d: DecodedInstruction) throws(X86Exception) {
    let cr0 = state.cr0
    if d.sub == 0xff {
      if cr0 & FPUControlBit.cr0MP != 0 && cr0 & FPUControlBit.cr0TS != 0 {
        throw X86Exception(vector: X86Exception.Vector.deviceNotAvailable)
      }
      return try checkPendingX87()
    }
    if cr0 & (FPUControlBit.cr0EM | FPUControlBit.cr0TS) != 0 {
      throw X86Exception(vector: X86Exception.Vector.deviceNotAvailable)
    }
    let escape = d.sub >> 3
    let kind = d.sub & 7
    if d.isMemory {
      if !isNonWaitingControl(escape, kind, memory: true) { try checkPendingX87() }
      try x87Memory(d, escape: escape, kind: kind)
    } else {
      let index = Int(d.rm & 7)
      if !isNonWaitingControl(escape, kind, memory: false) { try checkPendingX87() }
      try x87Register(d, escape: escape, kind: kind, index: index)
    }
  }

  mutating func checkPendingX87() throws(X86Exception) {
    if state.fpu.fsw & FSWBit.errorSummary != 0 { throw X86Exception(vector: X86Exception.Vector.x87FloatingPoint) }
  }

  /// FNSTENV, FNSTCW, FNSAVE, FNSTSW, FNCLEX, FNINIT: the no-wait forms that skip the #MF check.
  func isNonWaitingControl(_ escape: UInt8, _ kind: UInt8, memory: Bool) -> Bool {
    if memory { return (escape == 1 && (kind == 6 || kind == 7)) || (escape == 5 && (kind == 6 || kind == 7)) }
    return (escape == 7 && kind == 4) || (escape == 3 && kind == 4)
  }

  /// FOP, FIP and FDP as of the last non-control instruction (SDM Vol. 1, 8.1.8-8.1.9).
  mutating func recordX87Pointers(_ d: DecodedInstruction) {
    state.fpu.lastOpcode = UInt16(d.sub >> 3) << 8 | UInt16(d.immediate & 0xff)
    state.fpu.lastInstructionPointer = state.rip &- UInt64(d.length)
    state.fpu.lastDataPointer = d.isMemory ? effectiveAddress(d) : 0
  }

  // MARK: Memory forms

  mutating func x87Memory(_ d: DecodedInstruction, escape: UInt8, kind: UInt8) throws(X86Exception) {
    let offset = effectiveAddress(d)
    switch (escape, kind) {
    // Arithmetic with a memory operand: D8 m32fp, DC m64fp, DA m32int, DE m16int.
    case (0, _), (2, _), (4, _), (6, _):
      let operand: Float80
      var flags = FloatFlags()
      switch escape {
      case 0: operand = loadSingle(try read(d.segment, offset, size: 4), &flags)
      case 4: operand = loadDouble(try read(d.segment, offset, size: 8), &flags)
      case 2: operand = Float80(Int32(truncatingIfNeeded: try read(d.segment, offset, size: 4)))
      default: operand = Float80(Int16(truncatingIfNeeded: try read(d.segment, offset, size: 2)))
      }
      recordX87Pointers(d)
      x87Binary(kind, destination: 0, source: nil, sourceValue: operand, flags: flags, popAfter: false)
    case (1, 0), (5, 0), (3, 5):
      // FLD m32fp / m64fp / m80fp.
      var flags = FloatFlags()
      let value: Float80
      switch escape {
      case 1: value = loadSingle(try read(d.segment, offset, size: 4), &flags)
      case 5: value = loadDouble(try read(d.segment, offset, size: 8), &flags)
      default:
        // m80 is loaded as it is, unsupported formats included (no exception).
        let low = try read(d.segment, offset, size: 8)
        let high = try read(d.segment, (offset &+ 8) & sizeMask(d.addressSize), size: 2)
        let raw = X87Register(significand: low, signExponent: UInt16(truncatingIfNeeded: high))
        recordX87Pointers(d)
        let overflow = state.fpu.ftw & (1 << UInt8((x87Top + 7) & 7)) != 0
        if x87Push(0) && !overflow { state.fpu.st[x87Physical(0)] = raw }
        return
      }
      recordX87Pointers(d)
      // A stack overflow (IE) hides a denormal source.
      if state.fpu.ftw & (1 << UInt8((x87Top + 7) & 7)) != 0 { flags.pre &= ~MXCSRBit.denormal }
      if commitX87Flags(flags) { x87Push(value) }
    case (7, 0), (3, 0), (7, 5):
      // FILD m16int / m32int / m64int: exact.
      let size: UInt8 = escape == 7 ? (kind == 0 ? 2 : 8) : 4
      let value = Float80(Int64(bitPattern: signExtend(try read(d.segment, offset, size: size), size: size)))
      recordX87Pointers(d)
      x87Push(value)
    case (1, 2), (1, 3), (5, 2), (5, 3), (3, 7):
      // FST/FSTP m32fp, m64fp; FSTP m80fp.
      recordX87Pointers(d)
      try storeReal(d, offset: offset, size: escape == 1 ? 4 : (escape == 5 ? 8 : 10), pop: kind != 2)
    case (7, 2), (7, 3), (3, 2), (3, 3), (7, 7):
      // FIST/FISTP m16int, m32int; FISTP m64int.
      recordX87Pointers(d)
      let size: UInt8 = escape == 7 ? (kind == 7 ? 8 : 2) : 4
      try storeInteger(d, offset: offset, size: size, pop: kind != 2)
    case (1, 5):
      // FLDCW: bit 6 reads as 1, bits 7 and 13-15 as 0 on the processors we know.
      state.fpu.fcw = UInt16(truncatingIfNeeded: try read(d.segment, offset, size: 2)) & 0x1f3f | 0x40
      updateErrorSummary()
    case (1, 7): try write(d.segment, offset, size: 2, UInt64(state.fpu.fcw))  // FNSTCW
    case (5, 7): try write(d.segment, offset, size: 2, UInt64(state.fpu.fsw))  // FNSTSW m16
    case (1, 6): try storeEnvironment(d, offset: offset)  // FNSTENV
    case (1, 4): try loadEnvironment(d, offset: offset)  // FLDENV
    case (5, 6): try saveState(d, offset: offset)  // FNSAVE
    case (5, 4): try restoreState(d, offset: offset)  // FRSTOR
    default:
      // FISTTP (SSE3), FBLD/FBSTP (BCD) and the reserved encodings: not implemented.
      throw .invalidOpcode
    }
  }

  // MARK: Register forms

  mutating func x87Register(_ d: DecodedInstruction, escape: UInt8, kind: UInt8, index: Int) throws(X86Exception) {
    switch (escape, kind) {
    case (0, _):
      recordX87Pointers(d)
      x87Binary(kind, destination: 0, source: index, sourceValue: 0, flags: FloatFlags(), popAfter: false)
    case (4, 2), (4, 3):
      // DC D0+i / D8+i: aliases of FCOM / FCOMP.
      recordX87Pointers(d)
      x87Binary(kind, destination: 0, source: index, sourceValue: 0, flags: FloatFlags(), popAfter: false)
    case (4, _), (6, _):
      // DC/DE: ST(i) ← ST(i) op ST(0), with SUB/SUBR and DIV/DIVR named the other way round.
      if escape == 6 && kind == 3 {
        guard index == 1 else { throw .invalidOpcode }
        recordX87Pointers(d)
        // FCOMPP: compare ST0 with ST1, pop twice.
        x87Compare(source: 1, unordered: false, popCount: 2, toEFLAGS: false)
        return
      }
      if escape == 6 && kind == 2 { throw .invalidOpcode }
      recordX87Pointers(d)
      let swapped: UInt8 = kind >= 4 ? kind ^ 1 : kind
      x87Binary(swapped, destination: index, source: 0, sourceValue: 0, flags: FloatFlags(), popAfter: escape == 6)
    case (1, 0):
      recordX87Pointers(d)
      if x87IsEmpty(index) {
        if x87Underflow() { x87Push(-Float80.nan) }
      } else {
        let raw = state.fpu.st[x87Physical(index)]
        // On stack overflow the pushed value is the indefinite (masked) or nothing.
        let overflow = state.fpu.ftw & (1 << UInt8((x87Top + 7) & 7)) != 0
        if x87Push(0) && !overflow { state.fpu.st[x87Physical(0)] = raw }
      }
    case (1, 1):
      // FXCH ST(i).
      recordX87Pointers(d)
      if x87IsEmpty(0) || x87IsEmpty(index) {
        guard x87Underflow() else { return }
        if x87IsEmpty(0) { setST(0, -Float80.nan) }
        if x87IsEmpty(index) { setST(index, -Float80.nan) }
      }
      let a = state.fpu.st[x87Physical(0)]
      state.fpu.st[x87Physical(0)] = state.fpu.st[x87Physical(index)]
      state.fpu.st[x87Physical(index)] = a
      state.fpu.fsw &= ~FSWBit.c1
    case (1, 2):
      guard index == 0 else { throw .invalidOpcode }
      recordX87Pointers(d)  // FNOP
    case (1, 4), (1, 5), (1, 6), (1, 7):
      try x87Miscellaneous(d, code: UInt8(kind - 4) << 3 | UInt8(index))
    case (2, 0), (2, 1), (2, 2), (2, 3), (3, 0), (3, 1), (3, 2), (3, 3):
      // FCMOVcc: B E BE U, and the negations in DB.
      recordX87Pointers(d)
      let condition: Bool
      switch kind {
      case 0: condition = carryFlag
      case 1: condition = zeroFlag
      case 2: condition = carryFlag || zeroFlag
      default: condition = state.rflags & RFlagsBit.parity != 0
      }
      if x87IsEmpty(0) || x87IsEmpty(index) {
        if x87Underflow() { setST(0, -Float80.nan) }
        return
      }
      if condition != (escape == 3) { state.fpu.st[x87Physical(0)] = state.fpu.st[x87Physical(index)] }
    case (2, 5):
      guard index == 1 else { throw .invalidOpcode }
      recordX87Pointers(d)
      x87Compare(source: 1, unordered: true, popCount: 2, toEFLAGS: false)  // FUCOMPP
    case (3, 4):
      switch index {
      case 2:  // FNCLEX
        state.fpu.fsw &= ~(0x3f | FSWBit.stackFault | FSWBit.errorSummary | FSWBit.busy)
      case 3:  // FNINIT
        state.fpu.fcw = 0x037f
        state.fpu.fsw = 0
        state.fpu.ftw = 0
        state.fpu.lastOpcode = 0
        state.fpu.lastInstructionPointer = 0
        state.fpu.lastDataPointer = 0
      case 0, 1, 4: break  // FENI, FDISI, FSETPM: no-ops since the 80387
      default: throw .invalidOpcode
      }
    case (3, 5), (3, 6), (7, 5), (7, 6):
      // FUCOMI, FCOMI, FUCOMIP, FCOMIP.
      recordX87Pointers(d)
      x87Compare(source: index, unordered: kind == 5, popCount: escape == 7 ? 1 : 0, toEFLAGS: true)
    case (5, 0):
      // FFREE ST(i).
      recordX87Pointers(d)
      state.fpu.ftw &= ~(1 << UInt8(x87Physical(index)))
    case (5, 2), (5, 3):
      // FST / FSTP ST(i).
      recordX87Pointers(d)
      if x87IsEmpty(0) {
        guard x87Underflow() else { return }
        setST(index, -Float80.nan)
      } else {
        let raw = state.fpu.st[x87Physical(0)]
        state.fpu.st[x87Physical(index)] = raw
        state.fpu.ftw |= 1 << UInt8(x87Physical(index))
      }
      if kind == 3 { x87Pop() }
    case (5, 4), (5, 5):
      // FUCOM / FUCOMP.
      recordX87Pointers(d)
      x87Compare(source: index, unordered: true, popCount: kind == 5 ? 1 : 0, toEFLAGS: false)
    case (7, 4):
      guard index == 0 else { throw .invalidOpcode }
      state.gpr[0] = state.gpr[0] & ~0xffff | UInt64(state.fpu.fsw)  // FNSTSW AX
    case (5, 1), (7, 0), (7, 1), (7, 2), (7, 3):
      // FXCH4, FFREEP, FXCH7, FSTP1, FSTP8, FSTP9: undocumented aliases, not implemented.
      throw .invalidOpcode
    default:
      throw .invalidOpcode
    }
  }
}
