import AArch64
import Debugger
import Machine
import Synchronization

/// The event API on the AArch64 virt machine: the same filters, events, answers and
/// `EventContext` as `IntrospectionSession` (EventDispatch.swift holds what both share), over
/// the virt machine's own stepping.
///
/// Everything comes from the interpreter's host debugging (`A64CPU.hostBreakpoints`,
/// `hostWatches`, `hostSystemRegisterWrites`), which stops a CPU before an instruction with
/// nothing of it done and touches no guest state: breakpoints of either kind are host
/// breakpoints (any number; nothing is written into guest memory), memory accesses and write
/// watchpoints are host watches, system-register writes stop at the MSR. The session reports
/// such a stop, then runs the instruction once with the host's stops passed
/// (`A64CPU.passHostStopsOnce`), which records its watched accesses: memory-access events and
/// write watchpoints are seen after the instruction (a fetch before it), as on x86.
/// Exceptions (`.exceptionSyndrome`, selected by class) and interrupts (0 IRQ, 1 FIQ) are
/// seen at their vectors, at full speed (`VirtMachine.resume(reportingVectors:)`).
///
/// The machine runs on the caller's thread, as it always does: its schedule is one thread's
/// round of the CPUs. While any CPU single-steps, every running CPU is stepped in turn (one
/// instruction each), so the order of their instructions is the stepper's, not the run's.
public final class VirtIntrospectionSession: @unchecked Sendable {
  // @unchecked: everything but `stopRequested` is touched only by the thread in `run()`, or
  // by its caller between runs.
  public let machine: VirtMachine
  public let policy: InterruptPolicy
  typealias Subscription = IntrospectionSession.Subscription
  public typealias SubscriptionID = IntrospectionSession.SubscriptionID
  private var subscriptions: [Subscription] = []
  private var nextID = 0
  private var contexts: [EventContext] = []
  private var singleStepping: [Bool]
  /// A CPU already reported waiting (a waiting CPU's steps stay `.halted` until it wakes).
  private var halted: [Bool]
  private var running = false
  private let stopRequested = Atomic<Bool>(false)
  private var ending: SessionEnd?
  /// What the CPUs have installed, recomputed from the subscriptions when they change.
  private var installed = false
  private var memoryWatches: [MemoryWatch] = []
  private var softwareBreakpoints: Set<UInt64> = []
  private var hardwareBreakpoints: Set<UInt64> = []
  private var reportsVectors = false
  /// Write watchpoints and the bytes last seen there.
  private var watched: [(address: UInt64, length: Int, value: [UInt8]?)] = []
  /// CPUs a handler's `.stop` left standing on an instruction a host stop held back: the next
  /// run carries it out first (as a debugger continuing from a breakpoint steps over it).
  private var unpassed: Set<Int> = []

  public init(machine: VirtMachine, policy: InterruptPolicy = .block) {
    self.machine = machine
    self.policy = policy
    singleStepping = Array(repeating: false, count: machine.cpus.count)
    halted = singleStepping
    contexts = machine.cpus.indices.map { EventContext(virt: machine, cpu: $0) }
    for context in contexts { context.session = self }
  }

  // MARK: Subscriptions

  /// Calls `handler` for the events `filter` selects on the chosen CPUs (nil: all).
  /// Refused with a clear error for filters that cannot work on AArch64 (see `validate`).
  @discardableResult
  public func subscribe(_ filter: EventFilter, vcpus: Set<Int>? = nil, handler: @escaping EventHandler) throws
    -> SubscriptionID
  {
    guard !running else {
      throw IntrospectionError("subscribe before run(), or from a handler (EventContext.subscribe) during it")
    }
    return try add(filter, vcpus: vcpus, handler: handler)
  }

  public func unsubscribe(_ id: SubscriptionID) throws {
    guard !running else {
      throw IntrospectionError("unsubscribe between runs, or from a handler (EventContext.unsubscribe) during one")
    }
    try remove(id)
  }

  /// The current subscriptions, oldest first.
  public var subscriptionIDs: [SubscriptionID] { subscriptions.map(\.id) }

  /// Single-stepping on or off for a CPU before a run (handlers toggle it during one).
  public func setSingleStep(_ on: Bool, vcpu: Int) throws {
    guard singleStepping.indices.contains(vcpu) else { throw IntrospectionError("there is no vCPU \(vcpu)") }
    singleStepping[vcpu] = on
  }

  public func isSingleStepping(vcpu: Int) -> Bool { singleStepping.indices.contains(vcpu) && singleStepping[vcpu] }

  /// The event context of one CPU, to look at it between runs as a handler would.
  public func context(forVCPU index: Int) -> EventContext { contexts[index] }

  private func add(_ filter: EventFilter, vcpus: Set<Int>?, handler: @escaping EventHandler) throws -> SubscriptionID {
    try validate(filter, vcpus: vcpus)
    let id = SubscriptionID(value: nextID)
    nextID += 1
    subscriptions.append(Subscription(id: id, filter: filter, vcpus: vcpus, handler: handler))
    installed = false
    return id
  }

  private func remove(_ id: SubscriptionID) throws {
    guard let index = subscriptions.firstIndex(where: { $0.id == id }) else {
      throw IntrospectionError("no subscription \(id.value)")
    }
    subscriptions.remove(at: index)
    installed = false
  }

  private func validate(_ filter: EventFilter, vcpus: Set<Int>?) throws {
    if let vcpus, let bad = vcpus.first(where: { !machine.cpus.indices.contains($0) }) {
      throw IntrospectionError("there is no vCPU \(bad) (the machine has \(machine.cpus.count))")
    }
    switch filter {
    case .port:
      throw IntrospectionError("AArch64 has no port I/O: watch a device's addresses with .memoryAccess")
    case .mmio:
      throw IntrospectionError(
        "MMIO events are x86's: on AArch64 watch a device's (virtual) addresses with .memoryAccess")
    case .msrWrite:
      throw IntrospectionError("MSR numbers are x86's: on AArch64 subscribe to .systemRegisterWrite")
    case .systemRegisterWrite(let names) where names.isEmpty:
      throw IntrospectionError("a system-register subscription needs at least one register")
    case .memoryAccess(let watch) where watch.length == 0 || watch.kinds.isEmpty:
      throw IntrospectionError("a memory watch needs a length and at least one of read, write, execute")
    case .memoryAccess(let watch) where watch.physical:
      throw IntrospectionError(
        "AArch64 memory watches are by virtual address (as the CPU's accesses translate them), not physical")
    case .writeWatchpoint(_, let length) where !(1...8).contains(length):
      throw IntrospectionError("a write watchpoint covers 1 to 8 bytes, not \(length)")
    case .exception(let classes) where classes.contains { $0 > 0x3f }:
      throw IntrospectionError("AArch64 exception classes (ESR_EL1.EC) are 0-63")
    case .interrupt(let kinds) where kinds.contains { $0 > 1 }:
      throw IntrospectionError("AArch64 interrupts are 0 (IRQ) and 1 (FIQ)")
    default:
      break
    }
  }

  /// Sets the CPUs' host breakpoints, watches and watched system registers from the
  /// subscriptions. Write watchpoints already known keep their last seen bytes.
  private func install() {
    var software: Set<UInt64> = []
    var hardware: Set<UInt64> = []
    var registers: Set<SystemRegisterName> = []
    var watches: [MemoryWatch] = []
    var writes: [(address: UInt64, length: Int)] = []
    reportsVectors = false
    for subscription in subscriptions {
      switch subscription.filter {
      case .softwareBreakpoint(let address): software.insert(address)
      case .hardwareBreakpoint(let address): hardware.insert(address)
      case .systemRegisterWrite(let names): registers.formUnion(names)
      case .memoryAccess(let watch) where !watches.contains(watch): watches.append(watch)
      case .writeWatchpoint(let address, let length): writes.append((address, length))
      case .exception, .interrupt: reportsVectors = true
      default: break
      }
    }
    let previous = watched
    watched = writes.map { write in
      if let known = previous.first(where: { $0.address == write.address && $0.length == write.length }) {
        return known
      }
      return (write.address, write.length, try? contexts[0].readMemory(virtual: write.address, count: write.length))
    }
    let hostWatches =
      watches.map {
        HostWatch(
          start: $0.start, length: $0.length, reads: $0.kinds.contains(.read), writes: $0.kinds.contains(.write),
          executes: $0.kinds.contains(.execute))
      } + writes.map { HostWatch(start: $0.address, length: UInt64($0.length), reads: false, writes: true) }
    for cpu in machine.cpus {
      cpu.hostBreakpoints = software.union(hardware)
      cpu.hostWatches = hostWatches
      cpu.hostSystemRegisterWrites = registers
    }
    softwareBreakpoints = software
    hardwareBreakpoints = hardware
    memoryWatches = watches
    installed = true
  }

  /// Takes every host stop off the CPUs (the guest then runs as if no session had been).
  private func uninstall() {
    for cpu in machine.cpus {
      cpu.hostBreakpoints = []
      cpu.hostWatches = []
      cpu.hostSystemRegisterWrites = []
    }
    installed = false
  }

  // MARK: Running

  /// Runs the machine under the subscriptions until it ends or the session is stopped.
  /// Throws if a handler throws, naming the event and the error; the machine stands at the
  /// boundary where it was, and the session can be run again from there.
  public func run() throws -> SessionEnd {
    guard !running else { throw IntrospectionError("the session is already running") }
    running = true
    defer {
      running = false
      uninstall()
    }
    ending = nil
    stopRequested.store(false, ordering: .releasing)
    install()
    for index in unpassed.sorted() where ending == nil {
      unpassed.remove(index)
      try pass(cpu: index)
    }
    unpassed = []
    while ending == nil {
      if stopRequested.load(ordering: .acquiring) {
        ending = .stopped(vcpu: -1, event: nil)
        break
      }
      if !installed { install() }
      if singleStepping.contains(true) {
        try stepRound()
      } else {
        let (index, stop) = machine.resume(reportingVectors: reportsVectors) {
          !installed || stopRequested.load(ordering: .relaxed)
        }
        try handle(stop, cpu: index)
      }
    }
    return ending ?? .stopped(vcpu: -1, event: nil)
  }

  /// Stops a running session from any thread, between two rounds of the schedule (or two
  /// steps); `run()` returns `.stopped(vcpu: -1, event: nil)`.
  public func requestStop() { stopRequested.store(true, ordering: .releasing) }

  /// One instruction on each running CPU, in index order; ends the machine when every one
  /// waits with nothing to wake it.
  private func stepRound() throws {
    var allWaiting = true
    for index in machine.cpus.indices where machine.isPoweredOn(index) {
      guard ending == nil else { return }
      let stop = machine.step(cpu: index, deliverInterrupts: policy == .deliver)
      if stop != .halted { allWaiting = false }
      try handle(stop, cpu: index)
    }
    if allWaiting && ending == nil {
      try handle(.ended(.waitingForever(pc: machine.cpus[0].pc)), cpu: 0)
    }
  }

  /// Turns one stop of CPU `index` into its events, dispatches them and acts on the answers;
  /// after a host stop (nothing ran) runs the instruction with the stops passed. `extra`:
  /// the watched accesses of the instruction that led to this stop.
  private func handle(_ stop: VirtMachine.Stop, cpu index: Int, extra: [Event] = []) throws {
    let cpu = machine.cpus[index]
    var events: [Event] = []
    var hostStop = false
    var end: VirtOutcome?
    var reason: StopReason = .step
    switch stop {
    case .step:
      break
    case .interrupted:
      return
    case .exception(let syndrome):
      let system = cpu.state.system
      events.append(.exceptionSyndrome(ExceptionSyndrome(esr: UInt64(syndrome), far: system.far, elr: system.elr)))
      reason = .exception(vector: UInt8(syndrome >> 26))
    case .interrupt(let fiq):
      events.append(.interrupt(vector: fiq ? 1 : 0))
      reason = .interrupt(vector: fiq ? 1 : 0)
    case .guestRequest(let value):
      events.append(.guestRequest(value: value))
      reason = .guestRequest(value: value)
    case .halted:
      guard !halted[index] else { return }
      halted[index] = true
      let interruptsOn = cpu.state.pstate.daif & PState.i == 0
      events.append(.halt(interruptsEnabled: interruptsOn))
      reason = .halt(interruptsEnabled: interruptsOn)
    case .breakpoint:
      let pc = cpu.pc
      if softwareBreakpoints.contains(pc) { events.append(.softwareBreakpoint(address: pc)) }
      if hardwareBreakpoints.contains(pc) { events.append(.hardwareBreakpoint(address: pc)) }
      hostStop = true
      reason = .breakpoint(address: pc)
    case .watch:
      hostStop = true
    case .fetchWatch(let address):
      for (number, watch) in memoryWatches.enumerated() where watch.kinds.contains(.execute) && watch.contains(address)
      {
        let hit = MemoryAccessHit(address: address, size: 4, kind: .execute, watch: number, instructionPointer: address)
        events.append(.memoryAccess(hit, watch: watch))
      }
      hostStop = true
    case .systemRegisterWrite(let name, let value):
      events.append(.systemRegisterWrite(name, value: value))
      hostStop = true
    case .ended(let outcome):
      end = outcome
      reason = .exit(outcome.runOutcome)
    }
    if stop != .halted { halted[index] = false }
    // A single step is an instruction retired (or an interrupt entered): a host stop ran
    // nothing, and its instruction's own stop comes after the pass below.
    if singleStepping[index] && !hostStop && end == nil && stop != .halted {
      events.insert(.singleStep(pc: cpu.pc), at: 0)
    }
    events += extra
    if let end { events.append(.shutdown(end.runOutcome)) }
    contexts[index].stop = Stop(reason: reason, pc: cpu.pc, vcpu: index)

    var skip = false
    for event in events {
      switch try dispatch(event, cpu: index) {
      case .continue: break
      case .toggleSingleStep: singleStepping[index].toggle()
      case .emulateAndSkip:
        guard case .systemRegisterWrite = event else {
          throw IntrospectionError("emulate-and-skip answers system-register writes on AArch64, not \(describe(event))")
        }
        skip = true
      case .stop:
        ending = .stopped(vcpu: index, event: event)
        if hostStop { unpassed.insert(index) }
        return
      case .switchEngine:
        throw IntrospectionError("an AArch64 machine has one engine, the interpreter: no switch at \(describe(event))")
      }
    }
    if let end {
      ending = .machineEnded(end.runOutcome)
      return
    }
    guard hostStop else { return }
    if !installed { install() }  // a handler's new subscriptions count from this instruction
    if skip {
      // The MSR is not carried out: the CPU goes on after it, the register unchanged.
      var state = cpu.state
      state.pc &+= 4
      cpu.state = state
      try handle(.step, cpu: index)
      return
    }
    try pass(cpu: index)
  }

  /// Runs the instruction a host stop held back on CPU `index`, through the host's stops, and
  /// handles what it did: its watched accesses (after it) and its own stop.
  private func pass(cpu index: Int) throws {
    let cpu = machine.cpus[index]
    let pc = cpu.pc
    cpu.passHostStopsOnce()
    let next = machine.step(cpu: index, deliverInterrupts: false)
    try handle(next, cpu: index, extra: accessEvents(cpu.takePassedAccesses(), pc: pc) + writeWatchChanges(index))
  }

  /// The memory-access events of the accesses one instruction at `pc` made to watched memory.
  private func accessEvents(_ accesses: [HostWatchAccess], pc: UInt64) -> [Event] {
    var events: [Event] = []
    for access in accesses {
      let kind: MemoryAccessKinds = access.write ? .write : .read
      let last = access.address &+ UInt64(access.size) &- 1
      for (number, watch) in memoryWatches.enumerated()
      where watch.kinds.contains(kind) && access.address <= watch.start &+ watch.length &- 1 && last >= watch.start {
        let hit = MemoryAccessHit(
          address: access.address, size: UInt64(access.size), kind: kind, watch: number, instructionPointer: pc)
        events.append(.memoryAccess(hit, watch: watch))
      }
    }
    return events
  }

  /// Write watchpoints whose bytes changed since they were last seen.
  private func writeWatchChanges(_ index: Int) -> [Event] {
    var events: [Event] = []
    for number in watched.indices {
      let entry = watched[number]
      guard let now = try? contexts[index].readMemory(virtual: entry.address, count: entry.length) else { continue }
      if let old = entry.value, now != old {
        events.append(.writeWatchpoint(address: entry.address, old: old, new: now))
      }
      watched[number].value = now
    }
    return events
  }

  /// Every handler subscribed to `event` on this CPU, in subscription order, their answers
  /// combined as on x86 (`Answers`).
  private func dispatch(_ event: Event, cpu index: Int) throws -> EventResponse {
    var answers = Answers()
    for subscription in subscriptions where subscription.covers(index) && subscription.filter.matches(event) {
      let response: EventResponse
      do { response = try subscription.handler(event, contexts[index]) } catch {
        throw IntrospectionError("the handler for \(describe(event)) on vCPU \(index) failed: \(error)")
      }
      if answers.take(response) { return .stop }
    }
    if answers.engine != nil {
      throw IntrospectionError("an AArch64 machine has one engine, the interpreter: no switch at \(describe(event))")
    }
    return answers.combined
  }
}

extension VirtIntrospectionSession: SubscriptionOwner {
  func subscribe(fromHandlerOn vcpu: Int, _ filter: EventFilter, vcpus: Set<Int>?, handler: @escaping EventHandler)
    throws -> SubscriptionID
  {
    try add(filter, vcpus: vcpus, handler: handler)
  }

  func unsubscribe(fromHandlerOn vcpu: Int, _ id: SubscriptionID) throws { try remove(id) }
}
