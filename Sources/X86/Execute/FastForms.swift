/// The commonest instruction shapes, recognised once when a block is built so that `runBlock`
/// (BlockRun.swift) executes them without the dispatch switch and the size and byte-register tests of the
/// general handlers: 32- and 64-bit register and plain memory forms of MOV, LEA, the ALU
/// operations without carry-in, INC and DEC, shifts by an immediate, and Jcc. Each does exactly what its general
/// handler does for that shape (the same `alu`, `read`, `write` and `branch` calls); any other
/// instruction is `.general` and goes through `execute`.
enum FastForm: UInt8 {
  case general
  /// ALU r/m, reg with a register r/m (ADD OR AND SUB XOR CMP: no ADC/SBB).
  case aluRmRegister
  /// ALU reg, r/m with a register r/m.
  case aluRegRegister
  /// ALU r/m, imm with a register r/m.
  case aluRegisterImmediate
  case movRegister
  case movRegisterImmediate
  /// MOV reg, [memory].
  case load
  /// MOV [memory], reg.
  case store
  case lea
  case incRegister, decRegister
  /// SHL/SAL, SHR, SAR of a register by an immediate count.
  case shiftRegisterImmediate
  case jcc

  init(_ d: DecodedInstruction) {
    self = .general
    guard d.operandSize == 4 || d.operandSize == 8 else {
      if d.operation == .jcc { self = .jcc }
      return
    }
    let register = !d.isMemory
    let plainALU = d.sub != 2 && d.sub != 3
    switch d.operation {
    case .aluRmReg where register && plainALU: self = .aluRmRegister
    case .aluRegRm where register && plainALU: self = .aluRegRegister
    case .aluRmImm where register && plainALU: self = .aluRegisterImmediate
    case .movRmReg: self = register ? .movRegister : .store
    case .movRegRm: self = register ? .movRegister : .load
    case .movRmImm where register: self = .movRegisterImmediate
    case .lea: self = .lea
    case .incRm where register: self = .incRegister
    case .decRm where register: self = .decRegister
    case .shiftRm where register && d.sub >= 4 && !d.has(DecodedInstruction.Flag.countInCL):
      self = .shiftRegisterImmediate
    case .jcc: self = .jcc
    default: break
    }
  }
}

extension X86Core {
  /// The dispatch switch for the instruction at `index` of the block cache, kept out of line
  /// so that the fast forms around it stay small in `runBlock`'s loop. It takes the index, not
  /// the instruction: passing the 40-byte value made the loop copy every instruction to the
  /// stack with two 16-byte stores and read its fields back with 8-byte loads, which the
  /// store-to-load forwarding of this AMD EPYC does not serve (the loop's largest stall).
  @inline(never)
  mutating func executeGeneral(at index: Int) throws(X86Exception) {
    try execute(decodeCache.blocks.entries[index].instruction)
  }
}
