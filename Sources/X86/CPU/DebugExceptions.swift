/// The debug exception (#DB, vector 1) conditions of SDM Vol. 3, 18.3.1, and AMD APM Vol. 2, 13.1.
///
/// | Condition                          | Class | DR6        | RIP              |
/// |------------------------------------|-------|------------|------------------|
/// | instruction breakpoint (R/W = 00)  | fault | Bn         | at the instruction |
/// | MOV DR while DR7.GD = 1            | fault | BD         | at the MOV       |
/// | data breakpoint (R/W = 01, 11)     | trap  | Bn         | after it         |
/// | I/O breakpoint (R/W = 10, CR4.DE)  | trap  | Bn         | after it         |
/// | single step (TF at the start)      | trap  | BS         | after it         |
///
/// A trap's DR6 carries every condition the instruction met (single step and data breakpoints
/// together). B0-B3 are rewritten by each #DB; BD, BS and BT are only ever set by the
/// processor (SDM Vol. 3, 18.2.3). Every #DB clears DR7.GD, as entering the handler does.
///
/// Cost: `step()` tests `(RFLAGS & (TF | RF)) | debug.armed` once and comes here only when that
/// is nonzero; memory accesses test `debug.checksAccesses` once. `armed` is recomputed by
/// `refreshDebugControls()` whenever DR0-3/DR7, the host's watch ranges or the whole state are
/// written, and set while a trap is pending.
struct DebugUnit {
  /// RFLAGS bits that send a step down the debug path: TF (single step) and RF (to clear it).
  static let flagsNeedingDebugPath: UInt64 = RFlagsBit.trap | RFlagsBit.resume

  /// Nonzero when the step must take the debug path whatever TF and RF say.
  var armed: UInt64 = 0
  /// Set while an instruction-breakpoint #DB is being delivered: its flags image keeps RF as it is.
  var deliveringInstructionBreakpoint = false
  /// Data accesses must be compared with breakpoints or watch ranges.
  var checksAccesses = false
  /// DR7 slots enabled (L or G) with R/W = 00, and with R/W = 01 or 11: bit n for slot n.
  var instructionSlots: UInt8 = 0
  var dataSlots: UInt8 = 0
  /// DR7 slots enabled with R/W = 10: I/O breakpoints, live while CR4.DE is set.
  var ioSlots: UInt8 = 0
  /// B0-B3 of the data breakpoints the current instruction's accesses hit.
  var dataHits: UInt64 = 0
  /// An access of the current instruction hit a breakpoint or a watch range: a repeated string
  /// instruction stops after this iteration.
  var iterationHit = false
  /// A repeated string instruction stopped before its last iteration (RIP is still at it).
  var repeatInterrupted = false
  /// DR6 bits of a #DB trap not yet taken: held back by a MOV SS / POP SS shadow, or left
  /// over because the instruction's step already reported something else (an I/O stop, INT n).
  var pendingTrap: UInt64 = 0
  /// A host watch range was hit: `run(maxInstructions:)` returns after this step.
  var stopRun = false

  // Host watch hooks (WatchHooks.swift).
  var ranges: [WatchRange] = []
  var hits: [WatchHit] = []
  var hasDataRanges = false
  var hasExecuteRanges = false
  /// The only debug check armed is `ranges`' linear execute ranges (see `refreshDebugControls`).
  var onlyLinearExecuteRanges = false
  /// An execute range stopped the CPU before the instruction at this RIP + 1 (0 = none): the
  /// next step executes it without reporting the same hit again.
  var executeHitSuppressed: UInt64 = 0
  /// RIP of the instruction the debug path is running, for `WatchHit.instructionPointer`.
  var currentInstruction: UInt64 = 0
}

extension X86Core {
  /// Recomputes which debug checks are live, from DR7 and the host's watch ranges.
  mutating func refreshDebugControls() {
    let dr7 = state.dr7
    var instruction: UInt8 = 0
    var data: UInt8 = 0
    var io: UInt8 = 0
    for slot in 0..<4 where (dr7 >> (2 * UInt64(slot))) & 3 != 0 {
      switch DebugRegisterBit.condition(dr7, slot: slot) {
      case DebugRegisterBit.conditionExecute: instruction |= 1 << slot
      case DebugRegisterBit.conditionWrite, DebugRegisterBit.conditionReadWrite: data |= 1 << slot
      default: io |= 1 << slot
      }
    }
    // Hits of an earlier instruction must not stop a later string instruction.
    debug.iterationHit = false
    debug.instructionSlots = instruction
    debug.dataSlots = data
    debug.ioSlots = io
    debug.checksAccesses = data != 0 || debug.hasDataRanges
    // Accesses through the data-page cache skip the checks: it is emptied, and not filled while armed.
    if debug.checksAccesses { tlb.flushData() }
    // I/O slots arm the step whatever CR4.DE says (MOV CR4 need not tell the debug unit); the
    // port check itself tests DE.
    let needed =
      instruction | io != 0 || debug.checksAccesses || debug.hasExecuteRanges || debug.pendingTrap != 0
    debug.armed = needed ? 1 : 0
    // Host breakpoints alone (execute ranges by linear address) leave blocks usable: a block
    // is checked against them once, as a whole, before it runs (BlockRun.swift), so a guest
    // runs at block speed everywhere but next to a breakpoint.
    debug.onlyLinearExecuteRanges =
      debug.hasExecuteRanges && instruction | io == 0 && !debug.checksAccesses && debug.pendingTrap == 0
      && debug.ranges.allSatisfy { !$0.kinds.contains(.execute) || $0.space == .linear }
  }

  /// Writes DR6 for a #DB: B0-B3 become `bits`' own, BD/BS/BT are ORed in; clears DR7.GD.
  mutating func recordDebugStatus(_ bits: UInt64) {
    let kept = state.dr6 & (DebugRegisterBit.dr6Writable & ~DebugRegisterBit.dr6Breakpoints)
    state.dr6 = kept | bits & DebugRegisterBit.dr6Writable | DebugRegisterBit.dr6FixedOnes
    state.dr7 &= ~DebugRegisterBit.dr7GD
  }

  /// A #DB fault with these DR6 bits (RIP stays at the instruction).
  mutating func raiseDebugFault(_ bits: UInt64) -> X86Exception {
    recordDebugStatus(bits)
    return X86Exception(vector: X86Exception.Vector.debug, kind: .fault)
  }

  /// A #DB trap with these DR6 bits (RIP is past the instruction).
  mutating func raiseDebugTrap(_ bits: UInt64) -> StepResult {
    recordDebugStatus(bits)
    debug.pendingTrap = 0
    refreshDebugControls()
    // A trap after HLT is delivered at once: the processor leaves the halt state to run the
    // handler, as it does for any event, and resumes after the HLT.
    state.halted = false
    return reportDebugException(X86Exception(vector: X86Exception.Vector.debug, kind: .trap))
  }

  /// The one place where the debug path hands a #DB it raised itself (instruction breakpoint,
  /// single step, data breakpoint) to the step's caller, or delivers it through the IDT; the
  /// general-detect fault is thrown by MOV DR like any instruction's exception. An
  /// instruction-breakpoint fault pushes RF as it is (0: the breakpoint fired), unlike every
  /// other fault (SDM Vol. 3, 18.3.1.1), which the delivery learns from `instructionBreakpoint`.
  mutating func reportDebugException(_ error: X86Exception) -> StepResult {
    guard deliversExceptions else { return .exception(error) }
    debug.deliveringInstructionBreakpoint = error.kind == .fault
    defer { debug.deliveringInstructionBreakpoint = false }
    return deliverEvent(error)
  }

  // MARK: The step with debug checks

  /// `step()` when TF or RF is set, a DR7 slot or host range is live, or a trap is pending.
  mutating func debuggedStep() -> StepResult {
    debug.stopRun = false
    // MOV SS and POP SS open a shadow in which debug exceptions are held until the next
    // instruction completes (SDM Vol. 3, 6.8.3): no instruction breakpoint for that instruction,
    // and the held trap joins its own.
    let inStackSegmentShadow = state.interruptShadow && state.stackSegmentShadow

    // A trap the previous step could not report is taken at this boundary, before the next
    // instruction (traps on the previous instruction come first, SDM Vol. 3, 6.9, table 6-2).
    if debug.pendingTrap != 0 && !inStackSegmentShadow { return raiseDebugTrap(debug.pendingTrap) }

    // The host's execute ranges stop the CPU before the guest's own breakpoints are looked at.
    if debug.hasExecuteRanges, let stop = executeWatchStop() { return stop }
    let flags = state.flagBits
    if flags & RFlagsBit.resume == 0 && !inStackSegmentShadow {
      if debug.instructionSlots != 0, let hits = instructionBreakpointHits() {
        return reportDebugException(raiseDebugFault(hits))
      }
    }
    debug.currentInstruction = state.rip

    // RF is cleared at the start of the instruction, after the instruction-breakpoint check
    // (SDM Vol. 3, 18.3.1.1); IRET may set it again from its image.
    state.flagBits = flags & ~RFlagsBit.resume
    state.stackSegmentShadow = false
    debug.dataHits = 0
    debug.iterationHit = false
    debug.repeatInterrupted = false

    let result = step(checkDebug: false)

    switch result {
    case .retired, .halted, .ioStop:
      break
    case .exception(let error) where error.kind == .fault:
      // Nothing completed: RF and the shadow are as they were; data hits of accesses made
      // before the fault are dropped with the instruction (watch hits stay reported).
      state.flagBits |= flags & RFlagsBit.resume
      state.stackSegmentShadow = inStackSegmentShadow
      return result
    default:
      // INT n, INT3, INT1 and other trap-class results: the handler entry clears TF, so there
      // is no single-step trap for them (SDM Vol. 3, 18.3.1.4); a held trap stays pending.
      return result
    }

    var bits = debug.dataHits | debug.pendingTrap
    // Single step traps on TF as it was when the instruction started: POPF clearing TF still
    // traps, an instruction setting it does not (SDM Vol. 3, 18.3.1.4).
    if flags & RFlagsBit.trap != 0 { bits |= DebugRegisterBit.dr6BS }
    if debug.repeatInterrupted {
      // A trap on any iteration but the last pushes RF = 1, so that returning to the string
      // instruction does not hit its own instruction breakpoint again (SDM Vol. 3, 18.3.1.1).
      state.flagBits |= RFlagsBit.resume
    }
    guard bits != 0 else { return result }

    if state.interruptShadow && state.stackSegmentShadow {
      // This instruction loaded SS: its traps wait for the next one.
      debug.pendingTrap = bits
      debug.armed = 1
      debug.onlyLinearExecuteRanges = false
      return result
    }
    if case .ioStop = result {
      // The I/O stop is reported now; the trap is taken at the start of the next step.
      debug.pendingTrap = bits
      debug.armed = 1
      debug.onlyLinearExecuteRanges = false
      return result
    }
    return raiseDebugTrap(bits)
  }

  /// B0-B3 of the enabled instruction breakpoints at CS:RIP, or nil.
  private mutating func instructionBreakpointHits() -> UInt64? {
    let linear =
      codeMode == .bits64
      ? state.rip : (state.segments[Int(SegmentName.cs.rawValue)].base &+ state.rip) & 0xffff_ffff
    var hits: UInt64 = 0
    for slot in 0..<4 where debug.instructionSlots & (1 << slot) != 0 && state.dr[slot] == linear {
      hits |= 1 << UInt64(slot)
    }
    return hits == 0 ? nil : hits
  }

  /// Compares one data access with the enabled data breakpoints (SDM Vol. 3, 18.2.5: a
  /// breakpoint covers LEN bytes from its address with the low bits masked to LEN's alignment,
  /// and hits when any byte of the access falls inside). Called from MemoryAccess.swift only
  /// while `debug.checksAccesses` is set.
  @inline(never)
  mutating func noteDataAccess(
    linear: UInt64, size: UInt8, write: Bool, physical: UInt64, secondPhysical: UInt64
  ) {
    let dr7 = state.dr7
    let slots = debug.dataSlots
    if slots != 0 {
      for slot in 0..<4 where slots & (1 << slot) != 0 {
        if !write && DebugRegisterBit.condition(dr7, slot: slot) == DebugRegisterBit.conditionWrite { continue }
        let length = DebugRegisterBit.length(dr7, slot: slot)
        let start = state.dr[slot] & ~(length &- 1)
        if rangesOverlap(start, length, linear, UInt64(size)) {
          debug.dataHits |= 1 << UInt64(slot)
          debug.iterationHit = true
        }
      }
    }
    if debug.hasDataRanges {
      noteWatchedAccess(
        linear: linear, size: UInt64(size), write: write, physical: physical, secondPhysical: secondPhysical)
    }
  }

  /// I/O breakpoints (R/W = 10 with CR4.DE; SDM Vol. 3, 18.2.4): a trap after the IN, OUT,
  /// INS or OUTS whose port bytes overlap the slot's range (aligned by LEN like a data
  /// breakpoint). With CR4.DE clear, R/W = 10 is undefined; here it never hits.
  @inline(__always)
  mutating func checkIOBreakpoints(port: UInt16, size: Int) {
    if debug.ioSlots != 0 { noteIOAccess(port: port, size: size) }
  }

  @inline(never)
  private mutating func noteIOAccess(port: UInt16, size: Int) {
    guard state.cr4 & DebugRegisterBit.cr4DE != 0 else { return }
    let dr7 = state.dr7
    for slot in 0..<4 where debug.ioSlots & (1 << slot) != 0 {
      let length = DebugRegisterBit.length(dr7, slot: slot)
      let start = state.dr[slot] & 0xffff & ~(length &- 1)
      if rangesOverlap(start, length, UInt64(port), UInt64(size)) {
        debug.dataHits |= 1 << UInt64(slot)
        debug.iterationHit = true
      }
    }
  }

  /// A repeated string instruction asks after each iteration that leaves more to do: stop
  /// here for a single-step trap (taken after every iteration, SDM Vol. 3, 18.3.1.4) or a data
  /// breakpoint or watch hit (after the iteration that hit, 18.3.1.2)? If so, RIP goes back to
  /// the instruction, which resumes with the registers as this iteration left them.
  @inline(__always)
  mutating func debugStopsRepeat(_ d: DecodedInstruction) -> Bool {
    let guestStop = state.flagBits & RFlagsBit.trap != 0 || debug.iterationHit
    guard guestStop || stepsRepeatIterations else { return false }
    var start = state.rip &- UInt64(d.length)
    if codeMode != .bits64 { start &= 0xffff_ffff }
    state.rip = start
    // Only the guest's own traps set RF for the return; the host's stepping leaves no trace.
    if guestStop { debug.repeatInterrupted = true }
    return true
  }
}

/// Whether [a, a + aLength) and [b, b + bLength) share a byte, with addresses wrapping at
/// 2^64: one of them starts inside the other. An empty range overlaps nothing.
@inline(__always)
func rangesOverlap(_ a: UInt64, _ aLength: UInt64, _ b: UInt64, _ bLength: UInt64) -> Bool {
  aLength != 0 && bLength != 0 && ((b &- a) < aLength || (a &- b) < bLength)
}
