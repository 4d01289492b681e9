/// One guest instruction of a block to translate: decoded, with its linear address and the
/// next instruction's (RIP after it).
struct JITInstruction {
  var d: DecodedInstruction
  var rip: UInt64
  var next: UInt64
}

/// Translates a block of decoded guest instructions into host code (X86JIT.swift runs it).
///
/// Guest and host are both x86-64, so each guest instruction becomes the same operation on
/// host registers at the same operand size, with the operands loaded from and stored back to
/// the context buffer (`JITLayout`): the host ALU computes the result and the arithmetic
/// flags. 32-bit results are stored as the zero-extended 64-bit host register (the
/// interpreter zero-extends 32-bit writes in every mode); 8- and 16-bit results are stored in
/// place, AH..BH at byte 1 of their register.
///
/// The guest flags live in the host's RFLAGS inside a block. Between blocks they live in the
/// context (`saveFlags`/`restoreFlags`): a block saves them before it leaves if it changed
/// them, and restores them first only if an instruction reads them before one writes all six
/// (an instruction that writes some, like INC, counts as a reader: what it keeps must be the
/// guest's). Nothing between a flag writer and its reader touches the host flags: the TLB
/// probe uses SHRX, NOT, LEA and JRCXZ, none of which writes flags.
///
/// Memory operands: the effective address at the guest's address size in RSI (flat segments
/// only: `X86Core.jitReady`), then the probe of the data TLB; a hit leaves the host delta in
/// RDI and the access is [rsi + rdi], a miss (or an access that crosses its page) exits
/// before the instruction. Every probe comes before anything of its instruction is written,
/// so an exit leaves the guest state at the instruction boundary.
struct JITTranslator {
  let mode: CodeMode
  /// Where in the code mapping these bytes go, and the exit stub's offset there.
  let base: Int
  let exitOffset: Int
  var asm = HostAssembler()
  private var stubs: [Stub] = []
  /// Number of guest instructions the block retires when it runs to its end.
  private var length = 0

  private enum Stub {
    /// A TLB miss at instruction `index`: leave with RIP there and the rest of the budget back.
    case miss(field: Int, index: Int, saveFlags: Bool)
    /// A direct branch to `target` that is not chained yet.
    case chain(field: Int, target: UInt64)
    case budget(field: Int)
  }

  private typealias R = HostAssembler.Register
  private typealias Operand = HostAssembler.Operand

  private var instructions: [JITInstruction] = []

  init(mode: CodeMode, base: Int, exitOffset: Int) {
    self.mode = mode
    self.base = base
    self.exitOffset = exitOffset
  }

  // MARK: The block

  /// The host code for `block` (instructions in order; the last may be a branch).
  mutating func translate(_ block: [JITInstruction]) -> [UInt8] {
    instructions = block
    length = 0
    while length < block.count && JITTranslator.translatable(block[length], mode) { length += 1 }
    guard length > 0 else {
      exit(.interpretOne, rip: block[0].rip, budgetBack: 0)
      return asm.bytes
    }
    // The budget: R14 -= the block's length; a borrow means fewer remain (exit, undo it).
    asm.emit([0x81], size: 8, reg: 5, .register(R.r14))
    asm.int32(Int32(length))
    stubs.append(.budget(field: asm.jump(if: 0x2)))  // JB
    let effects = block[0..<length].map { JITTranslator.flagEffect($0.d) }
    var restore = false
    for effect in effects {
      if effect.reads { restore = true }
      if effect.reads || effect.writesAll { break }
    }
    if restore { asm.restoreFlags(from: JITLayout.flags) }
    var dirty = restore
    for index in 0..<length {
      let instruction = block[index]
      let isLast = index == length - 1
      if isLast && length == block.count && emitBranch(instruction, index: index, dirty: dirty) {
        return finish()
      }
      emitInstruction(instruction, index: index, dirty: dirty)
      if effects[index].writesAny { dirty = true }
    }
    if dirty { asm.saveFlags(at: JITLayout.flags) }
    if length < block.count {
      // The next instruction is not translated: the interpreter runs it.
      exit(.interpretOne, rip: block[length].rip, budgetBack: 0)
    } else {
      chain(to: block[length - 1].next)
    }
    return finish()
  }

  private mutating func finish() -> [UInt8] {
    for stub in stubs {
      switch stub {
      case .miss(let field, let index, let saveFlags):
        asm.bind(field, to: asm.count)
        if saveFlags { asm.saveFlags(at: JITLayout.flags) }
        asm.store(R.rsi, .context(JITLayout.missAddress), size: 8)
        exit(.interpretOne, rip: instructions[index].rip, budgetBack: length - index)
      case .chain(let field, let target):
        asm.bind(field, to: asm.count)
        asm.moveImmediate(R.rax, UInt64(base + field))
        asm.store(R.rax, .context(JITLayout.patchField), size: 8)
        exit(.chain, rip: target, budgetBack: 0)
      case .budget(let field):
        asm.bind(field, to: asm.count)
        exit(.budget, rip: instructions[0].rip, budgetBack: length)
      }
    }
    return asm.bytes
  }

  /// Stores RIP, gives back `budgetBack` instructions (with LEA: no flags), puts the reason
  /// in RAX and jumps to the exit stub.
  private mutating func exit(_ reason: JITExit, rip: UInt64, budgetBack: Int) {
    asm.moveImmediate(R.rax, rip)
    asm.store(R.rax, .context(JITLayout.rip), size: 8)
    if budgetBack != 0 {
      asm.lea(R.r14, .memory(base: R.r14, index: nil, scale: 0, displacement: Int32(budgetBack)), size: 8)
    }
    asm.moveImmediate(R.rax, reason.rawValue)
    let field = asm.jump()
    asm.bind(field, to: exitOffset - base)
  }

  /// A JMP rel32 to `target`'s translation, through a chain stub until it is patched.
  private mutating func chain(to target: UInt64) {
    stubs.append(.chain(field: asm.jump(), target: target))
  }

  // MARK: What is translated

  struct FlagEffect {
    var reads = false
    var writesAll = false
    var writesAny = false
  }

  static func flagEffect(_ d: DecodedInstruction) -> FlagEffect {
    switch d.operation {
    case .aluRmReg, .aluRegRm, .aluRmImm:
      return FlagEffect(reads: d.sub == 2 || d.sub == 3, writesAll: true, writesAny: true)
    case .testRmReg, .testRmImm, .negRm, .imulRegRm, .imulRegRmImm:
      return FlagEffect(writesAll: true, writesAny: true)
    case .incRm, .decRm:
      return FlagEffect(reads: true, writesAny: true)
    case .shiftRm:
      if d.has(DecodedInstruction.Flag.countInCL) { return FlagEffect(reads: true, writesAny: true) }
      let count = d.immediate & (d.operandSize == 8 ? 63 : 31)
      if count == 0 { return FlagEffect() }
      let kind = d.sub == 6 ? 4 : d.sub
      return kind >= 4 ? FlagEffect(writesAll: true, writesAny: true) : FlagEffect(reads: true, writesAny: true)
    case .jcc, .setcc, .cmovcc:
      return FlagEffect(reads: true)
    default:
      return FlagEffect()
    }
  }

  /// The width of stack slots and of RSP updates (flat 32-bit stacks have SS.B set).
  private static func stackWidth(_ mode: CodeMode) -> UInt8 { mode == .bits64 ? 8 : 4 }

  private static func canonical(_ address: UInt64) -> Bool {
    UInt64(bitPattern: Int64(bitPattern: address << 16) >> 16) == address
  }

  static func branchTarget(_ instruction: JITInstruction) -> UInt64 {
    let d = instruction.d
    return (instruction.next &+ d.immediate) & sizeMask(d.operandSize)
  }

  static func translatable(_ instruction: JITInstruction, _ mode: CodeMode) -> Bool {
    let d = instruction.d
    if d.has(DecodedInstruction.Flag.lock) { return false }
    if d.isMemory {
      if d.addressSize == 2 { return false }
      // FS and GS: their bases in 64-bit mode (no limits there); outside it they have limits.
      let segment = d.segment
      let fsOrGS = segment == SegmentName.fs.rawValue || segment == SegmentName.gs.rawValue
      if mode != .bits64 && (fsOrGS || segment == SegmentName.cs.rawValue) { return false }
      let hasRegister = d.base != DecodedInstruction.Register.none || d.index != DecodedInstruction.Register.none
      if hasRegister && d.base != DecodedInstruction.Register.rip && d.addressSize == 8
        && Int64(bitPattern: d.displacement) != Int64(Int32(truncatingIfNeeded: d.displacement))
      {
        return false
      }
    }
    let width = stackWidth(mode)
    switch d.operation {
    case .aluRmReg, .aluRegRm, .aluRmImm, .testRmReg, .testRmImm, .incRm, .decRm, .notRm, .negRm, .movRmReg,
      .movRegRm, .movRmImm, .movzx, .movsx, .cmovcc, .setcc, .nop:
      return true
    case .imulRegRm, .imulRegRmImm:
      return d.operandSize != 1
    case .movsxd:
      return d.operandSize == 8
    case .lea:
      return true
    case .shiftRm, .xchgRmReg:
      return !d.isMemory
    case .pushRm, .popRm:
      return !d.isMemory && d.operandSize == width
    case .pushImm:
      return d.operandSize == width
    case .jcc, .jmpRel:
      return mode != .bits64 || canonical(branchTarget(instruction))
    case .callRel:
      return d.operandSize == width && (mode != .bits64 || canonical(branchTarget(instruction)))
    case .ret:
      return d.immediate == 0 && d.operandSize == width
    default:
      return false
    }
  }

  // MARK: Operands

  /// A guest register as a context field: AH..BH (no REX) are byte 1 of RAX..RBX.
  private func register(_ index: UInt8, size: UInt8, _ d: DecodedInstruction) -> Operand {
    if size == 1 && index & 0xc == 4 && !d.has(DecodedInstruction.Flag.rex) {
      return .context(JITLayout.gpr + 8 * Int(index & 3) + 1)
    }
    return .context(JITLayout.gpr + 8 * Int(index & 15))
  }

  /// Writes host `host` to a guest register as the interpreter's `setRegister` does: a 32-bit
  /// value (zero-extended in the host register) as 64 bits, narrower ones in place.
  private mutating func storeRegister(_ host: UInt8, _ index: UInt8, size: UInt8, _ d: DecodedInstruction) {
    asm.store(host, register(index, size: size, d), size: size == 4 ? 8 : size)
  }

  /// The linear address of `d`'s memory operand into RSI: the effective address wrapped to
  /// its address size, plus FS's or GS's base for those segments (64-bit mode only).
  private mutating func linearAddress(_ instruction: JITInstruction) {
    effectiveAddress(instruction)
    let segment = instruction.d.segment
    guard segment == SegmentName.fs.rawValue || segment == SegmentName.gs.rawValue else { return }
    let base = segment == SegmentName.fs.rawValue ? JITLayout.fsBase : JITLayout.gsBase
    asm.load(R.rcx, .context(base), size: 8)
    asm.lea(R.rsi, .memory(base: R.rsi, index: R.rcx, scale: 0, displacement: 0), size: 8)
  }

  /// The effective address of `d`'s memory operand into RSI, wrapped to its address size.
  private mutating func effectiveAddress(_ instruction: JITInstruction) {
    let d = instruction.d
    let wide: UInt8 = d.addressSize == 8 ? 8 : 4
    if d.base == DecodedInstruction.Register.rip {
      asm.moveImmediate(R.rsi, instruction.next &+ d.displacement)
      return
    }
    let hasBase = d.base != DecodedInstruction.Register.none
    let hasIndex = d.index != DecodedInstruction.Register.none
    guard hasBase || hasIndex else {
      asm.moveImmediate(R.rsi, d.displacement & sizeMask(wide))
      return
    }
    if hasBase { asm.load(R.rsi, .context(JITLayout.gpr + 8 * Int(d.base & 15)), size: 8) }
    if hasIndex { asm.load(R.rdi, .context(JITLayout.gpr + 8 * Int(d.index & 15)), size: 8) }
    asm.lea(
      R.rsi,
      .memory(
        base: hasBase ? R.rsi : nil, index: hasIndex ? R.rdi : nil, scale: d.scale,
        displacement: Int32(truncatingIfNeeded: d.displacement)), size: wide)
  }

  /// The TLB probe for an access of `size` bytes at linear RSI (see the type's comment). A hit
  /// falls through with the host delta in RDI; uses RCX and RDX.
  private mutating func probe(size: UInt8, write: Bool, index: Int, dirty: Bool) {
    let tags = write ? JITLayout.writeTags : JITLayout.readTags
    let deltas = write ? JITLayout.writeDeltas : JITLayout.readDeltas
    asm.shrx(R.rdx, R.rsi, count: R.r12)  // the first byte's page
    asm.emit([0x0f, 0xb6], size: 4, reg: R.rdx, .register(R.rdx))  // MOVZX EDX, DL: the slot
    let wide: UInt8 = mode == .bits64 ? 8 : 4
    asm.lea(R.rcx, .memory(base: R.rsi, index: nil, scale: 0, displacement: Int32(size) - 1), size: wide)
    asm.shrx(R.rcx, R.rcx, count: R.r12)  // the last byte's page
    asm.not64(R.rcx)
    asm.load(R.rdi, .memory(base: R.rbx, index: R.rdx, scale: 3, displacement: Int32(tags)), size: 8)
    // RCX = tag - last page: zero only when the slot (of the first page) holds the last page,
    // so both bytes lie in the slot's page.
    asm.lea(R.rcx, .memory(base: R.rcx, index: R.rdi, scale: 0, displacement: 1), size: 8)
    asm.byte(0xe3)  // JRCXZ over the miss jump
    asm.byte(5)
    stubs.append(.miss(field: asm.jump(), index: index, saveFlags: dirty))
    asm.load(R.rdi, .memory(base: R.rbx, index: R.rdx, scale: 3, displacement: Int32(deltas)), size: 8)
  }

  /// The r/m operand after the memory operand's address and probe (if any).
  private mutating func rmOperand(
    _ instruction: JITInstruction, size: UInt8, write: Bool, index: Int, dirty: Bool
  ) -> Operand {
    let d = instruction.d
    guard d.isMemory else { return register(d.rm, size: size, d) }
    linearAddress(instruction)
    probe(size: size, write: write, index: index, dirty: dirty)
    return .guestData
  }

  /// RSP's value at the stack width into RSI.
  private mutating func loadStackPointer() {
    asm.load(R.rsi, .context(JITLayout.gpr + 8 * 4), size: JITTranslator.stackWidth(mode))
  }

  /// RSI + `delta` at the stack width, stored as the guest's RSP.
  private mutating func storeStackPointer(adding delta: Int32) {
    let width = JITTranslator.stackWidth(mode)
    asm.lea(R.rsi, .memory(base: R.rsi, index: nil, scale: 0, displacement: delta), size: width)
    asm.store(R.rsi, .context(JITLayout.gpr + 8 * 4), size: 8)
  }

  // MARK: Instructions

  private mutating func emitInstruction(_ instruction: JITInstruction, index: Int, dirty: Bool) {
    let d = instruction.d
    let size = d.operandSize
    let mask = sizeMask(size)
    switch d.operation {
    case .aluRmReg, .aluRmImm:
      let operand = rmOperand(instruction, size: size, write: d.sub != 7, index: index, dirty: dirty)
      if d.operation == .aluRmImm {
        asm.moveImmediate(R.rcx, d.immediate & mask)
      } else {
        asm.load(R.rcx, register(d.reg, size: size, d), size: size)
      }
      if d.isMemory {
        asm.alu(d.sub, operand, R.rcx, size: size)
      } else {
        asm.load(R.rax, operand, size: size)
        asm.alu(d.sub, .register(R.rax), R.rcx, size: size)
        if d.sub != 7 { storeRegister(R.rax, d.rm, size: size, d) }
      }
    case .aluRegRm:
      let operand = rmOperand(instruction, size: size, write: false, index: index, dirty: dirty)
      asm.load(R.rax, register(d.reg, size: size, d), size: size)
      asm.alu(d.sub, R.rax, operand, size: size)
      if d.sub != 7 { storeRegister(R.rax, d.reg, size: size, d) }
    case .testRmReg, .testRmImm:
      let operand = rmOperand(instruction, size: size, write: false, index: index, dirty: dirty)
      if d.operation == .testRmImm {
        asm.moveImmediate(R.rcx, d.immediate & mask)
      } else {
        asm.load(R.rcx, register(d.reg, size: size, d), size: size)
      }
      asm.test(operand, R.rcx, size: size)
    case .incRm, .decRm, .notRm, .negRm:
      let kind: UInt8 =
        switch d.operation {
        case .incRm: 0
        case .decRm: 1
        case .notRm: 2
        default: 3
        }
      let operand = rmOperand(instruction, size: size, write: true, index: index, dirty: dirty)
      if d.isMemory {
        asm.unary(kind, operand, size: size)
      } else {
        asm.load(R.rax, operand, size: size)
        asm.unary(kind, .register(R.rax), size: size)
        storeRegister(R.rax, d.rm, size: size, d)
      }
    case .shiftRm:
      let kind = d.sub == 6 ? 4 : d.sub
      asm.load(R.rax, register(d.rm, size: size, d), size: size)
      if d.has(DecodedInstruction.Flag.countInCL) {
        asm.load(R.rcx, .context(JITLayout.gpr + 8), size: 1)
        asm.shiftByCL(kind, .register(R.rax), size: size)
      } else {
        asm.shift(kind, .register(R.rax), count: UInt8(truncatingIfNeeded: d.immediate), size: size)
      }
      storeRegister(R.rax, d.rm, size: size, d)
    case .imulRegRm:
      let operand = rmOperand(instruction, size: size, write: false, index: index, dirty: dirty)
      asm.load(R.rax, register(d.reg, size: size, d), size: size)
      asm.imul(R.rax, operand, size: size)
      storeRegister(R.rax, d.reg, size: size, d)
    case .imulRegRmImm:
      let operand = rmOperand(instruction, size: size, write: false, index: index, dirty: dirty)
      asm.moveImmediate(R.rax, d.immediate & mask)
      asm.imul(R.rax, operand, size: size)
      storeRegister(R.rax, d.reg, size: size, d)
    case .movRmReg:
      let operand = rmOperand(instruction, size: size, write: true, index: index, dirty: dirty)
      asm.load(R.rax, register(d.reg, size: size, d), size: size)
      if d.isMemory { asm.store(R.rax, operand, size: size) } else { storeRegister(R.rax, d.rm, size: size, d) }
    case .movRegRm:
      let operand = rmOperand(instruction, size: size, write: false, index: index, dirty: dirty)
      asm.load(R.rax, operand, size: size)
      storeRegister(R.rax, d.reg, size: size, d)
    case .movRmImm:
      let operand = rmOperand(instruction, size: size, write: true, index: index, dirty: dirty)
      asm.moveImmediate(R.rax, d.immediate & mask)
      if d.isMemory { asm.store(R.rax, operand, size: size) } else { storeRegister(R.rax, d.rm, size: size, d) }
    case .movzx, .movsx, .movsxd:
      let sourceSize: UInt8 = d.operation == .movsxd ? 4 : d.sub
      let operand = rmOperand(instruction, size: sourceSize, write: false, index: index, dirty: dirty)
      switch d.operation {
      case .movzx: asm.load(R.rax, operand, size: sourceSize)
      case .movsx: asm.emit([0x0f, sourceSize == 1 ? 0xbe : 0xbf], size: size == 8 ? 8 : 4, reg: R.rax, operand)
      default: asm.emit([0x63], size: 8, reg: R.rax, operand)
      }
      storeRegister(R.rax, d.reg, size: size, d)
    case .lea:
      effectiveAddress(instruction)
      if size == 4 && d.addressSize == 8 { asm.move(R.rsi, R.rsi, size: 4) }
      storeRegister(R.rsi, d.reg, size: size, d)
    case .xchgRmReg:
      asm.load(R.rax, register(d.rm, size: size, d), size: size)
      asm.load(R.rcx, register(d.reg, size: size, d), size: size)
      storeRegister(R.rax, d.reg, size: size, d)
      storeRegister(R.rcx, d.rm, size: size, d)
    case .cmovcc:
      let operand = rmOperand(instruction, size: size, write: false, index: index, dirty: dirty)
      asm.load(R.rax, register(d.reg, size: size, d), size: size)
      asm.cmov(d.sub, R.rax, operand, size: size)
      storeRegister(R.rax, d.reg, size: size, d)
    case .setcc:
      let operand = rmOperand(instruction, size: 1, write: true, index: index, dirty: dirty)
      asm.setcc(d.sub, .register(R.rax))
      if d.isMemory { asm.store(R.rax, operand, size: 1) } else { storeRegister(R.rax, d.rm, size: 1, d) }
    case .pushRm, .pushImm:
      loadStackPointer()
      asm.lea(R.rsi, .memory(base: R.rsi, index: nil, scale: 0, displacement: -Int32(size)), size: size)
      probe(size: size, write: true, index: index, dirty: dirty)
      if d.operation == .pushImm {
        asm.moveImmediate(R.rax, d.immediate & mask)
      } else {
        asm.load(R.rax, register(d.rm, size: size, d), size: size)
      }
      asm.store(R.rax, .guestData, size: size)
      storeStackPointer(adding: 0)
    case .popRm:
      loadStackPointer()
      probe(size: size, write: false, index: index, dirty: dirty)
      asm.load(R.rax, .guestData, size: size)
      storeStackPointer(adding: Int32(size))
      storeRegister(R.rax, d.rm, size: size, d)
    case .nop:
      break
    default:
      preconditionFailure("untranslatable instruction reached the emitter")
    }
  }

  /// The block's last instruction when it transfers control: emits it with the block's end
  /// (flags saved, then chained jumps). False when `instruction` is not a branch.
  private mutating func emitBranch(_ instruction: JITInstruction, index: Int, dirty: Bool) -> Bool {
    let d = instruction.d
    switch d.operation {
    case .jcc:
      if dirty { asm.saveFlags(at: JITLayout.flags) }  // LAHF/SETO leave the flags for the Jcc
      stubs.append(.chain(field: asm.jump(if: d.sub), target: JITTranslator.branchTarget(instruction)))
      chain(to: instruction.next)
    case .jmpRel:
      if dirty { asm.saveFlags(at: JITLayout.flags) }
      chain(to: JITTranslator.branchTarget(instruction))
    case .callRel:
      let size = d.operandSize
      loadStackPointer()
      asm.lea(R.rsi, .memory(base: R.rsi, index: nil, scale: 0, displacement: -Int32(size)), size: size)
      probe(size: size, write: true, index: index, dirty: dirty)
      asm.moveImmediate(R.rax, instruction.next & sizeMask(size))
      asm.store(R.rax, .guestData, size: size)
      storeStackPointer(adding: 0)
      if dirty { asm.saveFlags(at: JITLayout.flags) }
      chain(to: JITTranslator.branchTarget(instruction))
    case .ret:
      // The return address from the stack; the jump cache gives its translation, and RSP moves
      // only on a hit: a miss leaves the RET to the interpreter, which also checks the target.
      let size = d.operandSize
      loadStackPointer()
      probe(size: size, write: false, index: index, dirty: dirty)
      asm.load(R.rcx, .guestData, size: size)
      if dirty { asm.saveFlags(at: JITLayout.flags) }
      asm.move(R.rdx, R.rcx, size: 4)
      asm.emit([0x81], size: 4, reg: 4, .register(R.rdx))  // AND EDX, jumpSlots - 1
      asm.int32(Int32(JITLayout.jumpSlots - 1))
      asm.emit([0xc1], size: 4, reg: 4, .register(R.rdx))  // SHL EDX, 4
      asm.byte(4)
      let slot = Operand.memory(base: R.rbx, index: R.rdx, scale: 0, displacement: Int32(JITLayout.jumpCache))
      asm.alu(7, R.rcx, slot, size: 8)  // CMP RCX, [slot]
      stubs.append(.miss(field: asm.jump(if: 0x5), index: index, saveFlags: false))  // JNE
      storeStackPointer(adding: Int32(size))
      asm.emit(
        [0xff], size: 4, reg: 4,
        .memory(base: R.rbx, index: R.rdx, scale: 0, displacement: Int32(JITLayout.jumpCache + 8)))  // JMP [slot + 8]
    default:
      return false
    }
    return true
  }
}
