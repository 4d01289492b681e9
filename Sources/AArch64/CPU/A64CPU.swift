import GuestMemory

/// One AArch64 processor run by the interpreter over a `GuestRAM`, at EL0 and EL1.
///
/// `step()` executes exactly one instruction; `run(maxInstructions:)` loops it inside the
/// core. State is read and written as a value through `state`; a write drops cached
/// translations, so MMU changes take effect.
public final class A64CPU {
  var core: A64Core

  public init(memory: GuestRAM, bus: any A64Bus = A64NoDevices(), cpuIndex: UInt8 = 0) {
    core = A64Core(ram: memory, bus: bus)
    core.cpuIndex = cpuIndex
  }

  public var memory: GuestRAM { core.ram }

  /// Joins the machine's global exclusive monitor (every CPU of an SMP machine shares one).
  public func attach(globalMonitor: GlobalExclusiveMonitor) { core.globalMonitor = globalMonitor }

  public func attach(bus: any A64Bus) { core.bus = bus }

  public var state: A64State {
    get { core.state }
    set {
      core.state = newValue
      core.tlb.flush()
      core.refreshDebugArmed()
    }
  }

  public var retiredInstructions: UInt64 { core.retiredInstructions }

  /// The generic counter (CNTPCT_EL0): one tick per retired instruction at `counterFrequency`.
  public var counter: UInt64 { core.counter }
  public static var counterFrequency: UInt64 { A64Core.counterFrequency }

  public func step() -> A64StepResult { core.step() }

  /// The PC (without copying the rest of the state out).
  public var pc: UInt64 { core.state.pc }

  /// Steps while each step retires plainly (see `A64PlainRunEnd`), calling `body` with the PC
  /// after each; `body` must not touch this CPU (it runs inside the CPU's one access).
  public func stepPlainly(deadline: UInt64?, body: (UInt64) -> Bool) -> A64PlainRunEnd {
    core.stepPlainly(deadline: deadline, body: body)
  }

  /// Runs until `maxInstructions` retire or anything but a plain retirement happens
  /// (a wait, an exception, a stop, or an unmasked interrupt line at a boundary).
  @discardableResult
  public func run(maxInstructions: UInt64) -> (executed: UInt64, stop: A64StepResult) {
    core.run(budget: maxInstructions)
  }

  /// When true, exceptions are taken to EL1 through VBAR_EL1 and `step()` returns
  /// `.delivered`; when false (the default, for tests) they are returned undelivered.
  public var deliversExceptions: Bool {
    get { core.deliversExceptions }
    set { core.deliversExceptions = newValue }
  }

  /// The interrupt lines from the platform's interrupt controller.
  public var irqLine: Bool {
    get { core.irqLine }
    set {
      core.irqLine = newValue
      if newValue { core.state.waiting = false }
    }
  }

  public var fiqLine: Bool {
    get { core.fiqLine }
    set {
      core.fiqLine = newValue
      if newValue { core.state.waiting = false }
    }
  }

  /// Takes a pending, unmasked IRQ or FIQ now (at an instruction boundary): true if taken.
  public func takeInterruptIfPending() -> Bool { core.takeInterruptIfPending() }

  /// Where the last instruction the interpreter does not know was, if one was UNDEFINED
  /// since the last call; clears it.
  public func takeUndefinedInstruction() -> UInt64? {
    defer { core.undefinedInstructionAddress = nil }
    return core.undefinedInstructionAddress
  }

  /// Forgets every decoded instruction (after the host wrote guest code behind the CPU's back).
  public func invalidateDecodedInstructions() { core.decodeCache.flush() }

  /// A system register as the guest would read it at EL1 (for a debugger; no EL0 checks).
  public func systemRegister(_ name: SystemRegisterName) -> UInt64? {
    let el = core.state.pstate.el
    core.state.pstate.el = 1
    defer { core.state.pstate.el = el }
    return try? core.readSystemRegister(name, word: 0)
  }

  /// The physical address of a virtual one under the current translation regime, as an EL1
  /// read would see it; nil when it does not translate.
  public func translate(_ address: UInt64) -> UInt64? {
    let el = core.state.pstate.el
    core.state.pstate.el = 1
    defer { core.state.pstate.el = el }
    return try? core.translate(address, .read)
  }
}

// MARK: A host debugger's breakpoints and watches

extension A64CPU {
  /// Breakpoints by virtual address: a step that finds the PC on one returns
  /// `.hostBreakpoint` without running it.
  public var hostBreakpoints: Set<UInt64> {
    get { core.host.breakpoints }
    set {
      core.host.breakpoints = newValue
      core.hostArmed = core.host.armed
    }
  }

  /// Watched virtual ranges: a step whose instruction would access one returns `.hostWatch`
  /// with nothing of it done.
  public var hostWatches: [HostWatch] {
    get { core.host.watches }
    set {
      core.host.watches = newValue
      core.host.watchesFetches = newValue.contains { $0.executes }
      core.hostArmed = core.host.armed
    }
  }

  /// Lets the next step run the instruction at the PC despite a breakpoint there.
  public func passBreakpointOnce() { core.host.passBreakpointOnce = true }

  /// System registers whose MSR writes stop the step before they take effect
  /// (`.hostSystemRegisterWrite`, the PC on the MSR).
  public var hostSystemRegisterWrites: Set<SystemRegisterName> {
    get { core.host.systemRegisterWrites }
    set {
      core.host.systemRegisterWrites = newValue
      core.hostArmed = core.host.armed
    }
  }

  /// Lets the next instruction run through every host stop (its breakpoint, its fetch watch,
  /// its watched system-register write); its watched data accesses are recorded for
  /// `takePassedAccesses` instead of stopping it.
  public func passHostStopsOnce() {
    core.host.passBreakpointOnce = true
    core.host.passNext = true
    core.host.passedAccesses.removeAll(keepingCapacity: true)
  }

  /// The watched accesses the passed instruction made, oldest first; clears them.
  public func takePassedAccesses() -> [HostWatchAccess] {
    defer { core.host.passedAccesses.removeAll(keepingCapacity: true) }
    return core.host.passedAccesses
  }
}

// MARK: The generic timers (ARM ARM D11.2) as the platform sees them

extension A64CPU {
  /// The counter's value when this CPU had retired nothing; a platform moves it forward to
  /// bring a waiting CPU's clock up to the others' (time passes in WFI too).
  public var counterBase: UInt64 {
    get { core.counterBase }
    set { core.counterBase = newValue }
  }

  /// The EL1 physical timer's output (PPI 14, INTID 30 on QEMU virt): enabled, not masked,
  /// and the counter at or past CNTP_CVAL_EL0.
  public var physicalTimerFiring: Bool {
    let s = core.state.system
    return s.cntpCTL & 3 == 1 && core.counter >= s.cntpCVAL
  }

  /// The virtual timer's output (PPI 11, INTID 27): the same against the virtual count.
  public var virtualTimerFiring: Bool {
    let s = core.state.system
    return s.cntvCTL & 3 == 1 && core.counter &- s.cntvoff >= s.cntvCVAL
  }

  /// The physical count at which an enabled, unmasked timer that is not firing yet will fire;
  /// nil when none will. A platform runs the CPU no further than this, so the interrupt
  /// arrives at the same instruction on every run.
  public var nextTimerDeadline: UInt64? {
    let s = core.state.system
    var deadline: UInt64?
    if s.cntpCTL & 3 == 1 && core.counter < s.cntpCVAL { deadline = s.cntpCVAL }
    if s.cntvCTL & 3 == 1 && core.counter &- s.cntvoff < s.cntvCVAL {
      let physical = s.cntvCVAL &+ s.cntvoff
      deadline = min(deadline ?? physical, physical)
    }
    return deadline
  }

  /// Whether the CPU waits in WFI/WFE.
  public var isWaiting: Bool { core.state.waiting }

  /// Changes whenever an instruction did something that may change an interrupt line (an
  /// MMIO access, a call, a timer register write): between two equal values, only the
  /// timers' deadlines can.
  public var platformEpoch: UInt64 { core.platformEpoch }
}
