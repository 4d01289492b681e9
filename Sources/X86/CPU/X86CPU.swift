import GuestMemory

/// One x86-64 processor run by the interpreter over a `GuestRAM`.
///
/// `step()` executes exactly one instruction; `run(maxInstructions:)` loops it without
/// leaving the interpreter core. State is read and written as a value through `state`;
/// a write drops cached translations, so paging and mode changes take effect.
public final class X86CPU {
  var core: X86Core

  public init(memory: GuestRAM, bus: any X86IOBus = UnmappedIOBus()) {
    core = X86Core(ram: memory, bus: bus)
    core.stateChanged()
    if X86JIT.enabledByDefault { core.jit = X86JIT() }
  }

  /// Whether `run` executes translated blocks (the JIT tier, docs/ARCHITECTURE.md "Translated
  /// blocks") where it can. On by default unless `HYPERSTEP_JIT=0`; stays false on a host that
  /// cannot run translated code. `step()` and the debug path always interpret.
  public var usesTranslation: Bool {
    get { core.jit != nil }
    set { core.jit = newValue ? (core.jit ?? X86JIT()) : nil }
  }

  /// How often untranslated code is met before it is translated (`X86JIT.translationThreshold`
  /// by default); tests that must see short programs translated set 0.
  var translationThreshold: UInt8 {
    get { core.jit?.translationThreshold ?? 0 }
    set { core.jit?.translationThreshold = newValue }
  }

  public var memory: GuestRAM { core.ram }

  /// Connects the CPU to the machine's devices (an engine does this once it has them).
  public func attach(bus: any X86IOBus) { core.bus = bus }

  public var state: X86State {
    get { core.state }
    set {
      core.state = newValue
      core.stateChanged()
    }
  }

  /// Moves the time-stamp counter on by `ticks` without touching anything else: replacing
  /// `state` for that would flush the TLB and with it the translated code, which a halted
  /// vCPU catching up with virtual time did on every idle wait.
  public func advanceTimeStampCounter(by ticks: UInt64) { core.state.tsc &+= ticks }

  /// How many times translated code was entered (for tests that must know it ran).
  var translatedBlocksEntered: UInt64 { core.jit?.entries ?? 0 }

  /// Instructions retired since this CPU was made (INT3/INT n count; faults do not).
  public var retiredInstructions: UInt64 { core.retiredInstructions }

  public func step() -> StepResult { core.step() }

  /// Runs until `maxInstructions` retire, or the CPU halts, faults, traps or an I/O device
  /// asks to stop. Returns how many retired, and `.retired` when the count ran out.
  @discardableResult
  public func run(maxInstructions: UInt64) -> (executed: UInt64, stop: StepResult) {
    core.run(maxInstructions: maxInstructions)
  }

  /// Forgets every decoded instruction (after the host wrote guest code behind the CPU's back:
  /// writes through the CPU itself are tracked).
  public func invalidateDecodedInstructions() {
    core.decodeCache.flush()
    // Translations check their pages' code versions, which a host write does not bump.
    core.jit?.flush()
  }

  /// When true, an exception an instruction raises is delivered through the IVT/IDT and
  /// `step()` returns `.delivered` (or `.tripleFault`); when false (the default, for tests
  /// and the differential tester) it is returned as `.exception` undelivered.
  public var deliversExceptions: Bool {
    get { core.deliversExceptions }
    set { core.deliversExceptions = newValue }
  }

  /// A maskable interrupt may be delivered now: RFLAGS.IF is set and no STI/MOV SS shadow.
  /// Set by the engine while a maskable interrupt is pending for this CPU: `run` then returns
  /// at the first instruction boundary where it can be taken (`acceptsInterrupts`).
  public var interruptLine: Bool {
    get { core.interruptLine }
    set { core.interruptLine = newValue }
  }

  /// Where the last instruction the interpreter does not know was (its linear address), if
  /// one raised #UD since the last call; clears it.
  public func takeUndefinedOpcode() -> UInt64? {
    defer { core.undefinedOpcodeAddress = nil }
    return core.undefinedOpcodeAddress
  }

  /// The ID of the local APIC the engine's platform gives this CPU: CPUID leaf 1 then
  /// reports the APIC feature and the ID (nil, the default: a CPU with no local APIC).
  public var localAPICID: UInt8? {
    get { core.localAPICID }
    set { core.localAPICID = newValue }
  }

  public var acceptsInterrupts: Bool {
    // A #DB trap still pending at this boundary is taken first (SDM Vol. 3, 6.9, table 6-2:
    // traps on the previous instruction outrank external interrupts): the next step takes it.
    core.state.flagBits & RFlagsBit.interruptEnable != 0 && !core.state.interruptShadow && core.debug.pendingTrap == 0
  }

  /// An NMI may be delivered now: none is being handled (no IRET since the last) and no MOV SS shadow.
  public var acceptsNMI: Bool {
    !core.state.nmiBlocked && !(core.state.interruptShadow && core.state.stackSegmentShadow)
      && core.debug.pendingTrap == 0
  }

  /// Delivers a hardware interrupt through the IVT/IDT, between instructions: no gate DPL
  /// check, EXT set in any error code its delivery raises, HLT left (the return address is
  /// the next instruction). The caller checks `acceptsInterrupts` first. Returns
  /// `.delivered`, `.tripleFault` or `.unsupported` (a task gate).
  public func deliverExternalInterrupt(vector: UInt8) -> StepResult {
    core.deliverEvent(X86Exception(vector: vector, kind: .externalInterrupt))
  }

  /// Delivers exception `vector` as a trap between instructions (the return address is RIP as
  /// it stands): an engine's injection of an event the instruction stream did not raise here,
  /// such as a single-step #DB another engine swallowed. Returns `.delivered`, `.tripleFault`
  /// or `.unsupported`.
  public func deliverTrap(vector: UInt8) -> StepResult {
    core.deliverEvent(X86Exception(vector: vector, kind: .trap))
  }

  /// Delivers an NMI (vector 2) and blocks further NMIs until an IRET. When `acceptsNMI` is
  /// false it does nothing and returns `.retired`: the caller keeps the NMI pending.
  public func deliverNMI() -> StepResult {
    guard acceptsNMI else { return .retired }
    let result = core.deliverEvent(X86Exception(vector: X86Exception.Vector.nmi, kind: .externalInterrupt))
    if case .delivered = result { core.state.nmiBlocked = true }
    return result
  }
}
