/// `run` executes decoded blocks (`BlockCache`): one fetch, translation and lookup per block,
/// then its instructions back to back, each with exactly the per-instruction semantics of
/// `step()`: RIP and the interrupt shadow set before it executes, the CS limit checked outside
/// 64-bit mode, RIP put back on a fault, one retirement (and one TSC tick) each.
///
/// A block stops early, leaving the rest to the next lookup, after an instruction that asked
/// for an I/O stop, halted, stored into a code page (the next instruction may be new), set a
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
    // sequential: such a block is left to `step()`.
    if codeMode != .bits64 && state.rip &+ UInt64(decodeCache.blocks.byteLengths[slot]) > 0xffff_ffff { return nil }
    let count = UInt64(decodeCache.blocks.counts[slot])
    var index = slot &* BlockCache.maximumLength
    let end = index &+ Int(truncatingIfNeeded: min(count, budget))
    decodeCache.codeWritten = false
    while true {
      let decoded = decodeCache.blocks.instructions[index]
      let start = state.rip
      let shadow = state.interruptShadow
      var next = start &+ UInt64(decoded.length)
      if codeMode != .bits64 { next &= 0xffff_ffff }
      state.rip = next
      state.interruptShadow = false
      do {
        if codeMode != .bits64 { try checkFetchLimit(start, decoded) }
        try execute(decoded)
      } catch {
        return stopped(by: error, start: start, shadow: shadow)
      }
      retire()
      if ioStopRequested {
        ioStopRequested = false
        return .ioStop
      }
      index &+= 1
      if index == end || state.halted || decodeCache.codeWritten || debug.stopRun
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
      decodeCache.blocks.instructions[first &+ count] = decoded
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
