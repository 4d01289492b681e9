import GuestMemory

/// The interpreter proper: state, memory and caches in one struct, so that the hot loop runs
/// as `mutating` methods on one `inout` value: no class property accesses (and so no dynamic
/// exclusivity checks) per instruction, no reference counting, no allocation.
struct X86Core {
  var state = X86State()
  let ram: GuestRAM
  /// Only port I/O and MMIO reach this existential; neither is a hot path.
  var bus: any X86IOBus
  var tlb = TLB()
  var decodeCache: DecodeCache
  /// Set by a device write that asked to stop; reported after the instruction retires.
  var ioStopRequested = false
  /// Set when the guest needs a feature the interpreter lacks; reported instead of a fault.
  var unsupported: UnsupportedFeature?
  /// The code mode, refreshed whenever state that decides it is written.
  var codeMode: CodeMode = .bits16
  var retiredInstructions: UInt64 = 0
  /// The last code page fetched from: its linear page number + 1 (0 = none) and physical
  /// page, so sequential fetches skip the TLB. Valid until the TLB is flushed, like the TLB.
  var fetchPageTag: UInt64 = 0
  var fetchPagePhysical: UInt64 = 0
  /// PAE paging's four PDPTE registers, loaded from CR3 (SDM Vol. 3, 4.4.1).
  var pdptes: InlineArray<4, UInt64> = .init(repeating: 0)
  /// Debug registers' breakpoints, pending #DB traps and the host's watch ranges
  /// (DebugExceptions.swift, WatchHooks.swift).
  var debug = DebugUnit()
  /// Exceptions raised by instructions are delivered through the IVT/IDT (InterruptDelivery.swift)
  /// instead of being returned as `.exception`.
  var deliversExceptions = false
  /// A maskable interrupt is waiting (the engine says so): `run` returns at the first
  /// instruction boundary where RFLAGS.IF and the shadows let it in.
  var interruptLine = false
  /// A step runs one iteration of a repeated string instruction (a debugger's single step, as
  /// TF does on hardware: SDM Vol. 3, 18.3.1.4), leaving RIP at the instruction if more remain.
  var stepsRepeatIterations = false
  /// The ID of the local APIC the engine gives this CPU (CPUID then says APIC); nil: none.
  var localAPICID: UInt8?
  /// The linear address of the last instruction the decoder did not know, until taken.
  var undefinedOpcodeAddress: UInt64?
  /// The JIT tier (JIT/X86JIT.swift); nil: interpret only.
  var jit: X86JIT?

  init(ram: GuestRAM, bus: any X86IOBus) {
    self.ram = ram
    self.bus = bus
    let limit = ram.layout.map { $0.start.value &+ $0.size }.max() ?? 0
    decodeCache = DecodeCache(physicalLimit: limit)
  }

  /// Drops every cached translation and decoded instruction: after a state write that may
  /// change paging or the code mode.
  mutating func stateChanged() {
    tlb.flush()
    fetchPageTag = 0
    codeMode = state.codeMode
    if pagingMode == .pae { reloadPDPTEsUnchecked() }
    refreshDebugControls()
  }

  // MARK: Fetch and decode

  /// The instruction at RIP, from the decode cache when its physical address is there.
  @inline(__always)
  mutating func fetch() throws(X86Exception) -> DecodedInstruction {
    let (linear, physical) = try fetchAddress()
    if let cached = decodeCache.lookup(physical, codeMode) { return cached }
    return try fetchAndDecode(linear: linear, physical: physical)
  }

  /// The linear and physical address of the instruction at RIP, with the fetch's checks.
  @inline(__always)
  mutating func fetchAddress() throws(X86Exception) -> (linear: UInt64, physical: UInt64) {
    let linear: UInt64
    if codeMode == .bits64 {
      linear = state.rip
      if UInt64(bitPattern: Int64(bitPattern: linear << 16) >> 16) != linear { throw .generalProtection(0) }
    } else {
      linear = (state.segments[Int(SegmentName.cs.rawValue)].base &+ state.rip) & 0xffff_ffff
    }
    let physical: UInt64
    if linear >> 12 &+ 1 == fetchPageTag {
      physical = fetchPagePhysical | linear & 0xfff
    } else {
      physical = try translate(linear, .execute)
      fetchPageTag = linear >> 12 &+ 1
      fetchPagePhysical = physical & ~0xfff
    }
    return (linear, physical)
  }

  private mutating func fetchAndDecode(linear: UInt64, physical: UInt64) throws(X86Exception) -> DecodedInstruction {
    let inPage = Int(0x1000 - (linear & 0xfff))
    var bytes = InstructionBytes(low: 0, high: 0, count: min(inPage, maximumInstructionLength))
    for index in 0..<bytes.count { setByte(&bytes, index, readPhysical(physical &+ UInt64(index), size: 1)) }
    var decoded = decodeInstruction(bytes, mode: codeMode)
    if decoded.operation == .truncated {
      // The instruction runs into the next page: fetch it (its #PF names that page) and decode again.
      let next = try translate(linear &+ UInt64(inPage), .execute)
      for index in inPage..<maximumInstructionLength {
        setByte(&bytes, index, readPhysical(next &+ UInt64(index - inPage), size: 1))
      }
      bytes.count = maximumInstructionLength
      decoded = decodeInstruction(bytes, mode: codeMode)
      return decoded
    }
    noteCodePage(physical)
    decodeCache.insert(decoded, at: physical, codeMode)
    return decoded
  }

  /// Marks the physical page holding `physical` as decoded code, so that stores into it check
  /// for self-modifying code: the data-page cache's write tags for it go (`TLB`).
  @inline(__always)
  mutating func noteCodePage(_ physical: UInt64) {
    let page = Int(truncatingIfNeeded: physical >> 12)
    guard page < decodeCache.pageCount, decodeCache.codePages[page] == 0 else { return }
    decodeCache.codePages[page] = 1
    tlb.dropDataWrites(toPhysicalPage: physical & ~0xfff)
  }

  mutating func setByte(_ bytes: inout InstructionBytes, _ index: Int, _ value: UInt64) {
    if index < 8 {
      bytes.low |= (value & 0xff) << (index * 8)
    } else {
      bytes.high |= (value & 0xff) << ((index - 8) * 8)
    }
  }

  // MARK: Step

  /// `checkDebug` is false only for the debug path's own call (DebugExceptions.swift); the
  /// test costs one OR and one predictable branch while no breakpoint, watch or TF/RF is set.
  @inline(__always)
  mutating func step(checkDebug: Bool = true) -> StepResult {
    if state.halted { return .halted }
    if checkDebug && state.flagBits & DebugUnit.flagsNeedingDebugPath | debug.armed != 0 { return debuggedStep() }
    let start = state.rip
    let shadow = state.interruptShadow
    do {
      let decoded = try fetch()
      var next = start &+ UInt64(decoded.length)
      if codeMode != .bits64 { next &= 0xffff_ffff }
      state.rip = next
      state.interruptShadow = false
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
    return state.halted ? .halted : .retired
  }

  /// What an instruction that threw ends with: a fault puts RIP and the interrupt shadow back
  /// (nothing of the instruction happened), a trap retires it.
  mutating func stopped(by error: X86Exception, start: UInt64, shadow: Bool) -> StepResult {
    if error.kind == .fault {
      state.rip = start
      state.interruptShadow = shadow
    } else {
      retire()
    }
    if let feature = unsupported {
      unsupported = nil
      return .unsupported(feature)
    }
    if deliversExceptions { return deliverEvent(error, instructionStart: start) }
    return .exception(error)
  }

  /// RFLAGS.IF is set and no STI, MOV SS or POP SS shadow holds interrupts off.
  var interruptWindowOpen: Bool {
    state.flagBits & RFlagsBit.interruptEnable != 0 && !state.interruptShadow
  }

  @inline(__always)
  mutating func retire() {
    retiredInstructions &+= 1
    state.tsc &+= 1
  }

  /// Steps until `maxInstructions` retire or something other than a plain retirement happens.
  /// The count includes an instruction that retired and then stopped the run (HLT, INT3, an
  /// I/O stop), so it always equals the growth of `retiredInstructions`.
  mutating func run(maxInstructions: UInt64) -> (executed: UInt64, stop: StepResult) {
    let before = retiredInstructions
    while retiredInstructions &- before < maxInstructions {
      // Whole decoded blocks while nothing needs the per-instruction path (BlockRun.swift).
      let result: StepResult
      if jit != nil, let translated = runJIT(budget: maxInstructions &- (retiredInstructions &- before)) {
        result = translated.stop
      } else if !state.halted && state.flagBits & DebugUnit.flagsNeedingDebugPath == 0
        && (debug.armed == 0 || debug.onlyLinearExecuteRanges),
        let blocks = runBlocks(budget: maxInstructions &- (retiredInstructions &- before))
      {
        result = blocks.stop
      } else {
        result = step()
      }
      // A pattern match, not `!=`: the derived == on this payload enum is an out-of-line call.
      if case .retired = result, !debug.stopRun, !interruptLine || !interruptWindowOpen { continue }
      return (retiredInstructions &- before, result)
    }
    return (retiredInstructions &- before, .retired)
  }

}
