/// The commonest instruction shapes, recognised once when a block is built so that `runBlock`
/// (BlockRun.swift) executes them without the dispatch switch and the size and byte-register
/// tests of the general handlers. Each does exactly what its general handler does for that
/// shape (the same `alu`, `read`, `write`, `push` and `branch` calls, the same flag formulas);
/// any other instruction is `.general` and goes through `execute`. BlockRunEquivalenceTests
/// runs every form both ways and compares the whole state and memory.
///
/// The cases are in three groups, by what `runBlock` must check after them:
/// - register forms touch no memory and cannot fault, stop the run or change what the
///   block loop depends on: nothing is checked after them but the block's end;
/// - memory forms (`firstMemory` up to `general`) may store into code, reach MMIO (an I/O
///   stop) or fault;
/// - `general` may do anything an instruction can.
/// Branches (Jcc, JMP, CALL, RET) end their block, so they sit with the forms of their group.
enum FastForm: UInt8 {
  // Register forms, 32- and 64-bit operands.
  /// ALU r/m, reg, ALU reg, r/m and ALU r/m, imm with register operands, one form per
  /// operation (ADD OR AND SUB XOR CMP: ADC/SBB are general), so that the flag record needs
  /// no second switch on `sub` (a second indirect jump per instruction). The destination is
  /// `rm`, the source `reg` or, for `aluRmImm`, the immediate: ALU reg, r/m is stored with
  /// `reg` and `rm` swapped (`blockShape`).
  case addRegister, orRegister, andRegister, subRegister, xorRegister, cmpRegister
  /// TEST r/m, reg and TEST r/m, imm with a register r/m.
  case testRegister, testRegisterImmediate
  case movRegister
  /// MOV reg, reg followed by SHL/SHR reg, imm (`mov edx, eax; shr edx, 16`: a two-operand
  /// ISA's copy before a shift): both in one dispatch, the shift with its own RIP; when the
  /// block's budget ends between them, only the MOV runs (`runBlocks`).
  case movRegisterShift
  case movRegisterImmediate
  case lea
  case incRegister, decRegister
  /// ROL, ROR and SAR of a register by an immediate count (`fastShift`).
  case shiftRegisterImmediate
  /// SHL/SAL and SHR of a register by an immediate count, written out in `runBlocks`
  /// (the commonest shifts: a call to `fastShift` and its switch showed in the profile).
  case shlRegisterImmediate, shrRegisterImmediate
  /// IMUL reg, r/m (0F AF) and IMUL reg, r/m, imm (69, 6B) with a register r/m.
  case imulRegister, imulRegisterImmediate
  /// MOVZX reg, r8/r16 with a register source (any operand size of the destination).
  case movzxRegister
  case jcc
  case jmpRelative
  /// Fused pairs: a flag-setting register form whose next instruction is a Jcc (the end of
  /// most loops: `dec ecx; jnz`, `cmp eax, edx; jbe`). The form does its own instruction as
  /// the unfused one does, then the Jcc that follows in the block in the same dispatch, with
  /// its own RIP and retirement; when the block's budget ends between the two, only the first
  /// runs (`runBlocks`). The Jcc keeps its own entry, as the target of neither form's switch.
  case addRegisterJcc, orRegisterJcc, andRegisterJcc, subRegisterJcc, xorRegisterJcc, cmpRegisterJcc
  case testRegisterJcc, testRegisterImmediateJcc
  case incRegisterJcc, decRegisterJcc

  // Memory forms.
  /// MOV reg, [memory].
  case load
  /// MOV [memory], reg.
  case store
  /// MOV [memory], imm.
  case storeImmediate
  /// ALU reg, [memory] (ADD OR AND SUB XOR CMP).
  case aluRegMemory
  /// ALU [memory], reg and ALU [memory], imm: read-modify-write, or a read for CMP.
  case aluMemoryRegister, aluMemoryImmediate
  case incMemory, decMemory
  /// MOVZX reg, m8/m16.
  case movzxMemory
  /// PUSH reg and POP reg (50+r, 58+r, FF /6 and 8F /0 with a register operand).
  case pushRegister, popRegister
  case callRelative
  /// RET without an immediate.
  case ret

  case general

  static let firstFused = FastForm.addRegisterJcc
  static let firstMemory = FastForm.load

  /// The fused form of a register form that sets flags, for when a Jcc follows it.
  var fusedWithJcc: FastForm? {
    switch self {
    case .addRegister: .addRegisterJcc
    case .orRegister: .orRegisterJcc
    case .andRegister: .andRegisterJcc
    case .subRegister: .subRegisterJcc
    case .xorRegister: .xorRegisterJcc
    case .cmpRegister: .cmpRegisterJcc
    case .testRegister: .testRegisterJcc
    case .testRegisterImmediate: .testRegisterImmediateJcc
    case .incRegister: .incRegisterJcc
    case .decRegister: .decRegisterJcc
    default: nil
    }
  }

  /// The register form of ALU operation `kind` (0 ADD, 1 OR, 4 AND, 5 SUB, 6 XOR, 7 CMP).
  static func aluRegister(_ kind: UInt8) -> FastForm {
    switch kind {
    case 0: .addRegister
    case 1: .orRegister
    case 4: .andRegister
    case 5: .subRegister
    case 6: .xorRegister
    default: .cmpRegister
    }
  }

  /// The instruction as the block stores it for `form`: ALU reg, r/m with a register r/m gets
  /// `reg` and `rm` swapped, so that every register ALU form writes `rm` (see `addRegister`).
  static func blockShape(_ d: DecodedInstruction, _ form: FastForm) -> DecodedInstruction {
    guard d.operation == .aluRegRm && form.rawValue < FastForm.jcc.rawValue else { return d }
    var shaped = d
    shaped.reg = d.rm
    shaped.rm = d.reg
    return shaped
  }

  init(_ d: DecodedInstruction) {
    self = .general
    switch d.operation {
    case .jcc: self = .jcc
    case .jmpRel: self = .jmpRelative
    case .callRel: self = .callRelative
    case .ret where d.immediate == 0: self = .ret
    case .pushRm where !d.isMemory: self = .pushRegister
    case .popRm where !d.isMemory: self = .popRegister
    // MOVZX's source size is in `sub`; the destination may be 16-bit (the mask then applies).
    case .movzx where d.operandSize >= 2: self = d.isMemory ? .movzxMemory : .movzxRegister
    default: break
    }
    guard self == .general, d.operandSize == 4 || d.operandSize == 8 else { return }
    let register = !d.isMemory
    let plainALU = d.sub != 2 && d.sub != 3
    switch d.operation {
    case .aluRmReg where plainALU: self = register ? FastForm.aluRegister(d.sub) : .aluMemoryRegister
    case .aluRegRm where plainALU: self = register ? FastForm.aluRegister(d.sub) : .aluRegMemory
    case .aluRmImm where plainALU: self = register ? FastForm.aluRegister(d.sub) : .aluMemoryImmediate
    case .testRmReg where register: self = .testRegister
    case .testRmImm where register: self = .testRegisterImmediate
    case .movRmReg: self = register ? .movRegister : .store
    case .movRegRm: self = register ? .movRegister : .load
    case .movRmImm: self = register ? .movRegisterImmediate : .storeImmediate
    case .lea: self = .lea
    case .incRm: self = register ? .incRegister : .incMemory
    case .decRm: self = register ? .decRegister : .decMemory
    case .shiftRm where register && (d.sub <= 1 || d.sub >= 4) && !d.has(DecodedInstruction.Flag.countInCL):
      switch d.sub {
      case 4, 6: self = .shlRegisterImmediate
      case 5: self = .shrRegisterImmediate
      default: self = .shiftRegisterImmediate
      }
    case .imulRegRm where register: self = .imulRegister
    case .imulRegRmImm where register: self = .imulRegisterImmediate
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

  /// IMUL reg, r/m (, imm) on registers: `imulRegRm`'s formula (MultiplyDivide.swift).
  @inline(__always)
  mutating func fastMultiply(_ destination: Int, _ source: UInt64, _ multiplier: UInt64, size: UInt8) {
    let product =
      Int128(Int64(bitPattern: signExtend(source, size: size)))
      * Int128(Int64(bitPattern: signExtend(multiplier, size: size)))
    let low = UInt64(truncatingIfNeeded: product) & sizeMask(size)
    state.gpr[destination] = low
    let overflow = Int128(Int64(bitPattern: signExtend(low, size: size))) != product
    state.setStatusFlags(result: low, size: size, carry: overflow, overflow: overflow)
  }

  /// SHL (`right` false) or SHR of a 32- or 64-bit register by an immediate count: `fastShift`'s
  /// arms, with lazy flags (`LazyFlags.Op.shift`).
  @inline(__always)
  mutating func fastShiftLeftRight(_ rm: Int, count rawCount: UInt64, size: UInt8, right: Bool) {
    let mask = sizeMask(size)
    let value = state.gpr[rm] & mask
    let count = rawCount & (size == 8 ? 0x3f : 0x1f)
    guard count != 0 else {
      state.gpr[rm] = value  // no flag changes; the register is still written
      return
    }
    let bits = UInt64(size) &* 8
    let result: UInt64
    let carry: UInt64
    let overflow: UInt64
    if right {
      result = value >> count
      carry = (value >> (count &- 1)) & 1
      overflow = value >> (bits &- 1) & 1
    } else {
      result = (value << count) & mask
      carry = (value >> (bits &- count)) & 1
      overflow = (result >> (bits &- 1) & 1) ^ carry
    }
    state.gpr[rm] = result
    state.setLazyFlags(.shift, size: size, result: result, destination: 0, source: overflow, carryIn: carry != 0)
  }

  /// ROL, ROR, SHL, SHR and SAR of a 32- or 64-bit register by an immediate count:
  /// `shiftRm`'s arms formula for formula (Shifts.swift), for counts below the width.
  @inline(__always)
  mutating func fastShift(_ kind: UInt8, _ rm: Int, count rawCount: UInt64, size: UInt8) {
    let mask = sizeMask(size)
    let value = state.gpr[rm] & mask
    let count = rawCount & (size == 8 ? 0x3f : 0x1f)
    // A count of 0 changes no flag; the register is still written (zero-extended).
    guard count != 0 else {
      state.gpr[rm] = value
      return
    }
    let bits = UInt64(size) &* 8
    let result: UInt64
    switch kind {
    case 0, 1:  // ROL, ROR: CF and OF only (the other flags stay)
      let left = kind == 0
      result = (left ? value << count | value >> (bits &- count) : value >> count | value << (bits &- count)) & mask
      let top = result >> (bits &- 1) & 1 != 0
      let carry = left ? result & 1 != 0 : top
      let overflow = left ? top != carry : top != (result >> (bits &- 2) & 1 != 0)
      state.materializeFlags()
      var flags = state.flagBits & ~(RFlagsBit.carry | RFlagsBit.overflow)
      if carry { flags |= RFlagsBit.carry }
      if overflow { flags |= RFlagsBit.overflow }
      state.flagBits = flags
    // The shifts' flags are recorded lazily (`LazyFlags.Op.shift`): SF, ZF and PF from the
    // result when asked, CF and OF as computed here, AF clear; `setStatusFlags`' eager
    // parity and sign showed in the profile.
    case 5:  // SHR
      result = value >> count
      let carry = (value >> (count &- 1)) & 1 != 0
      state.setLazyFlags(
        .shift, size: size, result: result, destination: 0, source: value >> (bits &- 1) & 1, carryIn: carry)
    case 7:  // SAR
      let signed = Int64(bitPattern: signExtend(value, size: size))
      result = UInt64(bitPattern: signed >> Int64(count)) & mask
      let carry = (signed >> Int64(count &- 1)) & 1 != 0
      state.setLazyFlags(.shift, size: size, result: result, destination: 0, source: 0, carryIn: carry)
    default:  // 4 SHL/SAL, 6
      result = (value << count) & mask
      let carry = (value >> (bits &- count)) & 1 != 0
      let overflow = (result >> (bits &- 1) & 1 != 0) != carry
      state.setLazyFlags(.shift, size: size, result: result, destination: 0, source: overflow ? 1 : 0, carryIn: carry)
    }
    state.gpr[rm] = result
  }
}
