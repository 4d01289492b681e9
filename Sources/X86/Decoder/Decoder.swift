/// Decodes one instruction (SDM Vol. 2, chapter 2 and appendix A).
///
/// Legacy prefixes, REX, the one-byte and 0F opcode maps (0F 38 / 0F 3A are recognised and
/// reported #UD until an instruction there is implemented), ModRM/SIB/displacement and
/// immediates, for 16-, 32- and 64-bit code. The result depends only on the bytes and `mode`,
/// which is what makes caching it by physical address sound.
public func decodeInstruction(_ bytes: InstructionBytes, mode: CodeMode) -> DecodedInstruction {
  var decoder = Decoder(bytes: bytes, mode: mode)
  return decoder.decode()
}

/// The architectural limit on instruction length (SDM Vol. 2, 2.3.11).
let maximumInstructionLength = 15

private struct Decoder {
  let bytes: InstructionBytes
  let mode: CodeMode
  var position = 0
  var ranOut = false
  var result = DecodedInstruction()
  var rex: UInt8 = 0
  var operandOverride = false
  var addressOverride = false
  var segmentOverride: UInt8 = 0xff
  /// ModRM fields as encoded (reg without REX.R: the group opcodes' sub-operation).
  var modrmReg: UInt8 = 0
  var modrmMod: UInt8 = 0

  init(bytes: InstructionBytes, mode: CodeMode) {
    self.bytes = bytes
    self.mode = mode
  }

  mutating func next() -> UInt8 {
    guard position < bytes.count && position < 16 else {
      ranOut = true
      position &+= 1
      return 0
    }
    let byte = bytes.byte(position)
    position &+= 1
    return byte
  }

  mutating func decode() -> DecodedInstruction {
    var opcode: UInt8
    prefixes: while true {
      opcode = next()
      if ranOut { break }
      switch opcode {
      case 0x66: operandOverride = true
      case 0x67: addressOverride = true
      case 0xf0: result.flags |= DecodedInstruction.Flag.lock
      // The last of F2/F3 wins, as on hardware.
      case 0xf2: result.flags = (result.flags & ~DecodedInstruction.Flag.rep) | DecodedInstruction.Flag.repne
      case 0xf3: result.flags = (result.flags & ~DecodedInstruction.Flag.repne) | DecodedInstruction.Flag.rep
      // In 64-bit mode ES, CS, SS and DS overrides are null prefixes (SDM Vol. 1, 3.3.7.1): a
      // reference through RBP or RSP stays a stack reference (#SS when not canonical).
      case 0x26 where mode != .bits64: segmentOverride = SegmentName.es.rawValue
      case 0x2e where mode != .bits64: segmentOverride = SegmentName.cs.rawValue
      case 0x36 where mode != .bits64: segmentOverride = SegmentName.ss.rawValue
      case 0x3e where mode != .bits64: segmentOverride = SegmentName.ds.rawValue
      case 0x26, 0x2e, 0x36, 0x3e: break
      case 0x64: segmentOverride = SegmentName.fs.rawValue
      case 0x65: segmentOverride = SegmentName.gs.rawValue
      case 0x40...0x4f where mode == .bits64:
        // REX counts only directly before the opcode: a legacy prefix after it cancels it.
        rex = opcode
        continue prefixes
      default: break prefixes
      }
      rex = 0
    }
    if rex != 0 { result.flags |= DecodedInstruction.Flag.rex }
    switch mode {
    case .bits64:
      result.operandSize = rex & 8 != 0 ? 8 : (operandOverride ? 2 : 4)
      result.addressSize = addressOverride ? 4 : 8
    case .bits32:
      result.operandSize = operandOverride ? 2 : 4
      result.addressSize = addressOverride ? 2 : 4
    case .bits16:
      result.operandSize = operandOverride ? 4 : 2
      result.addressSize = addressOverride ? 4 : 2
    }
    result.segment = segmentOverride == 0xff ? SegmentName.ds.rawValue : segmentOverride
    if !ranOut {
      if opcode == 0x0f { decodeTwoByte(next()) } else { decodeOneByte(opcode) }
    }
    if position > maximumInstructionLength {
      // The CPU stops at 15 bytes whether or not the rest was readable.
      result.operation = .tooLong
    } else if ranOut {
      result.operation = .truncated
    } else if result.has(DecodedInstruction.Flag.lock) && !lockAllowed() {
      result.operation = .invalid
    }
    if readsAndWritesMemory() { result.flags |= DecodedInstruction.Flag.readModifyWrite }
    result.length = UInt8(truncatingIfNeeded: min(position, 16))
    return result
  }

  /// LOCK is only valid on the read-modify-write forms with a memory destination (SDM Vol. 2, LOCK).
  func lockAllowed() -> Bool {
    guard result.isMemory else { return false }
    switch result.operation {
    case .aluRmReg, .aluRmImm: return result.sub != 7
    case .btRmReg, .btRmImm: return result.sub != 0
    case .incRm, .decRm, .notRm, .negRm, .xchgRmReg, .xadd, .cmpxchg, .cmpxchgDouble: return true
    default: return false
    }
  }

  /// The forms whose memory destination is read and written back: those LOCK may prefix,
  /// and shifts, rotates, SHLD and SHRD.
  func readsAndWritesMemory() -> Bool {
    guard result.isMemory else { return false }
    switch result.operation {
    case .shiftRm, .shld, .shrd: return true
    default: return lockAllowed()
    }
  }

  // MARK: Operand pieces

  /// Operand size for instructions that default to 64 bits in 64-bit mode (PUSH, POP, LEAVE...):
  /// 66 gives 16, and 32 is not encodable.
  mutating func defaultTo64() {
    if mode == .bits64 { result.operandSize = operandOverride && rex & 8 == 0 ? 2 : 8 }
  }

  /// Near branches in 64-bit mode: the operand size is 64 whatever the prefixes (Intel's rule;
  /// AMD honours 66 there, a known difference between the two).
  mutating func forceTo64() {
    if mode == .bits64 { result.operandSize = 8 }
  }

  mutating func byteOperands() { result.operandSize = 1 }

  mutating func immediate8() -> UInt64 { UInt64(next()) }
  mutating func immediate16() -> UInt64 { UInt64(next()) | UInt64(next()) << 8 }
  mutating func immediate32() -> UInt64 { immediate16() | immediate16() << 16 }

  /// imm8, sign-extended to 64 bits (handlers truncate to the operand size).
  mutating func signedImmediate8() -> UInt64 { signExtend(immediate8(), size: 1) }

  /// Iz: 16 bits for 16-bit operands, else 32 bits sign-extended.
  mutating func immediateZ() -> UInt64 {
    result.operandSize == 2 ? signExtend(immediate16(), size: 2) : signExtend(immediate32(), size: 4)
  }

  /// The r/m operand is the register `index` (accumulator and opcode+r forms).
  mutating func registerOperand(_ index: UInt8) {
    result.rm = index
    result.flags &= ~DecodedInstruction.Flag.memory
  }

  /// Reads ModRM and whatever SIB and displacement follow it.
  mutating func modrm() {
    let byte = next()
    modrmMod = byte >> 6
    modrmReg = (byte >> 3) & 7
    result.reg = modrmReg | (rex & 4) << 1
    let rm = byte & 7
    if modrmMod == 3 {
      result.rm = rm | (rex & 1) << 3
      return
    }
    result.flags |= DecodedInstruction.Flag.memory
    var defaultSegment = SegmentName.ds.rawValue
    if result.addressSize == 2 {
      // 16-bit forms (SDM Vol. 2, table 2-1).
      let bases: (UInt8, UInt8) =
        switch rm {
        case 0: (3, 6)
        case 1: (3, 7)
        case 2: (5, 6)
        case 3: (5, 7)
        case 4: (6, 0xff)
        case 5: (7, 0xff)
        case 6: (5, 0xff)
        default: (3, 0xff)
        }
      result.base = bases.0
      result.index = bases.1
      if rm == 2 || rm == 3 || (rm == 6 && modrmMod != 0) { defaultSegment = SegmentName.ss.rawValue }
      switch modrmMod {
      case 0 where rm == 6:
        result.base = DecodedInstruction.Register.none
        result.displacement = immediate16()
      case 1: result.displacement = signedImmediate8()
      case 2: result.displacement = signExtend(immediate16(), size: 2)
      default: break
      }
    } else {
      var base = rm | (rex & 1) << 3
      if rm == 4 {
        let sib = next()
        result.scale = sib >> 6
        let index = (sib >> 3) & 7 | (rex & 2) << 2
        result.index = index == 4 ? DecodedInstruction.Register.none : index
        base = sib & 7 | (rex & 1) << 3
        if sib & 7 == 5 && modrmMod == 0 {
          result.base = DecodedInstruction.Register.none
          result.displacement = signExtend(immediate32(), size: 4)
        } else {
          result.base = base
        }
      } else if rm == 5 && modrmMod == 0 {
        // disp32 alone: RIP-relative in 64-bit mode, absolute elsewhere.
        result.base = mode == .bits64 ? DecodedInstruction.Register.rip : DecodedInstruction.Register.none
        result.displacement = signExtend(immediate32(), size: 4)
      } else {
        result.base = base
      }
      if result.base == GPR.rsp.rawValue || result.base == GPR.rbp.rawValue { defaultSegment = SegmentName.ss.rawValue }
      switch modrmMod {
      case 1: result.displacement = signedImmediate8()
      case 2: result.displacement = signExtend(immediate32(), size: 4)
      default: break
      }
    }
    if segmentOverride == 0xff { result.segment = defaultSegment }
  }

  mutating func invalid() { result.operation = .invalid }

  // MARK: One-byte map

  mutating func decodeOneByte(_ opcode: UInt8) {
    switch opcode {
    case 0x00...0x3f where opcode & 7 < 6:
      result.sub = opcode >> 3
      switch opcode & 7 {
      case 0, 1, 2, 3:
        if opcode & 1 == 0 { byteOperands() }
        modrm()
        result.operation = opcode & 2 == 0 ? .aluRmReg : .aluRegRm
      case 4:
        byteOperands()
        result.operation = .aluRmImm
        registerOperand(0)
        result.immediate = immediate8()
      default:
        result.operation = .aluRmImm
        registerOperand(0)
        result.immediate = immediateZ()
      }
    case 0x27, 0x2f, 0x37, 0x3f:
      // DAA DAS AAA AAS: invalid in 64-bit mode (SDM Vol. 2, each entry).
      guard mode != .bits64 else { return invalid() }
      result.operation =
        switch opcode {
        case 0x27: .daa
        case 0x2f: .das
        case 0x37: .aaa
        default: .aas
        }
    case 0x06, 0x0e, 0x16, 0x1e, 0x07, 0x17, 0x1f:
      // PUSH ES/CS/SS/DS, POP ES/SS/DS: legacy only (SDM Vol. 2, PUSH, POP).
      guard mode != .bits64 else { return invalid() }
      result.operation = opcode & 1 == 0 ? .pushSreg : .popSreg
      result.sub = opcode >> 3
    case 0x40...0x4f:
      // INC/DEC r (only outside 64-bit mode, where these bytes are REX).
      result.operation = opcode < 0x48 ? .incRm : .decRm
      registerOperand(opcode & 7)
    case 0x50...0x57:
      defaultTo64()
      result.operation = .pushRm
      registerOperand(opcode & 7 | (rex & 1) << 3)
    case 0x58...0x5f:
      defaultTo64()
      result.operation = .popRm
      registerOperand(opcode & 7 | (rex & 1) << 3)
    case 0x60, 0x61:
      guard mode != .bits64 else { return invalid() }
      result.operation = opcode == 0x60 ? .pusha : .popa
    case 0x62:
      // BOUND (EVEX in 64-bit mode); the register form is invalid.
      guard mode != .bits64 else { return invalid() }
      modrm()
      result.operation = result.isMemory ? .bound : .invalid
    case 0x63:
      modrm()
      if mode == .bits64 {
        result.operation = .movsxd
      } else {
        result.operandSize = 2
        result.operation = .arpl
      }
    case 0x68:
      defaultTo64()
      result.operation = .pushImm
      result.immediate = immediateZ()
    case 0x69:
      modrm()
      result.operation = .imulRegRmImm
      result.immediate = immediateZ()
    case 0x6a:
      defaultTo64()
      result.operation = .pushImm
      result.immediate = signedImmediate8()
    case 0x6b:
      modrm()
      result.operation = .imulRegRmImm
      result.immediate = signedImmediate8()
    case 0x6c...0x6f:
      // INS/OUTS: at most 32-bit I/O; REX.W does not widen it (SDM Vol. 2, INS, OUTS).
      if opcode & 1 == 0 { byteOperands() } else { result.operandSize = operandOverride ? 2 : 4 }
      result.operation = opcode < 0x6e ? .ins : .outs
    case 0x70...0x7f:
      forceTo64()
      result.operation = .jcc
      result.sub = opcode & 0xf
      result.immediate = signedImmediate8()
    case 0x80, 0x81, 0x82, 0x83:
      if opcode == 0x82 && mode == .bits64 { return invalid() }
      if opcode != 0x81 && opcode != 0x83 { byteOperands() }
      modrm()
      result.operation = .aluRmImm
      result.sub = modrmReg
      result.immediate = opcode == 0x81 ? immediateZ() : signedImmediate8()
    case 0x84, 0x85:
      if opcode == 0x84 { byteOperands() }
      modrm()
      result.operation = .testRmReg
    case 0x86, 0x87:
      if opcode == 0x86 { byteOperands() }
      modrm()
      result.operation = .xchgRmReg
    case 0x88...0x8b:
      if opcode & 1 == 0 { byteOperands() }
      modrm()
      result.operation = opcode & 2 == 0 ? .movRmReg : .movRegRm
    case 0x8c:
      modrm()
      guard modrmReg <= SegmentName.gs.rawValue else { return invalid() }
      result.operation = .movRmSreg
      result.sub = modrmReg
    case 0x8d:
      modrm()
      result.operation = result.isMemory ? .lea : .invalid
    case 0x8e:
      // MOV Sreg, r/m16: CS and the undefined 6 and 7 are #UD.
      modrm()
      guard modrmReg <= SegmentName.gs.rawValue && modrmReg != SegmentName.cs.rawValue else { return invalid() }
      result.operation = .movSregRm
      result.sub = modrmReg
    case 0x8f:
      defaultTo64()
      modrm()
      result.operation = modrmReg == 0 ? .popRm : .invalid
    case 0x90:
      if rex & 1 != 0 {
        result.operation = .xchgRmReg
        registerOperand(8)
      } else {
        result.operation = .nop  // also F3 90, PAUSE
      }
    case 0x91...0x97:
      result.operation = .xchgRmReg
      result.reg = 0
      registerOperand(opcode & 7 | (rex & 1) << 3)
    case 0x98: result.operation = .cbw
    case 0x99: result.operation = .cwd
    case 0x9a, 0xea:
      // CALL/JMP ptr16:16/32: invalid in 64-bit mode.
      guard mode != .bits64 else { return invalid() }
      result.operation = opcode == 0x9a ? .callFar : .jmpFar
      result.immediate = result.operandSize == 2 ? immediate16() : immediate32()
      result.immediate2 = UInt16(truncatingIfNeeded: immediate16())
    case 0x9b:
      // FWAIT: checks for #NM (MP and TS) and a pending unmasked x87 exception (#MF).
      result.operation = .x87
      result.sub = 0xff
    case 0x9c:
      defaultTo64()
      result.operation = .pushf
    case 0x9d:
      defaultTo64()
      result.operation = .popf
    case 0x9e: result.operation = .sahf
    case 0x9f: result.operation = .lahf
    case 0xa0...0xa3:
      // MOV with moffs: an absolute memory operand as wide as the address size.
      if opcode & 1 == 0 { byteOperands() }
      result.operation = opcode & 2 == 0 ? .movRegRm : .movRmReg
      result.reg = 0
      result.flags |= DecodedInstruction.Flag.memory
      result.displacement =
        switch result.addressSize {
        case 8: immediate32() | immediate32() << 32
        case 4: immediate32()
        default: immediate16()
        }
    case 0xa4...0xa7, 0xaa...0xaf:
      if opcode & 1 == 0 { byteOperands() }
      result.operation =
        switch opcode & 0xfe {
        case 0xa4: .movs
        case 0xa6: .cmps
        case 0xaa: .stos
        case 0xac: .lods
        default: .scas
        }
    case 0xa8:
      byteOperands()
      result.operation = .testRmImm
      registerOperand(0)
      result.immediate = immediate8()
    case 0xa9:
      result.operation = .testRmImm
      registerOperand(0)
      result.immediate = immediateZ()
    case 0xb0...0xb7:
      byteOperands()
      result.operation = .movRmImm
      registerOperand(opcode & 7 | (rex & 1) << 3)
      result.immediate = immediate8()
    case 0xb8...0xbf:
      result.operation = .movRmImm
      registerOperand(opcode & 7 | (rex & 1) << 3)
      result.immediate =
        switch result.operandSize {
        case 8: immediate32() | immediate32() << 32
        case 4: immediate32()
        default: immediate16()
        }
    case 0xc0, 0xc1, 0xd0...0xd3:
      if opcode & 1 == 0 { byteOperands() }
      modrm()
      result.operation = .shiftRm  // /6 behaves as SHL (/4) on the CPUs we know; the executor treats it so
      result.sub = modrmReg
      switch opcode {
      case 0xc0, 0xc1: result.immediate = immediate8()
      case 0xd0, 0xd1: result.immediate = 1
      default: result.flags |= DecodedInstruction.Flag.countInCL
      }
    case 0xc2, 0xc3:
      defaultTo64()
      result.operation = .ret
      result.immediate = opcode == 0xc2 ? immediate16() : 0
    case 0xc4, 0xc5:
      // LES/LDS; in 64-bit mode, and with a register operand anywhere, these are VEX (not implemented).
      guard mode != .bits64 else { return invalid() }
      modrm()
      result.operation = result.isMemory ? .loadFarPointer : .invalid
      result.sub = opcode == 0xc4 ? SegmentName.es.rawValue : SegmentName.ds.rawValue
    case 0xc6, 0xc7:
      if opcode == 0xc6 { byteOperands() }
      modrm()
      guard modrmReg == 0 else { return invalid() }
      result.operation = .movRmImm
      result.immediate = opcode == 0xc6 ? immediate8() : immediateZ()
    case 0xc8:
      defaultTo64()
      result.operation = .enter
      result.immediate2 = UInt16(truncatingIfNeeded: immediate16())
      result.immediate = immediate8()
    case 0xc9:
      defaultTo64()
      result.operation = .leave
    case 0xca, 0xcb:
      // RET far: 32 bits by default in 64-bit mode, 64 with REX.W.
      result.operation = .retFar
      result.immediate = opcode == 0xca ? immediate16() : 0
    case 0xcc: result.operation = .int3
    case 0xcd:
      result.operation = .intN
      result.immediate = immediate8()
    case 0xd4, 0xd5:
      guard mode != .bits64 else { return invalid() }
      result.operation = opcode == 0xd4 ? .aam : .aad
      result.immediate = immediate8()
    case 0xce: result.operation = mode == .bits64 ? .invalid : .into
    case 0xcf: result.operation = .iret
    case 0xd7: result.operation = .xlat
    case 0xe0...0xe3:
      forceTo64()
      result.operation = opcode == 0xe3 ? .jrcxz : .loop
      result.sub = opcode & 3
      result.immediate = signedImmediate8()
    case 0xe4...0xe7, 0xec...0xef:
      if opcode & 1 == 0 { byteOperands() } else if result.operandSize == 8 { result.operandSize = 4 }
      result.operation = opcode & 2 == 0 ? .inPort : .outPort
      if opcode >= 0xec {
        result.flags |= DecodedInstruction.Flag.portInDX
      } else {
        result.immediate = immediate8()
      }
    case 0xe8, 0xe9:
      forceTo64()
      result.operation = opcode == 0xe8 ? .callRel : .jmpRel
      result.immediate = mode == .bits64 ? signExtend(immediate32(), size: 4) : immediateZ()
    case 0xeb:
      forceTo64()
      result.operation = .jmpRel
      result.immediate = signedImmediate8()
    case 0xd8...0xdf:
      // x87 escape opcodes: the handler needs the opcode's low bits, ModRM.reg and the raw
      // ModRM (FOP records it); `rm` is ST(i) in the register forms.
      let modrmByte = position < bytes.count ? bytes.byte(position) : 0
      modrm()
      result.operation = .x87
      result.sub = (opcode & 7) << 3 | modrmReg
      result.immediate = UInt64(modrmByte)
    case 0xf1: result.operation = .int1
    case 0xf4: result.operation = .hlt
    case 0xf5: result.operation = .cmc
    case 0xf6, 0xf7:
      if opcode == 0xf6 { byteOperands() }
      modrm()
      switch modrmReg {
      case 0, 1:
        result.operation = .testRmImm
        result.immediate = opcode == 0xf6 ? immediate8() : immediateZ()
      case 2: result.operation = .notRm
      case 3: result.operation = .negRm
      case 4: result.operation = .mulRm
      case 5: result.operation = .imulRm
      case 6: result.operation = .divRm
      default: result.operation = .idivRm
      }
    case 0xf8: result.operation = .clc
    case 0xf9: result.operation = .stc
    case 0xfa: result.operation = .cli
    case 0xfb: result.operation = .sti
    case 0xfc: result.operation = .cld
    case 0xfd: result.operation = .std
    case 0xfe:
      byteOperands()
      modrm()
      result.operation = modrmReg == 0 ? .incRm : (modrmReg == 1 ? .decRm : .invalid)
    case 0xff:
      // The reg field says which instruction this is, and so which size rule applies.
      modrm()
      switch modrmReg {
      case 0: result.operation = .incRm
      case 1: result.operation = .decRm
      case 2:
        forceTo64()
        result.operation = .callRm
      case 4:
        forceTo64()
        result.operation = .jmpRm
      case 3, 5:
        // Far CALL/JMP m16:16/32/64 (REX.W selects m16:64); a register operand is #UD.
        result.operation = result.isMemory ? (modrmReg == 3 ? .callFar : .jmpFar) : .invalid
      case 6:
        defaultTo64()
        result.operation = .pushRm
      default: invalid()  // 7 is reserved
      }
    default:
      // Far transfers, segment pushes and loads, BCD, string I/O, x87, IRET, INTO, BOUND, VEX:
      // not implemented yet (or invalid in 64-bit mode), so #UD.
      invalid()
    }
  }

  // MARK: Two-byte map (0F xx)

  mutating func decodeTwoByte(_ opcode: UInt8) {
    switch opcode {
    case 0x01: decodeGroup7()
    case 0x06: result.operation = .clts
    case 0x08, 0x09: result.operation = .invd  // INVD, WBINVD
    case 0x00:
      // SLDT STR LLDT LTR VERR VERW (SDM Vol. 2, table A-6, group 6).
      modrm()
      guard modrmReg <= 5 else { return invalid() }
      result.operation = .systemSegment
      result.sub = modrmReg
    case 0x02, 0x03:
      modrm()
      result.operation = opcode == 0x02 ? .lar : .lsl
    case 0x05: result.operation = .syscall
    case 0x07: result.operation = .sysret
    case 0x34: result.operation = .sysenter
    case 0x35: result.operation = .sysexit
    case 0xa0, 0xa8, 0xa1, 0xa9:
      // PUSH/POP FS/GS.
      defaultTo64()
      result.operation = opcode & 1 == 0 ? .pushSreg : .popSreg
      result.sub = opcode < 0xa8 ? SegmentName.fs.rawValue : SegmentName.gs.rawValue
    case 0xb2, 0xb4, 0xb5:
      // LSS/LFS/LGS r, m16:16/32/64.
      modrm()
      result.operation = result.isMemory ? .loadFarPointer : .invalid
      result.sub =
        switch opcode {
        case 0xb2: SegmentName.ss.rawValue
        case 0xb4: SegmentName.fs.rawValue
        default: SegmentName.gs.rawValue
        }
    case 0x0b: result.operation = .ud2
    case 0x0d, 0x18...0x1f:
      // PREFETCH hints, the reserved-NOP space and NOP Ev: all execute as no-ops.
      modrm()
      result.operation = .nop
    case 0x20, 0x22: decodeMoveControlRegister(toControlRegister: opcode == 0x22)
    case 0x30: result.operation = .wrmsr
    case 0x21, 0x23:
      // MOV from/to DRn (SDM Vol. 2, MOV—Move to/from Debug Registers): the mod field is
      // ignored, the operand is always a register (no SIB or displacement follows), and the
      // size is 64 bits in 64-bit mode, 32 elsewhere, whatever the prefixes.
      let byte = next()
      result.reg = (byte >> 3) & 7 | (rex & 4) << 1
      registerOperand(byte & 7 | (rex & 1) << 3)
      result.operandSize = mode == .bits64 ? 8 : 4
      result.operation = opcode == 0x21 ? .movFromDebug : .movToDebug
    case 0x31: result.operation = .rdtsc
    case 0x32: result.operation = .rdmsr
    case 0x38, 0x3a:
      _ = next()
      invalid()
    case 0x40...0x4f:
      modrm()
      result.operation = .cmovcc
      result.sub = opcode & 0xf
    case 0x80...0x8f:
      forceTo64()
      result.operation = .jcc
      result.sub = opcode & 0xf
      result.immediate = mode == .bits64 ? signExtend(immediate32(), size: 4) : immediateZ()
    case 0x90...0x9f:
      byteOperands()
      modrm()
      result.operation = .setcc
      result.sub = opcode & 0xf
    case 0xa2: result.operation = .cpuid
    case 0xa3, 0xab, 0xb3, 0xbb:
      modrm()
      result.operation = .btRmReg
      result.sub = (opcode >> 3) & 3
    case 0xa4, 0xa5, 0xac, 0xad:
      modrm()
      result.operation = opcode < 0xa8 ? .shld : .shrd
      if opcode & 1 == 0 { result.immediate = immediate8() } else { result.flags |= DecodedInstruction.Flag.countInCL }
    case 0xaf:
      modrm()
      result.operation = .imulRegRm
    case 0xb0, 0xb1:
      if opcode == 0xb0 { byteOperands() }
      modrm()
      result.operation = .cmpxchg
    case 0xb6, 0xb7, 0xbe, 0xbf:
      // The source size rides in `sub`; the destination is the operand size.
      modrm()
      result.operation = opcode < 0xb8 ? .movzx : .movsx
      result.sub = opcode & 1 == 0 ? 1 : 2
    case 0xba:
      modrm()
      guard modrmReg >= 4 else { return invalid() }
      result.operation = .btRmImm
      result.sub = modrmReg & 3
      result.immediate = immediate8()
    case 0xbc, 0xbd:
      // F3 0F BC/BD are TZCNT/LZCNT only where CPUID advertises them; ours does not, and on
      // such a CPU the REP prefix is ignored (SDM Vol. 2, TZCNT), so these stay BSF/BSR.
      modrm()
      result.operation = opcode == 0xbc ? .bsf : .bsr
    case 0xc0, 0xc1:
      if opcode == 0xc0 { byteOperands() }
      modrm()
      result.operation = .xadd
    case 0xc7:
      modrm()
      if modrmReg == 7 && !result.isMemory && result.has(DecodedInstruction.Flag.rep) {
        // RDPID r (F3 0F C7 /7): 64-bit in 64-bit mode, else 32-bit, whatever the prefixes.
        result.operation = .rdpid
        result.operandSize = mode == .bits64 ? 8 : 4
        return
      }
      guard modrmReg == 1 && result.isMemory else { return invalid() }
      result.operation = .cmpxchgDouble
    case 0xc8...0xcf:
      result.operation = .bswap
      registerOperand(opcode & 7 | (rex & 1) << 3)
    case 0x10...0x17, 0x28...0x2f, 0x50...0x7f, 0xae, 0xc2...0xc6, 0xd0...0xff:
      decodeSSE(opcode)
    default:
      invalid()
    }
  }

  // MARK: System forms (0F 01, 0F 20/22)

  /// Group 7 (0F 01): the forms this model implements; the descriptor-table forms (SGDT SIDT
  /// LGDT LIDT), SWAPGS and the rest stay #UD until they are.
  mutating func decodeGroup7() {
    modrm()
    if result.isMemory {
      switch modrmReg {
      case 0...3:
        // SGDT SIDT LGDT LIDT.
        result.operation = .descriptorTable
        result.sub = modrmReg
      case 4:
        result.operation = .smsw
        result.operandSize = 2  // the memory form always stores 16 bits
      case 6:
        result.operation = .lmsw
        result.operandSize = 2
      case 7: result.operation = .invlpg
      default: invalid()
      }
      return
    }
    switch (modrmReg, result.rm & 7) {
    case (1, 2): result.operation = .clac
    case (1, 3): result.operation = .stac
    case (4, _): result.operation = .smsw
    case (6, _):
      result.operation = .lmsw
      result.operandSize = 2
    case (7, 0) where mode == .bits64: result.operation = .swapgs
    case (7, 1): result.operation = .rdtscp
    default: invalid()
    }
  }

  /// MOV to/from CRn (0F 20/22): the ModRM byte always names registers, whatever its mod
  /// field (SDM Vol. 2, MOV—Move to/from Control Registers), so no displacement follows. The
  /// operand is 64 bits in 64-bit mode and 32 bits elsewhere (66 is ignored). CR1, CR5-CR7 and
  /// CR9-CR15 are #UD; LOCK (AMD's alternative CR8 encoding) is #UD too (see lockAllowed).
  mutating func decodeMoveControlRegister(toControlRegister: Bool) {
    let byte = next()
    result.reg = (byte >> 3) & 7 | (rex & 4) << 1
    registerOperand(byte & 7 | (rex & 1) << 3)
    result.operandSize = mode == .bits64 ? 8 : 4
    switch result.reg {
    case 0, 2, 3, 4, 8: result.operation = toControlRegister ? .movToCR : .movFromCR
    default: invalid()
    }
  }

  /// SSE/SSE2 and the 0F AE group: ModRM, the imm8 where the opcode has one, and the
  /// mandatory prefix (F3/F2 win over 66, SDM Vol. 2, 2.1.2) for the executor's second switch.
  mutating func decodeSSE(_ opcode: UInt8) {
    modrm()
    result.operation = .sse
    result.sub = opcode
    let prefix: UInt16 =
      result.has(DecodedInstruction.Flag.rep)
      ? SSEPrefix.f3 : (result.has(DecodedInstruction.Flag.repne) ? SSEPrefix.f2 : (operandOverride ? SSEPrefix.p66 : 0))
    result.immediate2 = prefix | (rex & 8 != 0 ? SSEPrefix.rexW : 0)
    switch opcode {
    case 0x70...0x73, 0xc2, 0xc4...0xc6: result.immediate = immediate8()
    default: break
    }
  }
}
