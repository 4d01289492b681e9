/// `run` executes decoded blocks (`BlockCache`): one fetch, translation and lookup per block,
/// then its instructions back to back, each with exactly the per-instruction semantics of
/// `step()`: RIP set before it executes, the CS limit checked outside 64-bit mode (once for
/// the whole block), RIP put back on a fault, one retirement (and one TSC tick) each. Common
/// shapes skip the dispatch switch (`FastForm`).
///
/// Retirements are counted in a local and added to `retiredInstructions` and the TSC before
/// anything that can read them (a memory access may reach a device, a general instruction
/// may read the TSC, a fault is delivered) and when the run returns: register forms cost
/// no counter updates.
///
/// A block stops early, leaving the rest to the next lookup, after an instruction that asked
/// for an I/O stop, stored into a code page (the next instruction may be new), set a
/// watch stop, opened the window for a waiting interrupt or armed the debug path (TF, RF,
/// breakpoints, watch ranges). Only general instructions can do the last three, and only
/// memory forms and general instructions the first two, so register forms check nothing
/// but the block's end. The interrupt shadow is the first instruction's alone: STI, MOV SS
/// and POP SS end their blocks, so the next block's first instruction is the one they shadow.
/// When a block ends with nothing to report, the next one is looked up in the same call.
///
/// Two pairs run in one dispatch (FastForms.swift): a flag-setting register form and the
/// Jcc ending its block, and MOV reg, reg with a following SHL/SHR by an immediate. Each
/// instruction of a pair still gets its own RIP and retirement; a budget that ends between
/// the two stops after the first, and a fault on the Jcc leaves the first retired.
extension X86Core {
  /// Runs blocks from RIP until `budget` (at least 1) instructions retired or something
  /// needs `run`'s attention; nil when nothing ran because there is no block at RIP (the
  /// fetch faults, the code is not in RAM, the first instruction crosses its page, RIP would
  /// wrap inside the block): `run` then steps, and the step reports any fault.
  mutating func runBlocks(budget: UInt64) -> (executed: UInt64, stop: StepResult)? {
    let retiredAtStart = retiredInstructions
    while true {
      guard let slot = blockAtRIP() else {
        return retiredInstructions == retiredAtStart ? nil : (retiredInstructions &- retiredAtStart, .retired)
      }
      let count = UInt64(decodeCache.blocks.headers[slot].count)
      let first = slot &* BlockCache.maximumLength
      // With host breakpoints armed (and nothing else: `run`), a block holding one is left to
      // `step()`, which checks each instruction; every other block runs as usual.
      if debug.armed != 0 && blockMeetsExecuteRange(first: first, count: Int(count)) {
        return retiredInstructions == retiredAtStart ? nil : (retiredInstructions &- retiredAtStart, .retired)
      }
      let shadow = state.interruptShadow
      // A waiting interrupt held off by the first instruction's shadow is let in after it.
      let length = interruptLine && shadow ? 1 : min(count, budget &- (retiredInstructions &- retiredAtStart))
      let end = first &+ Int(truncatingIfNeeded: length)
      // RIP of each instruction from the block's: no wrap inside a block (`blockAtRIP`).
      let blockRIP = state.rip
      var index = first
      // Instructions before `recorded` are counted in `retiredInstructions` and the TSC.
      var recorded = first
      state.interruptShadow = false
      decodeCache.codeWritten = false
      instructions: while true {
        let entry = decodeCache.blocks.entries[index]
        let d = entry.instruction
        let form = entry.form
        let next = blockRIP &+ UInt64(entry.end)
        // Register forms neither fault nor read RIP (but LEA and the branches, which set it):
        // RIP is stored only before the others and when the block stops after one of them.
        if form.rawValue >= FastForm.firstMemory.rawValue {
          state.rip = next
          let unrecorded = UInt64(truncatingIfNeeded: index &- recorded)
          retiredInstructions &+= unrecorded
          state.tsc &+= unrecorded
          recorded = index
        }
        do throws(X86Exception) {
          // The fast forms (FastForms.swift) written out here: as functions marked
          // `@inline(__always)` the optimiser still called them, copying the instruction.
          let mask: UInt64 = d.operandSize == 8 ? .max : 0xffff_ffff
          switch form {
          // Register ALU forms: destination `rm`, source `reg` or the immediate (FastForms.swift).
          case .addRegister, .addRegisterJcc:
            let rm = Int(d.rm & 15)
            let destination = state.gpr[rm] & mask
            let source = (d.operation == .aluRmImm ? d.immediate : state.gpr[Int(d.reg & 15)]) & mask
            let result = (destination &+ source) & mask
            state.gpr[rm] = result
            state.setLazyFlags(.add, size: d.operandSize, result: result, destination: destination, source: source)
          case .subRegister, .subRegisterJcc, .cmpRegister, .cmpRegisterJcc:
            let rm = Int(d.rm & 15)
            let destination = state.gpr[rm] & mask
            let source = (d.operation == .aluRmImm ? d.immediate : state.gpr[Int(d.reg & 15)]) & mask
            let result = (destination &- source) & mask
            if form == .subRegister || form == .subRegisterJcc { state.gpr[rm] = result }
            state.setLazyFlags(.sub, size: d.operandSize, result: result, destination: destination, source: source)
          case .orRegister, .orRegisterJcc, .andRegister, .andRegisterJcc, .xorRegister, .xorRegisterJcc:
            // Logic: CF = OF = 0 from the record; a select, not a jump, picks the operation.
            let rm = Int(d.rm & 15)
            let destination = state.gpr[rm] & mask
            let source = (d.operation == .aluRmImm ? d.immediate : state.gpr[Int(d.reg & 15)]) & mask
            let or = destination | source
            let and = destination & source
            let xor = destination ^ source
            let result =
              form == .xorRegister || form == .xorRegisterJcc
              ? xor : (form == .orRegister || form == .orRegisterJcc ? or : and)
            state.gpr[rm] = result
            state.setLazyFlags(.logic, size: d.operandSize, result: result, destination: destination, source: source)
          case .testRegister, .testRegisterJcc:
            let result = state.gpr[Int(d.rm & 15)] & state.gpr[Int(d.reg & 15)] & mask
            state.setLazyFlags(.logic, size: d.operandSize, result: result, destination: result, source: result)
          case .testRegisterImmediate, .testRegisterImmediateJcc:
            let result = state.gpr[Int(d.rm & 15)] & d.immediate & mask
            state.setLazyFlags(.logic, size: d.operandSize, result: result, destination: result, source: result)
          case .movRegister, .movRegisterShift:
            // MOV r/m, reg (89) copies reg into rm; MOV reg, r/m (8B) the other way.
            if d.operation == .movRmReg {
              state.gpr[Int(d.rm & 15)] = state.gpr[Int(d.reg & 15)] & mask
            } else {
              state.gpr[Int(d.reg & 15)] = state.gpr[Int(d.rm & 15)] & mask
            }
            if form == .movRegisterShift {
              // The SHL/SHR that follows, in the same dispatch, unless the budget ends first.
              index &+= 1
              if index == end {
                state.rip = next
                break instructions
              }
              let shift = decodeCache.blocks.entries[index]
              fastShiftLeftRight(
                Int(shift.instruction.rm & 15), count: shift.instruction.immediate,
                size: shift.instruction.operandSize, right: shift.form == .shrRegisterImmediate)
            }
          case .movRegisterImmediate:
            state.gpr[Int(d.rm & 15)] = d.immediate & mask
          case .lea:
            state.rip = next  // RIP-relative addresses
            state.gpr[Int(d.reg & 15)] = effectiveAddress(d) & mask
          case .incRegister, .decRegister, .incRegisterJcc, .decRegisterJcc:
            let rm = Int(d.rm & 15)
            let value = state.gpr[rm] & mask
            let increment = form == .incRegister || form == .incRegisterJcc
            let result = (increment ? value &+ 1 : value &- 1) & mask
            state.gpr[rm] = result
            state.setLazyFlags(
              increment ? .inc : .dec, size: d.operandSize, result: result, destination: value, source: 1,
              carryIn: state.lazy.quickCarry(flagBits: state.flagBits))
          case .shiftRegisterImmediate:
            fastShift(d.sub, Int(d.rm & 15), count: d.immediate, size: d.operandSize)
          case .shlRegisterImmediate, .shrRegisterImmediate:
            fastShiftLeftRight(
              Int(d.rm & 15), count: d.immediate, size: d.operandSize, right: form == .shrRegisterImmediate)
          case .imulRegister:
            let reg = Int(d.reg & 15)
            fastMultiply(reg, state.gpr[Int(d.rm & 15)], state.gpr[reg], size: d.operandSize)
          case .imulRegisterImmediate:
            fastMultiply(Int(d.reg & 15), state.gpr[Int(d.rm & 15)], d.immediate, size: d.operandSize)
          case .movzxRegister:
            setRegOperand(d, register(d.rm, size: d.sub, d))
          case .jcc:
            state.rip = next
            if state.lazy.condition(d.sub, flagBits: state.flagBits) {
              try branch(to: next &+ d.immediate, size: d.operandSize)
            }
          case .jmpRelative:
            state.rip = next
            try branch(to: next &+ d.immediate, size: d.operandSize)
          case .load: try memoryLoad(MemoryFormOperands(d))
          case .store: try memoryStore(MemoryFormOperands(d))
          case .storeImmediate: try memoryStoreImmediate(MemoryFormOperands(d))
          case .aluRegMemory: try memoryALURegMemory(MemoryFormOperands(d))
          case .aluMemoryRegister: try memoryALUMemory(MemoryFormOperands(d), registerSource: true)
          case .aluMemoryImmediate: try memoryALUMemory(MemoryFormOperands(d), registerSource: false)
          case .incMemory: try memoryIncDec(MemoryFormOperands(d), increment: true)
          case .decMemory: try memoryIncDec(MemoryFormOperands(d), increment: false)
          case .movzxMemory: try memoryMovzx(MemoryFormOperands(d))
          case .pushRegister: try memoryPush(MemoryFormOperands(d))
          case .popRegister: try memoryPop(MemoryFormOperands(d))
          case .callRelative: try memoryCall(MemoryFormOperands(d), next: next)
          case .ret: try memoryRet(MemoryFormOperands(d))
          case .general:
            try executeGeneral(at: index)
          }
          if form.rawValue >= FastForm.firstFused.rawValue && form.rawValue < FastForm.firstMemory.rawValue {
            // The Jcc fused to this instruction (always the block's last), unless the budget
            // ends before it: it then starts the next run. A fault on it leaves the first retired.
            index &+= 1
            if index == end {
              state.rip = next
              break instructions
            }
            let jcc = decodeCache.blocks.entries[index]
            let fallThrough = blockRIP &+ UInt64(jcc.end)
            state.rip = fallThrough
            // Every fused first instruction has just recorded lazy flags, so ZF is `result == 0`
            // (loops' JZ/JNZ) and a CMP/SUB's unsigned conditions come from its operands,
            // without `condition`'s call.
            let cc = jcc.instruction.sub
            let lazy = state.lazy
            let taken: Bool
            switch cc >> 1 {
            case 2: taken = (lazy.result == 0) != (cc & 1 != 0)
            case 1 where lazy.op == .sub: taken = (lazy.destination < lazy.source) != (cc & 1 != 0)
            case 3 where lazy.op == .sub: taken = (lazy.destination <= lazy.source) != (cc & 1 != 0)
            default: taken = lazy.condition(cc, flagBits: state.flagBits)
            }
            if taken {
              try branch(to: fallThrough &+ jcc.instruction.immediate, size: jcc.instruction.operandSize)
            }
            index &+= 1
            break instructions
          }
        } catch {
          recordRetired(from: &recorded, to: index)
          // The instruction at `index` threw (the Jcc of a fused pair, or the pair's first).
          let faulting = decodeCache.blocks.entries[index]
          let start = blockRIP &+ UInt64(faulting.end) &- UInt64(faulting.instruction.length)
          return (
            retiredInstructions &- retiredAtStart,
            stopped(by: error, start: start, shadow: index == first && shadow)
          )
        }
        index &+= 1
        if form.rawValue < FastForm.firstMemory.rawValue {
          if index == end {
            // A branch set RIP already; a register form (the block's length or the budget ends
            // it) leaves it after itself, or after the shift it ran with.
            if form != .jcc && form != .jmpRelative {
              state.rip =
                form == .movRegisterShift ? blockRIP &+ UInt64(decodeCache.blocks.entries[index &- 1].end) : next
            }
            break
          }
          continue
        }
        if ioStopRequested {
          ioStopRequested = false
          recordRetired(from: &recorded, to: index)
          return (retiredInstructions &- retiredAtStart, .ioStop)
        }
        if index == end || decodeCache.codeWritten { break }
        if form == .general
          && (debug.stopRun || interruptLine && interruptWindowOpen
            || state.flagBits & DebugUnit.flagsNeedingDebugPath | debug.armed != 0)
        {
          break
        }
      }
      recordRetired(from: &recorded, to: index)
      let executed = retiredInstructions &- retiredAtStart
      // Go on with the next block unless `run` has something to decide.
      if state.halted { return (executed, .halted) }
      if executed == budget || debug.stopRun || interruptLine && interruptWindowOpen
        || state.flagBits & DebugUnit.flagsNeedingDebugPath | debug.armed != 0
      {
        return (executed, .retired)
      }
    }
  }

  // The memory forms, out of line: inside `runBlocks` their code made the loop's variables
  // spill to the stack (the core's own address was reloaded from the stack per instruction),
  // and next to an access's own cost a call is cheap. One function per form, called from the
  // dispatch switch directly: a shared function with a second switch on the form cost a second
  // indirect jump per memory instruction. Each takes the instruction's fields it needs in
  // registers (`MemoryFormOperands`), not the instruction, for the reason `executeGeneral(at:)`
  // gives, nor its index: the loop has loaded them already, and reloading them took a second
  // bounds check per access.

  /// MOV reg, [memory]: `readOperand`'s body (that function takes the instruction by address,
  /// which made the loop copy every instruction to the stack, see `executeGeneral(at:)`). MOV
  /// never reads with write intent (`Flag.readModifyWrite` is for lockable instructions).
  @inline(never)
  mutating func memoryLoad(_ operands: MemoryFormOperands) throws(X86Exception) {
    let d = operands.instruction
    let linear = try linearAddress(d.segment, effectiveAddress(d), size: d.operandSize, .read)
    state.gpr[Int(d.reg & 15)] = try readLinear(linear, size: d.operandSize, .read)
  }

  @inline(never)
  mutating func memoryStore(_ operands: MemoryFormOperands) throws(X86Exception) {
    let d = operands.instruction
    let mask: UInt64 = d.operandSize == 8 ? .max : 0xffff_ffff
    try write(d.segment, effectiveAddress(d), size: d.operandSize, state.gpr[Int(d.reg & 15)] & mask)
  }

  @inline(never)
  mutating func memoryStoreImmediate(_ operands: MemoryFormOperands) throws(X86Exception) {
    let d = operands.instruction
    let mask: UInt64 = d.operandSize == 8 ? .max : 0xffff_ffff
    try write(d.segment, effectiveAddress(d), size: d.operandSize, d.immediate & mask)
  }

  @inline(never)
  mutating func memoryALURegMemory(_ operands: MemoryFormOperands) throws(X86Exception) {
    let d = operands.instruction
    let mask: UInt64 = d.operandSize == 8 ? .max : 0xffff_ffff
    let linear = try linearAddress(d.segment, effectiveAddress(d), size: d.operandSize, .read)
    let source = try readLinear(linear, size: d.operandSize, .read)
    let reg = Int(d.reg & 15)
    let result = alu(d.sub, state.gpr[reg] & mask, source, size: d.operandSize)
    if d.sub != 7 { state.gpr[reg] = result }
  }

  /// ALU [memory], reg and ALU [memory], imm.
  @inline(never)
  mutating func memoryALUMemory(_ operands: MemoryFormOperands, registerSource: Bool) throws(X86Exception) {
    let d = operands.instruction
    let mask: UInt64 = d.operandSize == 8 ? .max : 0xffff_ffff
    // CMP only reads; the others read with write intent (#PF's W bit), then write.
    let source = registerSource ? state.gpr[Int(d.reg & 15)] & mask : d.immediate & mask
    let kind: AccessKind = d.has(DecodedInstruction.Flag.readModifyWrite) ? .write : .read
    let address = effectiveAddress(d)
    let linear = try linearAddress(d.segment, address, size: d.operandSize, kind)
    let result = alu(d.sub, try readLinear(linear, size: d.operandSize, kind), source, size: d.operandSize)
    guard d.sub != 7 else { return }
    // Checked for writing already: the same segment check again could only pass.
    if kind == .write {
      try writeLinear(linear, size: d.operandSize, result)
    } else {
      try write(d.segment, address, size: d.operandSize, result)
    }
  }

  @inline(never)
  mutating func memoryIncDec(_ operands: MemoryFormOperands, increment: Bool) throws(X86Exception) {
    let d = operands.instruction
    let mask: UInt64 = d.operandSize == 8 ? .max : 0xffff_ffff
    let address = effectiveAddress(d)
    let linear = try linearAddress(d.segment, address, size: d.operandSize, .write)
    let value = try readLinear(linear, size: d.operandSize, .write)  // INC/DEC [m] is always RMW
    let result = (increment ? value &+ 1 : value &- 1) & mask
    // The read checked the segment for writing: the write needs only its linear address.
    try writeLinear(linear, size: d.operandSize, result)
    let carry = state.lazy.quickCarry(flagBits: state.flagBits)
    state.setLazyFlags(
      increment ? .inc : .dec, size: d.operandSize, result: result, destination: value, source: 1, carryIn: carry)
  }

  @inline(never)
  mutating func memoryMovzx(_ operands: MemoryFormOperands) throws(X86Exception) {
    let d = operands.instruction
    let linear = try linearAddress(d.segment, effectiveAddress(d), size: d.sub, .read)
    setRegOperand(d, try readLinear(linear, size: d.sub, .read))
  }

  @inline(never)
  mutating func memoryPush(_ operands: MemoryFormOperands) throws(X86Exception) {
    let d = operands.instruction
    try push(register(d.rm, size: d.operandSize, d), size: d.operandSize)
  }

  @inline(never)
  mutating func memoryPop(_ operands: MemoryFormOperands) throws(X86Exception) {
    let d = operands.instruction
    let value = try peek(size: d.operandSize)
    adjustStackPointer(by: UInt64(d.operandSize))
    setRegister(d.rm, size: d.operandSize, d, value)
  }

  @inline(never)
  mutating func memoryCall(_ operands: MemoryFormOperands, next: UInt64) throws(X86Exception) {
    let d = operands.instruction
    let savedStackPointer = state.gpr[4]
    try push(next & sizeMask(d.operandSize), size: d.operandSize)
    do throws(X86Exception) {
      try branch(to: next &+ d.immediate, size: d.operandSize)
    } catch {
      state.gpr[4] = savedStackPointer
      throw error
    }
  }

  /// RET without an immediate.
  @inline(never)
  mutating func memoryRet(_ operands: MemoryFormOperands) throws(X86Exception) {
    let d = operands.instruction
    let target = try peek(size: d.operandSize)
    try branch(to: target, size: d.operandSize)
    adjustStackPointer(by: UInt64(d.operandSize))
  }

  /// The fields of a decoded instruction that the memory forms use: four words, which Swift
  /// passes in registers (the whole 40-byte instruction goes through memory).
  struct MemoryFormOperands {
    var shape: UInt64
    var memoryOperand: UInt32
    var displacement: UInt64
    var immediate: UInt64

    @inline(__always) init(_ d: DecodedInstruction) {
      shape = d.shape
      memoryOperand = d.memoryOperand
      displacement = d.displacement
      immediate = d.immediate
    }

    /// The instruction again, for the shared accessors (`effectiveAddress`, `push`...): the
    /// fields not carried are never read by the memory forms.
    @inline(__always) var instruction: DecodedInstruction {
      var d = DecodedInstruction()
      d.shape = shape
      d.memoryOperand = memoryOperand
      d.displacement = displacement
      d.immediate = immediate
      return d
    }
  }

  /// Counts the instructions from `recorded` up to `index` (block cache indices) as retired.
  @inline(__always)
  mutating func recordRetired(from recorded: inout Int, to index: Int) {
    let count = UInt64(truncatingIfNeeded: index &- recorded)
    retiredInstructions &+= count
    state.tsc &+= count
    recorded = index
  }

  /// The block cache slot holding a valid block for RIP, built if needed; nil when there is
  /// no block to run there (see `runBlocks`).
  @inline(__always)
  mutating func blockAtRIP() -> Int? {
    guard let (_, physical) = try? fetchAddress() else { return nil }
    let page = Int(truncatingIfNeeded: physical >> 12)
    guard page < decodeCache.pageCount else { return nil }
    let slot = BlockCache.slot(physical)
    let tag = DecodeCache.tag(physical, codeMode)
    var header = decodeCache.blocks.headers[slot]
    if header.tag != tag || header.version != decodeCache.pageVersions[page] {
      guard buildBlock(slot, physical: physical, tag: tag, page: page) else { return nil }
      header = decodeCache.blocks.headers[slot]
    }
    // Outside 64-bit mode RIP wraps at 4 GiB, and the linear addresses would stop being
    // sequential: a block that reaches the last byte below 4 GiB is left to `step()`, so
    // that RIP after any of its instructions is the block's RIP plus an offset, unwrapped. The whole block must also lie within
    // CS's limit, so that no instruction needs its own check (`checkFetchLimit`); CS cannot
    // change inside a block. A block that reaches past the limit is stepped, and the
    // instruction that crosses it faults there.
    if codeMode != .bits64 {
      let last = state.rip &+ UInt64(header.byteLength) &- 1
      if last >= 0xffff_ffff || last > UInt64(state.segments[Int(SegmentName.cs.rawValue)].limit) { return nil }
    }
    return slot
  }

  /// Decodes the block starting at `physical` into `slot`: false when not even its first
  /// instruction fits in the page or the page is not RAM (MMIO reads have side effects).
  mutating func buildBlock(_ slot: Int, physical: UInt64, tag: UInt64, page: Int) -> Bool {
    guard ram.loadPhysical(UInt8.self, at: physical) != nil else { return false }
    let first = slot &* BlockCache.maximumLength
    let room = 0x1000 - (physical & 0xfff)
    var count = 0
    var offset: UInt64 = 0
    while count < BlockCache.maximumLength && offset < room {
      // nil: it runs into the next page; the block ends before it, and `step()` fetches it.
      guard let decoded = decodedInstruction(atPhysical: physical &+ offset, room: room &- offset) else { break }
      offset &+= UInt64(decoded.length)
      let form = FastForm(decoded)
      decodeCache.blocks.entries[first &+ count] = BlockCache.Entry(
        instruction: FastForm.blockShape(decoded, form), form: form, end: UInt16(truncatingIfNeeded: offset))
      count &+= 1
      if !decoded.operation.continuesBlock { break }
    }
    guard count > 0 else { return false }
    // MOV reg, reg followed by SHL/SHR reg, imm runs as one dispatch.
    for index in first..<(first &+ count &- 1)
    where decodeCache.blocks.entries[index].form == .movRegister
      && (decodeCache.blocks.entries[index &+ 1].form == .shlRegisterImmediate
        || decodeCache.blocks.entries[index &+ 1].form == .shrRegisterImmediate)
    {
      decodeCache.blocks.entries[index].form = .movRegisterShift
    }
    // A flag-setting register form and the Jcc that ends the block run as one dispatch.
    let last = first &+ count &- 1
    if count >= 2 && decodeCache.blocks.entries[last].form == .jcc,
      let fused = decodeCache.blocks.entries[last &- 1].form.fusedWithJcc
    {
      decodeCache.blocks.entries[last &- 1].form = fused
    }
    noteCodePage(physical)
    decodeCache.blocks.headers[slot] = BlockCache.Header(
      tag: tag, version: decodeCache.pageVersions[page], byteLength: UInt16(offset), count: UInt8(count))
    return true
  }
}

extension X86Core {
  /// Whether any linear execute range (a host breakpoint) meets the bytes of the block whose
  /// `count` instructions start at `first`, from RIP.
  mutating func blockMeetsExecuteRange(first: Int, count: Int) -> Bool {
    blockMeetsExecuteRange(from: state.rip, length: UInt64(decodeCache.blocks.entries[first &+ count &- 1].end))
  }

  /// Whether any linear execute range meets the `length` code bytes from `rip`.
  mutating func blockMeetsExecuteRange(from rip: UInt64, length: UInt64) -> Bool {
    let linear =
      codeMode == .bits64 ? rip : (state.segments[Int(SegmentName.cs.rawValue)].base &+ rip) & 0xffff_ffff
    for range in debug.ranges where range.kinds.contains(.execute) {
      if rangesOverlap(range.start, range.length, linear, length) { return true }
    }
    return false
  }
}

extension X86Core {
  /// The instruction at physical `address` for a block (the interpreter's or a translation),
  /// from the decode cache or decoded now (and cached, its page marked as code); nil when it
  /// does not end within `room` bytes (the rest of its page).
  mutating func decodedInstruction(atPhysical address: UInt64, room: UInt64) -> DecodedInstruction? {
    if let cached = decodeCache.lookup(address, codeMode) { return cached }
    var bytes = InstructionBytes(low: 0, high: 0, count: Int(min(room, UInt64(maximumInstructionLength))))
    for index in 0..<bytes.count { setByte(&bytes, index, readPhysical(address &+ UInt64(index), size: 1)) }
    let decoded = decodeInstruction(bytes, mode: codeMode)
    if decoded.operation == .truncated { return nil }
    noteCodePage(address)
    decodeCache.insert(decoded, at: address, codeMode)
    return decoded
  }
}
