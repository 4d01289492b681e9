/// `run` executes decoded blocks (`BlockCache`): one fetch, translation and lookup per block,
/// then its instructions back to back, each with exactly the per-instruction semantics of
/// `step()`: RIP and the interrupt shadow set before it executes, the CS limit checked outside
/// 64-bit mode (once for the whole block), RIP put back on a fault, one retirement (and one
/// TSC tick) each. Common shapes skip the dispatch switch (`FastForm`).
///
/// A block stops early, leaving the rest to the next lookup, after an instruction that asked
/// for an I/O stop, stored into a code page (the next instruction may be new), set a
/// watch stop, opened the window for a waiting interrupt or armed the debug path (TF, RF,
/// breakpoints, watch ranges); `run` then applies its own checks as after a step.
extension X86Core {
  /// Runs at most `budget` (at least 1) instructions of the block at RIP, or returns nil
  /// without doing anything when there is none to run (the fetch faults, the code is not in
  /// RAM, the first instruction crosses its page, RIP would wrap inside the block): `run`
  /// then steps, and the step reports any fault.
  mutating func runBlock(budget: UInt64) -> StepResult? {
    guard let (_, physical) = try? fetchAddress() else { return nil }
    let page = Int(truncatingIfNeeded: physical >> 12)
    guard page < decodeCache.pageVersions.count else { return nil }
    let slot = BlockCache.slot(physical)
    let tag = DecodeCache.tag(physical, codeMode)
    if decodeCache.blocks.tags[slot] != tag || decodeCache.blocks.versions[slot] != decodeCache.pageVersions[page] {
      guard buildBlock(slot, physical: physical, tag: tag, page: page) else { return nil }
    }
    // Outside 64-bit mode RIP wraps at 4 GiB, and the linear addresses would stop being
    // sequential: such a block is left to `step()`. The whole block must also lie within
    // CS's limit, so that no instruction needs its own check (`checkFetchLimit`); CS cannot
    // change inside a block. A block that reaches past the limit is stepped, and the
    // instruction that crosses it faults there.
    if codeMode != .bits64 {
      let last = state.rip &+ UInt64(decodeCache.blocks.byteLengths[slot]) &- 1
      if last > 0xffff_ffff || last > UInt64(state.segments[Int(SegmentName.cs.rawValue)].limit) { return nil }
    }
    let count = UInt64(decodeCache.blocks.counts[slot])
    var index = slot &* BlockCache.maximumLength
    let end = index &+ Int(truncatingIfNeeded: min(count, budget))
    decodeCache.codeWritten = false
    while true {
      let entry = decodeCache.blocks.entries[index]
      let d = entry.instruction
      let form = entry.form
      let start = state.rip
      let shadow = state.interruptShadow
      var next = start &+ UInt64(d.length)
      if codeMode != .bits64 { next &= 0xffff_ffff }
      state.rip = next
      state.interruptShadow = false
      do {
        // The fast forms (FastForm.swift) written out here: as a function marked
        // `@inline(__always)` the optimiser still called it, copying the instruction per call.
        let mask: UInt64 = d.operandSize == 8 ? .max : 0xffff_ffff
        switch form {
        case .general:
          try executeGeneral(at: index)
        case .aluRmRegister:
          let rm = Int(d.rm & 15)
          let result = alu(d.sub, state.gpr[rm] & mask, state.gpr[Int(d.reg & 15)] & mask, size: d.operandSize)
          if d.sub != 7 { state.gpr[rm] = result }
        case .aluRegRegister:
          let reg = Int(d.reg & 15)
          let result = alu(d.sub, state.gpr[reg] & mask, state.gpr[Int(d.rm & 15)] & mask, size: d.operandSize)
          if d.sub != 7 { state.gpr[reg] = result }
        case .aluRegisterImmediate:
          let rm = Int(d.rm & 15)
          let result = alu(d.sub, state.gpr[rm] & mask, d.immediate & mask, size: d.operandSize)
          if d.sub != 7 { state.gpr[rm] = result }
        case .movRegister:
          // MOV r/m, reg (89) copies reg into rm; MOV reg, r/m (8B) the other way.
          if d.operation == .movRmReg {
            state.gpr[Int(d.rm & 15)] = state.gpr[Int(d.reg & 15)] & mask
          } else {
            state.gpr[Int(d.reg & 15)] = state.gpr[Int(d.rm & 15)] & mask
          }
        case .movRegisterImmediate:
          state.gpr[Int(d.rm & 15)] = d.immediate & mask
        case .load:
          // `readOperand`'s body: that function takes the instruction by address, which made
          // the loop copy every instruction to the stack (see `executeGeneral(at:)`).
          let kind: AccessKind = d.has(DecodedInstruction.Flag.readModifyWrite) ? .write : .read
          let linear = try linearAddress(d.segment, effectiveAddress(d), size: d.operandSize, kind)
          let value = try readLinear(linear, size: d.operandSize, kind)
          state.gpr[Int(d.reg & 15)] = value
        case .store:
          try write(d.segment, effectiveAddress(d), size: d.operandSize, state.gpr[Int(d.reg & 15)] & mask)
        case .lea:
          state.gpr[Int(d.reg & 15)] = effectiveAddress(d) & mask
        case .incRegister, .decRegister:
          let rm = Int(d.rm & 15)
          let value = state.gpr[rm] & mask
          let increment = form == .incRegister
          let result = (increment ? value &+ 1 : value &- 1) & mask
          state.gpr[rm] = result
          let carry = carryFlag
          state.setLazyFlags(
            increment ? .inc : .dec, size: d.operandSize, result: result, destination: value, source: 1, carryIn: carry)
        case .shiftRegisterImmediate:
          // `shiftRm`'s SHL/SHR/SAR arms for a register and an immediate count, formula for formula.
          let rm = Int(d.rm & 15)
          let value = state.gpr[rm] & mask
          let count = d.immediate & (d.operandSize == 8 ? 0x3f : 0x1f)
          if count == 0 {
            state.gpr[rm] = value
          } else {
            let bits = UInt64(d.operandSize) &* 8
            let result: UInt64
            let carry: Bool
            let overflow: Bool
            switch d.sub {
            case 5:  // SHR
              result = value >> count
              carry = (value >> (count &- 1)) & 1 != 0
              overflow = value >> (bits &- 1) & 1 != 0
            case 7:  // SAR
              let signed = Int64(bitPattern: signExtend(value, size: d.operandSize))
              result = UInt64(bitPattern: signed >> Int64(count)) & mask
              carry = (signed >> Int64(count &- 1)) & 1 != 0
              overflow = false
            default:  // 4 SHL/SAL, 6
              result = (value << count) & mask
              carry = (value >> (bits &- count)) & 1 != 0
              overflow = (result >> (bits &- 1) & 1 != 0) != carry
            }
            state.setStatusFlags(result: result, size: d.operandSize, carry: carry, overflow: overflow)
            state.gpr[rm] = result
          }
        case .jcc:
          if conditionHolds(d.sub) { try branch(to: state.rip &+ d.immediate, size: d.operandSize) }
        }
      } catch {
        return stopped(by: error, start: start, shadow: shadow)
      }
      retire()
      if ioStopRequested {
        ioStopRequested = false
        return .ioStop
      }
      index &+= 1
      if index == end || decodeCache.codeWritten || debug.stopRun
        || interruptLine && interruptWindowOpen
        || state.flagBits & DebugUnit.flagsNeedingDebugPath | debug.armed != 0
      {
        break
      }
    }
    return state.halted ? .halted : .retired
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
      let address = physical &+ offset
      var decoded: DecodedInstruction
      if let cached = decodeCache.lookup(address, codeMode) {
        decoded = cached
      } else {
        var bytes = InstructionBytes(low: 0, high: 0, count: Int(min(room &- offset, UInt64(maximumInstructionLength))))
        for index in 0..<bytes.count { setByte(&bytes, index, readPhysical(address &+ UInt64(index), size: 1)) }
        decoded = decodeInstruction(bytes, mode: codeMode)
        // It runs into the next page: the block ends before it, and `step()` fetches it.
        if decoded.operation == .truncated { break }
        decodeCache.insert(decoded, at: address, codeMode)
      }
      decodeCache.blocks.entries[first &+ count] = BlockCache.Entry(instruction: decoded, form: FastForm(decoded))
      count &+= 1
      offset &+= UInt64(decoded.length)
      if !decoded.operation.continuesBlock { break }
    }
    guard count > 0 else { return false }
    decodeCache.codePages[page] = 1
    decodeCache.blocks.tags[slot] = tag
    decodeCache.blocks.versions[slot] = decodeCache.pageVersions[page]
    decodeCache.blocks.counts[slot] = UInt8(count)
    decodeCache.blocks.byteLengths[slot] = UInt16(offset)
    return true
  }
}
