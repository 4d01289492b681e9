/// One encoding form of an instruction: opcode bytes, how operands are encoded, and what the
/// generator must arrange in the starting state for the form to run safely in the oracle.
public struct InstructionForm: Sendable {
  /// How the operand size is chosen.
  public enum Size: Sendable {
    /// No sized operand, or one fixed by the opcode.
    case none
    /// 8-bit operands (byte registers: AH-BH without REX, SPL-DIL with it).
    case byte
    /// 16, 32 or 64 bits (66 prefix, none, REX.W).
    case sized
    /// 64 bits by default in 64-bit mode, 16 with 66 (stack operations and near branches).
    case stack
    /// 32 or 64 bits (66 is undefined or meaningless: BSWAP, MOVSXD's source ...).
    case wide
  }

  /// Where the operands are encoded.
  public enum Operands: Sendable {
    case none
    /// ModRM; `digit` fixes the reg field (an opcode extension, "/4"), nil makes it a register.
    case modrm(digit: UInt8?)
    /// A register in the opcode's low three bits (50+r, B8+r, 0F C8+r), REX.B extending it.
    case opcodeRegister
    /// A 64-bit (32 with 67) absolute address (A0-A3).
    case moffs
  }

  /// Immediate bytes after the operands.
  public enum Immediate: Sendable {
    case none, byte, word, z
    /// The full operand size: 8 bytes with REX.W (MOV r64, imm64).
    case full
    /// ENTER's iw, ib.
    case enter
    /// Branch displacements.
    case rel8, relZ
  }

  /// What the starting state needs beyond random values, so that the instruction stays inside
  /// the sandbox (or ends in a fault the oracle can catch) and exercises its edges.
  public enum Special: Sendable, Equatable {
    case none
    /// PUSH/POP/CALL/RET/ENTER/LEAVE/PUSHF/POPF: RSP in the data window.
    case stack
    /// POPF: the popped image must not set TF (the trap would land on the exit stub).
    case popf
    /// RET / RET imm16: the return address on the stack is a safe target.
    case ret
    /// A relative branch: its target must be a safe one.
    case relativeBranch
    /// JMP/CALL r/m: the register or the memory operand holds a safe target.
    case indirectBranch
    /// LOOP/LOOPcc/JRCXZ: a small or edge RCX, and a safe target.
    case loop
    /// DIV/IDIV: a dividend that usually fits, sometimes overflows, sometimes INT_MIN / -1.
    case divide
    /// CMPXCHG: RAX equal to the memory or register operand half the time.
    case compareExchange
    /// CMPXCHG8B/16B: RDX:RAX equal to memory half the time; 16B aligned most of the time.
    case compareExchangeDouble
    /// BT/BTS/BTR/BTC with a register bit offset on memory: the offset bounded to the window.
    case bitOffset
    /// String instructions: RSI/RDI in the window, a small RCX under REP.
    case string
    /// XLAT: RBX + AL in the window.
    case xlat
    /// ENTER: a small frame and nesting level, RBP and RSP in the window.
    case enter
    /// LEAVE: RBP in the window.
    case leave
  }

  public var mnemonic: String
  public var opcode: [UInt8]
  public var size: Size
  public var operands: Operands
  public var immediate: Immediate
  public var special: Special
  /// ModRM must name memory (LEA, CMPXCHG8B, MOVBE), or must name a register.
  public var memoryOnly: Bool
  public var registerOnly: Bool
  /// Accepts LOCK when its destination is memory.
  public var lockable: Bool
  /// Takes REP (F3) or REPE/REPNE (F2/F3); a mandatory F3 prefix is part of `opcode` instead.
  public var repeatable: Bool
  /// SSE/SSE2 forms: the bytes their memory operand spans (16 for m128, 8, 4, 2), which also
  /// makes the generator randomise XMM registers and MXCSR; 0 for every other form.
  public var vectorAccess: Int = 0
  /// x87 forms: the generator randomises the x87 registers, tags, FCW and FSW, and the tester
  /// compares them.
  public var x87 = false

  init(
    _ mnemonic: String, _ opcode: [UInt8], _ size: Size, _ operands: Operands, _ immediate: Immediate = .none,
    special: Special = .none, memoryOnly: Bool = false, registerOnly: Bool = false, lockable: Bool = false,
    repeatable: Bool = false
  ) {
    self.mnemonic = mnemonic
    self.opcode = opcode
    self.size = size
    self.operands = operands
    self.immediate = immediate
    self.special = special
    self.memoryOnly = memoryOnly
    self.registerOnly = registerOnly
    self.lockable = lockable
    self.repeatable = repeatable
  }
}
