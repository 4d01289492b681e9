/// Just enough x86 decoding to see the instructions that need the stepper's help: HLT,
/// the flag pushes and pops that can reveal or change TF, IRET, and software interrupts.
/// Everything else is `.other`; its length is not needed.
public struct DecodedInstruction: Equatable, Sendable {
  public enum Kind: Equatable, Sendable {
    case halt
    case pushFlags(operandBytes: Int)
    case popFlags(operandBytes: Int)
    case interruptReturn(operandBytes: Int)
    /// INT n, INT3 (3), INTO (4) and INT1/ICEBP (1).
    case softwareInterrupt(vector: UInt8, opcode: SoftwareInterruptOpcode)
    /// MOV SS / POP SS: the next instruction runs in their interrupt shadow.
    case loadStackSegment
    case other
  }

  public enum SoftwareInterruptOpcode: Equatable, Sendable { case int3, intN, into, int1 }

  public var kind: Kind
  /// Bytes consumed, prefixes included (valid for every kind but `.other`).
  public var length: Int
  /// The instruction may change segment, descriptor-table, control or mode state, so a
  /// cached copy of the special registers must be refreshed after it.
  public var changesSystemState = false
  /// A REP/REPE/REPNE string instruction: the width of its count register in bytes (2, 4 or 8).
  public var repeatCountBytes: Int?
  /// An exception this instruction raises by its nature, when it is easy to tell: #UD for
  /// UD2, #DE for DIV and IDIV.
  public var likelyFault: UInt8?

  public init(kind: Kind, length: Int, changesSystemState: Bool = false) {
    self.kind = kind
    self.length = length
    self.changesSystemState = changesSystemState
  }
}

public enum CodeSize: Int, Sendable {
  case bits16 = 2
  case bits32 = 4
  case bits64 = 8
}

public enum InstructionDecoder {
  public static func decode(_ bytes: [UInt8], size: CodeSize) -> DecodedInstruction {
    var index = 0
    var operandOverride = false
    var addressOverride = false
    var repeated = false
    var rexW = false
    // Legacy prefixes, at most 14 of them before the opcode (15-byte limit).
    while index < bytes.count && index < 14 {
      switch bytes[index] {
      case 0x66: operandOverride = true
      case 0x67: addressOverride = true
      case 0xf2, 0xf3: repeated = true
      case 0xf0, 0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65: break
      default:
        if size == .bits64, bytes[index] & 0xf0 == 0x40 {
          rexW = bytes[index] & 0x08 != 0
          index += 1
        }
        var result = classify(bytes, at: index, size: size, operandOverride: operandOverride, rexW: rexW)
        if repeated, index < bytes.count, Self.stringOpcodes.contains(bytes[index]) {
          switch size {
          case .bits64: result.repeatCountBytes = addressOverride ? 4 : 8
          case .bits32: result.repeatCountBytes = addressOverride ? 2 : 4
          case .bits16: result.repeatCountBytes = addressOverride ? 4 : 2
          }
        }
        return result
      }
      index += 1
    }
    return DecodedInstruction(kind: .other, length: 0)
  }

  /// INS, OUTS, MOVS, CMPS, STOS, LODS, SCAS (byte and word/dword/qword forms).
  static let stringOpcodes: Set<UInt8> = [
    0x6c, 0x6d, 0x6e, 0x6f, 0xa4, 0xa5, 0xa6, 0xa7, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
  ]

  private static func classify(_ bytes: [UInt8], at index: Int, size: CodeSize, operandOverride: Bool, rexW: Bool)
    -> DecodedInstruction
  {
    guard index < bytes.count else { return DecodedInstruction(kind: .other, length: 0) }
    // Operand size of PUSHF/POPF: 64-bit mode defaults to 8 bytes (66 gives 2, no 4-byte form).
    let stackOperand: Int
    switch size {
    case .bits64: stackOperand = operandOverride ? 2 : 8
    case .bits32: stackOperand = operandOverride ? 2 : 4
    case .bits16: stackOperand = operandOverride ? 4 : 2
    }
    // IRET: 32-bit default in 64-bit mode unless REX.W.
    let iretOperand: Int
    switch size {
    case .bits64: iretOperand = rexW ? 8 : (operandOverride ? 2 : 4)
    case .bits32: iretOperand = operandOverride ? 2 : 4
    case .bits16: iretOperand = operandOverride ? 4 : 2
    }
    let opcode = bytes[index]
    func done(_ kind: DecodedInstruction.Kind, _ length: Int) -> DecodedInstruction {
      DecodedInstruction(kind: kind, length: index + length)
    }
    switch opcode {
    case 0xf4: return done(.halt, 1)
    case 0x9c: return done(.pushFlags(operandBytes: stackOperand), 1)
    case 0x9d: return done(.popFlags(operandBytes: stackOperand), 1)
    case 0xcf:
      var result = done(.interruptReturn(operandBytes: iretOperand), 1)
      result.changesSystemState = true
      return result
    case 0xcc: return done(.softwareInterrupt(vector: 3, opcode: .int3), 1)
    case 0xcd:
      guard index + 1 < bytes.count else { return done(.other, 1) }
      return done(.softwareInterrupt(vector: bytes[index + 1], opcode: .intN), 2)
    case 0xce where size != .bits64: return done(.softwareInterrupt(vector: 4, opcode: .into), 1)
    case 0xf1: return done(.softwareInterrupt(vector: 1, opcode: .int1), 1)
    case 0x17 where size != .bits64:  // POP SS
      var result = done(.loadStackSegment, 1)
      result.changesSystemState = true
      return result
    case 0x8e where index + 1 < bytes.count && (bytes[index + 1] >> 3) & 7 == 2:  // MOV SS, r/m
      var result = done(.loadStackSegment, 0)
      result.changesSystemState = true
      return result
    case 0x0f:
      guard index + 1 < bytes.count else { return done(.other, 0) }
      var result = done(.other, 0)
      if bytes[index + 1] == 0x0b { result.likelyFault = 6 }  // UD2
      // LGDT/LIDT/LMSW/SMSW group, MOV to/from CR, WRMSR, SYSCALL/SYSRET/SYSENTER/SYSEXIT,
      // RSM, POP FS/GS, LSS/LFS/LGS.
      result.changesSystemState = [0x01, 0x22, 0x30, 0x05, 0x07, 0x34, 0x35, 0xaa, 0xa1, 0xa9, 0xb2, 0xb4, 0xb5]
        .contains(bytes[index + 1])
      return result
    case 0xea, 0x9a, 0xca, 0xcb, 0x07, 0x1f, 0xc4, 0xc5, 0x8e:
      // Far JMP/CALL/RET, POP ES/DS, LES/LDS (outside 64-bit mode), MOV Sreg.
      var result = done(.other, 0)
      result.changesSystemState = true
      return result
    case 0xf6, 0xf7:
      // F6/F7 /6 and /7: DIV and IDIV, which raise #DE on a zero divisor or an overflow.
      var result = done(.other, 0)
      if index + 1 < bytes.count, (bytes[index + 1] >> 3) & 7 >= 6 { result.likelyFault = 0 }
      return result
    case 0xff:
      // FF /3 and /5: far CALL and far JMP through memory.
      var result = done(.other, 0)
      if index + 1 < bytes.count { result.changesSystemState = [3, 5].contains((bytes[index + 1] >> 3) & 7) }
      return result
    default: return done(.other, 0)
    }
  }
}
