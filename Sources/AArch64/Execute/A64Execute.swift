/// One instruction's semantics, by operation (the ARM ARM's pseudocode in C6, "A64 Base
/// Instruction Descriptions"). The PC already points past the instruction when this runs;
/// a throw leaves the architectural state as before it (the step puts the PC back).
extension A64Core {
  @inline(__always)
  mutating func execute(_ i: A64Instruction, at pc: UInt64) throws(A64Exception) {
    switch i.operation {
    case .undefined: throw .undefined
    case .adr: state.setRegister(i.rd, pc &+ i.imm)
    case .adrp: state.setRegister(i.rd, (pc & ~0xfff) &+ i.imm)
    case .addSubImmediate: addSubImmediate(i)
    case .logicalImmediate: logicalImmediate(i)
    case .moveWide: moveWide(i)
    case .bitfield: bitfield(i)
    case .extract: extract(i)
    case .branch: state.pc = pc &+ i.imm
    case .branchLink:
      state.x[30] = pc &+ 4
      state.pc = pc &+ i.imm
    case .branchConditional:
      if conditionHolds(i.condition) { state.pc = pc &+ i.imm }
    case .compareBranch:
      let value = i.is64 ? reg(i.rd) : reg(i.rd) & 0xffff_ffff
      if (value == 0) == (i.variant == 0) { state.pc = pc &+ i.imm }
    case .testBranch:
      let bit = reg(i.rd) >> i.imm2 & 1
      if (bit == 0) == (i.variant == 0) { state.pc = pc &+ i.imm }
    case .branchRegister:
      let target = reg(i.rn)
      if i.variant == 1 { state.x[30] = pc &+ 4 }
      state.pc = target
    case .exceptionReturn: try exceptionReturn()
    case .exceptionGeneration: try exceptionGeneration(i, at: pc)
    case .hint: hint(i)
    case .clearExclusive: state.exclusive = nil
    case .barrier: break  // one CPU in program order: barriers have nothing to order here
    case .msrImmediate: try msrImmediate(i)
    case .system: try systemInstruction(i)
    case .mrs:
      state.setRegister(i.rd, try readSystemRegister(SystemRegisterName(encoding: UInt16(i.imm2)), word: i.raw))
    case .msr: try writeSystemRegister(SystemRegisterName(encoding: UInt16(i.imm2)), reg(i.rd), word: i.raw)
    case .loadStore: try loadStore(i, at: pc)
    case .loadStorePair: try loadStorePair(i)
    case .loadExclusive: try loadExclusive(i)
    case .storeExclusive: try storeExclusive(i)
    case .loadExclusivePair: try loadExclusivePair(i)
    case .storeExclusivePair: try storeExclusivePair(i)
    case .loadAcquire: try loadAcquire(i)
    case .storeRelease: try storeRelease(i)
    case .logicalShifted: logicalShifted(i)
    case .addSubShifted: addSubShifted(i)
    case .addSubExtended: addSubExtended(i)
    case .addSubCarry: addSubCarry(i)
    case .conditionalCompare: conditionalCompare(i)
    case .conditionalSelect: conditionalSelect(i)
    case .dataProcessing1: dataProcessing1(i)
    case .dataProcessing2: dataProcessing2(i)
    case .dataProcessing3: dataProcessing3(i)
    case .fpDataProcessing1: try fpDataProcessing1(i)
    case .fpDataProcessing2: try fpDataProcessing2(i)
    case .fpDataProcessing3: try fpDataProcessing3(i)
    case .fpCompare: try fpCompare(i)
    case .fpConditionalCompare: try fpConditionalCompare(i)
    case .fpConditionalSelect: try fpConditionalSelect(i)
    case .fpMoveImmediate: try fpMoveImmediate(i)
    case .fpConvertInteger: try fpConvertInteger(i)
    case .fmovGeneral: try fmovGeneral(i)
    case .simdThreeSame: try simdThreeSame(i)
    case .simdTwoRegisterMisc: try simdTwoRegisterMisc(i)
    case .simdAcrossLanes: try simdAcrossLanes(i)
    case .simdCopy: try simdCopy(i)
    case .simdModifiedImmediate: try simdModifiedImmediate(i)
    case .simdShiftImmediate: try simdShiftImmediate(i)
    case .simdPermute: try simdPermute(i)
    case .simdExtract: try simdExtract(i)
    case .simdTableLookup: try simdTableLookup(i)
    case .simdThreeDifferent: try simdThreeDifferent(i)
    case .simdLoadStoreSingle: try simdLoadStoreSingle(i)
    case .simdByElement: try simdByElement(i)
    case .simdLoadStoreMultiple: try simdLoadStoreMultiple(i)
    }
  }

  /// ConditionHolds (J1.3): the condition codes over NZCV.
  @inline(__always)
  func conditionHolds(_ condition: UInt8) -> Bool {
    let flags = state.pstate.nzcv
    let n = flags & PState.n != 0
    let z = flags & PState.z != 0
    let c = flags & PState.c != 0
    let v = flags & PState.v != 0
    let result: Bool
    switch condition >> 1 {
    case 0: result = z
    case 1: result = c
    case 2: result = n
    case 3: result = v
    case 4: result = c && !z
    case 5: result = n == v
    case 6: result = n == v && !z
    default: result = true
    }
    return condition & 1 != 0 && condition != 15 ? !result : result
  }
}
