/// What the executor does with a decoded instruction: one case per handler.
///
/// Decoding normalises encodings onto few handlers: the accumulator forms (`ADD AL, imm8`),
/// `MOV r, imm`, `PUSH r`, `XCHG rAX, r` and moffs become the r/m form with a register or
/// an absolute memory operand, so each handler reads its operands one way.
public enum Operation: UInt8, Sendable {
  /// Not an instruction (or not one the interpreter implements): #UD.
  case invalid
  /// The bytes ran out before the instruction ended (the decoder needs the next page).
  case truncated
  /// Longer than 15 bytes: #GP(0).
  case tooLong

  // Arithmetic and logic; `sub` is the ALU kind 0-7: ADD OR ADC SBB AND SUB XOR CMP.
  case aluRmReg, aluRegRm, aluRmImm
  case testRmReg, testRmImm
  case incRm, decRm, notRm, negRm
  case mulRm, imulRm, divRm, idivRm, imulRegRm, imulRegRmImm
  case cbw, cwd
  // Shifts: `sub` is the kind (ROL ROR RCL RCR SHL SHR SAL SAR); count in `immediate`, or CL.
  case shiftRm, shld, shrd
  // Bit operations: `sub` is 0 BT, 1 BTS, 2 BTR, 3 BTC.
  case btRmReg, btRmImm, bsf, bsr, bswap

  // Data movement.
  case movRmReg, movRegRm, movRmImm, movzx, movsx, movsxd, lea, xchgRmReg, xadd, cmpxchg, cmpxchgDouble
  case setcc, cmovcc, xlat
  /// MOV r/m, Sreg (`sub` is the segment register).
  case movRmSreg

  // Stack.
  case pushRm, pushImm, popRm, pushf, popf, enter, leave

  // Control flow; `sub` is the condition code for jcc.
  case jcc, jmpRel, jmpRm, callRel, callRm, ret, loop, jrcxz

  // Strings; REP/REPE/REPNE in `flags`.
  case movs, cmps, scas, lods, stos, ins, outs

  // Flags and system.
  case clc, stc, cmc, cld, std, cli, sti, lahf, sahf
  case nop, ud2, hlt, cpuid, rdtsc, int3, intN, int1
  case inPort, outPort

  // System: control registers, caches and TLB, MSRs (`reg` is the CR number for MOV CR).
  case movFromCR, movToCR, clts, lmsw, smsw, invlpg, invd, rdmsr, wrmsr, rdtscp, stac, clac, rdpid
  // Legacy-mode only: BCD adjustments (AAM/AAD's base in `immediate`), PUSHA/POPA.
  case daa, das, aaa, aas, aam, aad, pusha, popa
  /// MOV r, DRn (0F 21) and MOV DRn, r (0F 23): `reg` is the debug register, `rm` the GPR.
  case movFromDebug, movToDebug
  // Protection (segmentation, privilege, interrupts); `sub` is the segment register for
  // the Sreg forms, the ModRM.reg sub-operation for 0F 00 and 0F 01.
  case iret, into, bound
  case movSregRm, pushSreg, popSreg, loadFarPointer
  /// Far JMP/CALL: ptr16:16/32 (offset in `immediate`, selector in `immediate2`) or m16:16/32/64.
  case jmpFar, callFar, retFar
  /// 0F 01 /0-/3: SGDT SIDT LGDT LIDT.
  case descriptorTable
  /// 0F 00 /0-/5: SLDT STR LLDT LTR VERR VERW.
  case systemSegment
  case lar, lsl, arpl
  case syscall, sysret, sysenter, sysexit, swapgs
  /// SSE/SSE2 (0F map): `sub` is the opcode byte, `immediate2` the mandatory prefix and REX.W
  /// (`SSEPrefix`); the second-level switch is in SSEDispatch.swift.
  case sse
  /// x87 (D8-DF): `sub` is (opcode & 7) << 3 | ModRM.reg, `immediate` the ModRM byte (for
  /// FOP); FWAIT is `sub` 0xff. The second-level switch is in X87Dispatch.swift.
  case x87
}

/// One instruction, decoded once: everything the executor needs, no pointers, 32 bytes, so it
/// can be cached by physical address (`DecodeCache`).
///
/// The byte-sized fields are packed into two words behind computed properties. Stored as a
/// dozen separate bytes, every step loaded them one by one from the cache and re-packed them
/// into registers to call a handler (about 30 instructions per step, the largest fixed cost
/// in the profile); packed, it moves as six scalars.
public struct DecodedInstruction: Sendable, Equatable {
  public var operation: Operation = .invalid
  /// length, operandSize, addressSize, flags, segment, reg, rm, sub: one byte each, in that order.
  var shape: UInt64 = DecodedInstruction.initialShape
  /// base, index, scale: one byte each.
  var memoryOperand: UInt32 = DecodedInstruction.initialMemoryOperand
  /// ENTER's 16-bit size (its 8-bit level is in `immediate`).
  public var immediate2: UInt16 = 0
  /// Memory operand displacement (sign-extended), or moffs's absolute address.
  public var displacement: UInt64 = 0
  /// The immediate, sign- or zero-extended as the instruction defines; branch targets' rel.
  public var immediate: UInt64 = 0

  // Operand size 4, address size 8, segment DS; base and index none.
  static let initialShape: UInt64 = 4 << 8 | 8 << 16 | UInt64(SegmentName.ds.rawValue) << 32
  static let initialMemoryOperand: UInt32 = 0xff | 0xff << 8

  public init() {}

  @inline(__always) private func shapeByte(_ index: UInt64) -> UInt8 { UInt8(truncatingIfNeeded: shape >> (index * 8)) }
  @inline(__always) private mutating func setShapeByte(_ index: UInt64, _ value: UInt8) {
    shape = shape & ~(0xff << (index * 8)) | UInt64(value) << (index * 8)
  }
  @inline(__always) private func memoryByte(_ index: UInt32) -> UInt8 {
    UInt8(truncatingIfNeeded: memoryOperand >> (index * 8))
  }
  @inline(__always) private mutating func setMemoryByte(_ index: UInt32, _ value: UInt8) {
    memoryOperand = memoryOperand & ~(0xff << (index * 8)) | UInt32(value) << (index * 8)
  }

  /// Instruction length in bytes (1-15).
  public var length: UInt8 {
    @inline(__always) get { shapeByte(0) }
    set { setShapeByte(0, newValue) }
  }
  /// Operand size in bytes: 1, 2, 4 or 8.
  public var operandSize: UInt8 {
    @inline(__always) get { shapeByte(1) }
    set { setShapeByte(1, newValue) }
  }
  /// Address size in bytes: 2, 4 or 8.
  public var addressSize: UInt8 {
    @inline(__always) get { shapeByte(2) }
    set { setShapeByte(2, newValue) }
  }
  /// Prefix and operand-form bits (`DecodedInstruction.Flag`).
  public var flags: UInt8 {
    @inline(__always) get { shapeByte(3) }
    set { setShapeByte(3, newValue) }
  }
  /// The segment for the memory operand: the override, or DS/SS by default (`SegmentName`).
  public var segment: UInt8 {
    @inline(__always) get { shapeByte(4) }
    set { setShapeByte(4, newValue) }
  }
  /// ModRM.reg with REX.R, or the register in the opcode's low bits.
  public var reg: UInt8 {
    @inline(__always) get { shapeByte(5) }
    set { setShapeByte(5, newValue) }
  }
  /// ModRM.rm with REX.B when the r/m operand is a register.
  public var rm: UInt8 {
    @inline(__always) get { shapeByte(6) }
    set { setShapeByte(6, newValue) }
  }
  /// ALU kind, shift kind, condition code or sub-operation, per `operation`.
  public var sub: UInt8 {
    @inline(__always) get { shapeByte(7) }
    set { setShapeByte(7, newValue) }
  }
  /// Memory operand: base register, `Register.rip`, or `Register.none`.
  public var base: UInt8 {
    @inline(__always) get { memoryByte(0) }
    set { setMemoryByte(0, newValue) }
  }
  /// Memory operand: index register or `Register.none`.
  public var index: UInt8 {
    @inline(__always) get { memoryByte(1) }
    set { setMemoryByte(1, newValue) }
  }
  /// Memory operand: log2 of the SIB scale.
  public var scale: UInt8 {
    @inline(__always) get { memoryByte(2) }
    set { setMemoryByte(2, newValue) }
  }

  public enum Flag {
    /// The r/m operand is in memory (ModRM.mod != 3, or moffs).
    public static let memory: UInt8 = 1 << 0
    /// A REX prefix is present: byte registers 4-7 are SPL..DIL, not AH..BH.
    public static let rex: UInt8 = 1 << 1
    public static let lock: UInt8 = 1 << 2
    /// F3 (REP / REPE).
    public static let rep: UInt8 = 1 << 3
    /// F2 (REPNE).
    public static let repne: UInt8 = 1 << 4
    /// A shift's or SHLD/SHRD's count is CL, not `immediate`.
    public static let countInCL: UInt8 = 1 << 5
    /// Port I/O's port is DX, not `immediate`.
    public static let portInDX: UInt8 = 1 << 6
    /// The memory operand is read and then written: its read already asks for write access,
    /// so a fault on it reports W = 1 in the #PF error code, as the hardware's does.
    public static let readModifyWrite: UInt8 = 1 << 7
  }

  public enum Register {
    public static let none: UInt8 = 0xff
    public static let rip: UInt8 = 16
  }

  @inline(__always) public var isMemory: Bool { flags & Flag.memory != 0 }
  @inline(__always) public func has(_ flag: UInt8) -> Bool { flags & flag != 0 }
}
