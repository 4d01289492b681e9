/// The JIT tier inside `run`: translated blocks (X86JIT, JITTranslator) where `runBlocks`
/// would run, with the interpreter for every instruction they leave to it.
///
/// Guest state crosses at each Swift round trip: GPRs, RIP and the six status flags are
/// copied into the context before entering and back after leaving, so the interpreter sees
/// exactly the state at an instruction boundary. Retirements are the budget consumed, added
/// to `retiredInstructions` and the TSC (one tick each) at every exit: the same counts as the
/// interpreter's, and nothing translated reads them.
extension X86Core {
  /// Whether translated code may run now: the conditions of `runBlocks` (no TF/RF, breakpoint
  /// or watch), no interrupt shadow or waiting interrupt, no alignment checking, and flat
  /// segments: 64-bit mode, or 32-bit code with CS, DS, ES and SS based at 0 with 4 GiB
  /// limits (writable data, a 32-bit stack), so that an effective address is the linear one.
  mutating func jitReady() -> Bool {
    if state.halted || state.interruptShadow { return false }
    if state.flagBits & DebugUnit.flagsNeedingDebugPath != 0 || debug.checksAccesses { return false }
    // Host breakpoints alone (linear execute ranges) leave translated code usable: a block
    // holding one is never translated (`jitTranslation`), so no chain can reach it, and the
    // translations are dropped whenever the ranges change (`X86CPU.setWatchRanges`).
    if debug.armed != 0 && !debug.onlyLinearExecuteRanges { return false }
    if interruptLine && interruptWindowOpen { return false }
    if state.cr0 & ControlBit.cr0AM != 0 && state.flagBits & RFlagsBit.alignmentCheck != 0 { return false }
    switch codeMode {
    case .bits64:
      return true
    case .bits32:
      let cs = state.segments[Int(SegmentName.cs.rawValue)]
      guard cs.base == 0 && cs.limit == 0xffff_ffff && state.segments[Int(SegmentName.ss.rawValue)].defaultBig else {
        return false
      }
      for segment in [SegmentName.ds, .es, .ss] {
        let bounds = state.segmentBounds[Int(segment.rawValue)]
        if bounds.base != 0 || bounds.readFirst != 0 || bounds.readLast != 0xffff_ffff || bounds.writeFirst != 0
          || bounds.writeLast != 0xffff_ffff
        {
          return false
        }
      }
      return true
    case .bits16:
      return false
    }
  }

  /// Runs translated blocks from RIP until `budget` instructions retired or something needs
  /// `run`'s attention; nil when the JIT is off or the state does not allow it (then
  /// `runBlocks` runs as before).
  mutating func runJIT(budget: UInt64) -> (executed: UInt64, stop: StepResult)? {
    guard let jit, jitReady() else { return nil }
    let before = retiredInstructions
    synchronizeJIT(jit)
    copyIntoJIT(jit)
    while true {
      let remaining = budget &- (retiredInstructions &- before)
      if jit.translation(at: state.rip) == nil && jit.isCold(state.rip) {
        // Not worth translating yet: the interpreter's blocks run it (one block's worth).
        copyOutOfJIT(jit)
        let result = runBlocks(budget: min(remaining, UInt64(X86JIT.blockLimit)))?.stop ?? step()
        if let next = continueJIT(after: result, before: before, budget: budget) { return next }
        synchronizeJIT(jit)
        copyIntoJIT(jit)
        continue
      }
      guard let code = jitTranslation(jit) else {
        // No block here (a fetch fault, code outside RAM, an instruction across the page):
        // one interpreted instruction reports or gets past it.
        copyOutOfJIT(jit)
        let result = step()
        if let next = continueJIT(after: result, before: before, budget: budget) { return next }
        copyIntoJIT(jit)
        continue
      }
      let (reason, left) = jit.run(code, budget: remaining)
      let ran = remaining &- left
      retiredInstructions &+= ran
      state.tsc &+= ran
      state.rip = jit.context[word: JITLayout.rip]
      switch JITExit(rawValue: reason) {
      case .chain:
        let field = Int(truncatingIfNeeded: jit.context[word: JITLayout.patchField])
        let flushes = jit.flushCount
        if left > 0, let target = jitTranslation(jit), jit.flushCount == flushes {
          jit.patch(field: field, to: target)
        }
        if left == 0 {
          copyOutOfJIT(jit)
          return (retiredInstructions &- before, .retired)
        }
      case .budget:
        // Fewer instructions remain than the next block holds: the interpreter's blocks
        // finish the run exactly.
        copyOutOfJIT(jit)
        if left == 0 { return (retiredInstructions &- before, .retired) }
        let tail = runBlocks(budget: left) ?? (executed: 0, stop: step())
        return (retiredInstructions &- before, tail.stop)
      default:
        copyOutOfJIT(jit)
        if left == 0 { return (retiredInstructions &- before, .retired) }
        let result = step()
        fillJITTLB(jit, linear: jit.context[word: JITLayout.missAddress])
        if let next = continueJIT(after: result, before: before, budget: budget) { return next }
        synchronizeJIT(jit)
        copyIntoJIT(jit)
      }
    }
  }

  /// After an interpreted instruction: the run's result when `run` must see it (anything but
  /// a plain retirement, a stop, an open window for a waiting interrupt, the budget spent, or
  /// a state the JIT cannot run in), nil to go on.
  private mutating func continueJIT(after result: StepResult, before: UInt64, budget: UInt64) -> (
    executed: UInt64, stop: StepResult
  )? {
    let executed = retiredInstructions &- before
    if case .retired = result, !debug.stopRun, executed < budget, jitReady() { return nil }
    return (executed, result)
  }

  /// Brings the JIT up to date with the interpreter's caches (see `X86JIT`): a new code mode
  /// or privilege drops everything; a TLB generation empties the data TLB and, like a code
  /// generation, keeps the translations only if every code page they came from still has the
  /// same code version and, with paging on, an executable entry in the interpreter's TLB for
  /// the same physical page (global kernel pages survive MOV to CR3). The check only looks:
  /// a walk here would fill the TLB and set accessed bits, which the guest could observe and
  /// which would depend on the order of the pages (a first version did that, and two runs
  /// of Linux differed).
  private mutating func synchronizeJIT(_ jit: X86JIT) {
    if jit.enter(mode: codeMode, privilege: state.dataTagPrivilege) {
      jit.tlbGeneration = tlb.generation
      jit.codeGeneration = decodeCache.generation
      return
    }
    let mappingsMoved = jit.tlbGeneration != tlb.generation
    let codeMoved = jit.codeGeneration != decodeCache.generation
    guard mappingsMoved || codeMoved else { return }
    if mappingsMoved { jit.flushTLB() }
    let paging = pagingEnabled
    let execute = TLB.permissionBit(.execute, user: privilegeLevel == 3)
    for (linearPage, page) in jit.codePages {
      let physicalPage = Int(truncatingIfNeeded: page.physicalPage >> 12)
      let version = physicalPage < decodeCache.pageCount ? decodeCache.pageVersions[physicalPage] : 0
      var same = version == page.version
      if same && mappingsMoved && paging {
        let linear = linearPage << 12
        var physical = tlb.lookup(linear, permission: execute)
        if physical == nil {
          // Evicted (the TLB is direct-mapped) or flushed: walk the tables again, as a
          // processor may at any time, rather than drop every translation. A walk that
          // faults changes nothing the guest sees: CR2 is put back.
          let cr2 = state.cr2
          physical = try? walk(linear, .execute, user: privilegeLevel == 3)
          state.cr2 = cr2
        }
        same = physical == page.physicalPage
      }
      if !same {
        jit.flush()
        break
      }
    }
    jit.tlbGeneration = tlb.generation
    jit.codeGeneration = decodeCache.generation
  }

  /// GPRs and the status flags into the context (RIP is passed per block).
  private mutating func copyIntoJIT(_ jit: X86JIT) {
    for index in 0..<16 { jit.context[word: JITLayout.gpr + 8 * index] = state.gpr[index] }
    jit.context[word: JITLayout.fsBase] = state.segments[Int(SegmentName.fs.rawValue)].base
    jit.context[word: JITLayout.gsBase] = state.segments[Int(SegmentName.gs.rawValue)].base
    state.materializeFlags()
    let bits = state.flagBits
    let image = (bits & 0xd5 | 2) << 8 | (bits & RFlagsBit.overflow != 0 ? 1 : 0)
    jit.context[word: JITLayout.flags] = image
  }

  private mutating func copyOutOfJIT(_ jit: X86JIT) {
    for index in 0..<16 { state.gpr[index] = jit.context[word: JITLayout.gpr + 8 * index] }
    let image = jit.context[word: JITLayout.flags]
    let status = (image >> 8) & 0xd5 | (image & 1 != 0 ? RFlagsBit.overflow : 0)
    state.flagBits = state.flagBits & ~RFlagsBit.status | status
    state.lazy.op = .none
  }

  /// The translation for RIP, translated now if needed; nil when there is no block to run.
  private mutating func jitTranslation(_ jit: X86JIT) -> Int? {
    if let code = jit.translation(at: state.rip) { return code }
    guard let (block, physicalPage) = jitBlock() else { return nil }
    if debug.hasExecuteRanges, let last = block.last,
      blockMeetsExecuteRange(from: block[0].rip, length: last.next &- block[0].rip)
    {
      return nil  // stepped, so that the breakpoint in it is checked
    }
    // Decoding may have marked a new code page (a TLB generation): synchronise before adding.
    synchronizeJIT(jit)
    let page = Int(truncatingIfNeeded: physicalPage >> 12)
    let version = page < decodeCache.pageCount ? decodeCache.pageVersions[page] : 0
    return jit.install(
      block, at: state.rip, mode: codeMode, codePage: X86JIT.CodePage(physicalPage: physicalPage, version: version))
  }

  /// The instructions from RIP to the first that ends a block (included), within RIP's
  /// physical page and below 4 GiB outside 64-bit mode, and that physical page; nil when not
  /// even one instruction is there.
  private mutating func jitBlock() -> (block: [JITInstruction], physicalPage: UInt64)? {
    guard let (_, physical) = try? fetchAddress() else { return nil }
    guard ram.loadPhysical(UInt8.self, at: physical) != nil else { return nil }
    let room = 0x1000 - (physical & 0xfff)
    var block: [JITInstruction] = []
    var offset: UInt64 = 0
    while block.count < X86JIT.blockLimit && offset < room {
      guard let decoded = decodedInstruction(atPhysical: physical &+ offset, room: room &- offset) else { break }
      let rip = state.rip &+ offset
      offset &+= UInt64(decoded.length)
      block.append(JITInstruction(d: decoded, rip: rip, next: state.rip &+ offset))
      if !decoded.operation.continuesBlock { break }
    }
    guard !block.isEmpty else { return nil }
    noteCodePage(physical)
    if codeMode != .bits64 && state.rip &+ offset &- 1 >= 0xffff_ffff { return nil }
    return (block, physical & ~0xfff)
  }

  /// Copies the data-page cache's entry for `linear` (filled by the interpreted access) into
  /// the JIT's TLB: the same rules hold then (RAM only, no data checks, no code in a page
  /// written to), since the entry exists only where they did.
  private mutating func fillJITTLB(_ jit: X86JIT, linear: UInt64) {
    let slot = TLB.dataSlot(linear)
    let tag = TLB.dataTag(linear, privilege: state.dataTagPrivilege)
    let read = tlb.dataReadTags[slot] == tag
    let write = tlb.dataWriteTags[slot] == tag
    guard read || write, let host = ram.hostAddress(ofPhysicalPage: tlb.dataPhysicalPages[slot]) else { return }
    jit.fillTLB(page: linear >> 12, hostPage: host, read: read, write: write)
  }
}
