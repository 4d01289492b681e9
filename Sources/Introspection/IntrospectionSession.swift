import Debugger
import KVM
import Machine
import Synchronization

/// Watches a machine from outside: typed events per vCPU, answered by Swift handlers.
///
/// Subscribe, then `run()`: every vCPU runs on a thread of its own (vCPU 0 on the caller's),
/// at full speed unless something needs it stepped (single-step on, or a write watchpoint),
/// until the machine ends, a handler answers `.stop` or throws, or `requestStop()` is called.
/// The guest's own debug events (its INT3s, its #DB from TF or its debug registers) stay the
/// guest's, as under the step contract; only the host's breakpoints become events.
public final class IntrospectionSession: @unchecked Sendable {
  // @unchecked: the subscriptions and the ending are under Mutexes; each vCPU's state is
  // touched only by the thread driving that vCPU.
  public let machine: Machine
  public let policy: InterruptPolicy
  private let registry = Mutex(Registry())
  private var vcpuStates: [VCPUState] = []
  private let ending = Mutex<Ending?>(nil)
  /// Whether `ending` is set, readable without the lock on every step.
  private let ended = Atomic<Bool>(false)
  /// `Registry.generation`, readable without the lock: each vCPU's loop compares it with its
  /// plan's at every stop.
  private let subscriptionGeneration = Atomic<Int>(0)
  private let running = Atomic<Bool>(false)
  private let breakpoints: BreakpointStore

  /// A subscription's handle, for `unsubscribe`.
  public struct SubscriptionID: Hashable, Sendable { let value: Int }

  struct Subscription {
    let id: SubscriptionID
    let filter: EventFilter
    /// nil: every vCPU.
    let vcpus: Set<Int>?
    let handler: EventHandler
    /// Plain single steps in batches (`subscribeSingleSteps`), for a `.singleStep` filter.
    var batch: SingleStepBatchHandler? = nil

    func covers(_ vcpu: Int) -> Bool { vcpus?.contains(vcpu) ?? true }
  }

  enum Ending {
    case end(SessionEnd)
    case failure(IntrospectionError)
  }

  /// The subscriptions, which handlers may change during a run (`EventContext.subscribe`).
  struct Registry: Sendable {
    var subscriptions: [Subscription] = []
    var nextID = 0
    /// Bumped on every change, so each vCPU's loop notices one at its next boundary.
    var generation = 0
    /// Software breakpoints planted in guest memory for this run.
    var planted: Set<UInt64> = []
  }

  /// What one vCPU's loop needs of the subscriptions, recomputed when they change.
  struct Plan {
    /// The subscriptions as of `generation`, those covering this vCPU only.
    var subscriptions: [Subscription] = []
    /// The handlers of those for single steps, in order: a plain step goes to these alone.
    var stepHandlers: [EventHandler] = []
    /// The batch handler of the one single-step subscription, if it has one: plain steps go
    /// to it many at a time (see `stepBatch`).
    var stepBatch: SingleStepBatchHandler?
    var hardware: [UInt64] = []
    var software: Set<UInt64> = []
    var watchesHandlers = false
    /// This vCPU's memory watches, in the order the engine numbers them.
    var memoryWatches: [MemoryWatch] = []
    var generation = -1
  }

  /// Per-vCPU state, owned by the thread driving that vCPU.
  final class VCPUState: @unchecked Sendable {
    let stepper: Stepper
    let context: EventContext
    var singleStepping = false
    /// Set by access handlers, acted on at the next instruction boundary.
    var toggleAfterAccess = false
    var watched: [(address: UInt64, length: Int, value: [UInt8])] = []
    var plan = Plan()
    /// The memory watches the engine has for this vCPU.
    var installedWatches: [MemoryWatch] = []
    /// The engine a handler asked this vCPU to go on with (`EventResponse.switchEngine`).
    var pendingEngine: EngineKind?
    /// Its write watchpoints' pages are write-protected in KVM: it runs at full speed.
    var watchesAtFullSpeed = false

    init(stepper: Stepper) {
      self.stepper = stepper
      // MSR writes reach the handlers from inside the exit (AccessDispatcher); a stop after
      // each would only cost a second KVM_RUN.
      stepper.stopsAtMSRWrites = false
      context = EventContext(stepper: stepper)
    }
  }

  public init(machine: Machine, policy: InterruptPolicy = .block) throws {
    self.machine = machine
    self.policy = policy
    breakpoints = BreakpointStore(machine: machine)
    vcpuStates = try machine.cpus.indices.map {
      VCPUState(stepper: try Stepper(machine: machine, vcpu: $0, policy: policy, breakpoints: breakpoints))
    }
    for state in vcpuStates { state.context.session = self }
  }

  // MARK: Subscriptions

  /// Calls `handler` for the events `filter` selects on the chosen vCPUs (nil: all).
  /// Refused with a clear error for filters that cannot work (see `validate`).
  @discardableResult
  public func subscribe(_ filter: EventFilter, vcpus: Set<Int>? = nil, handler: @escaping EventHandler) throws
    -> SubscriptionID
  {
    guard !running.load(ordering: .acquiring) else {
      throw IntrospectionError("subscribe before run(), or from a handler (EventContext.subscribe) during it")
    }
    return try add(filter, vcpus: vcpus, handler: handler, from: nil)
  }

  /// `subscribe(.singleStep, ...)` with a batch handler besides: while this is a vCPU's only
  /// single-step subscription and nothing else needs a look at each step (no write
  /// watchpoint, no access handler's toggle pending), its plain steps go to `batch` many at a
  /// time; every other single step goes to `handler` as usual. For tracers: a step handed
  /// through the session one at a time costs more than the instruction on the interpreter.
  @discardableResult
  public func subscribeSingleSteps(
    vcpus: Set<Int>? = nil, batch: @escaping SingleStepBatchHandler, handler: @escaping EventHandler
  ) throws -> SubscriptionID {
    guard !running.load(ordering: .acquiring) else {
      throw IntrospectionError("subscribe before run(), or from a handler (EventContext.subscribe) during it")
    }
    return try add(.singleStep, vcpus: vcpus, handler: handler, batch: batch, from: nil)
  }

  public func unsubscribe(_ id: SubscriptionID) throws {
    guard !running.load(ordering: .acquiring) else {
      throw IntrospectionError("unsubscribe between runs, or from a handler (EventContext.unsubscribe) during one")
    }
    try remove(id, from: nil)
  }

  /// The current subscriptions, oldest first.
  public var subscriptionIDs: [SubscriptionID] { subscriptions.map(\.id) }

  private var subscriptions: [Subscription] { registry.withLock { $0.subscriptions } }

  /// Adds a subscription; during a run `caller` is the state of the vCPU whose handler asks.
  func add(
    _ filter: EventFilter, vcpus: Set<Int>?, handler: @escaping EventHandler, batch: SingleStepBatchHandler? = nil,
    from caller: VCPUState?
  ) throws -> SubscriptionID {
    try validate(filter, vcpus: vcpus)
    if let caller {
      switch filter {
      case .port, .mmio, .msrWrite:
        // The machine's access watcher and KVM's MSR filter are set up when a run starts.
        throw IntrospectionError("port, MMIO and MSR subscriptions are made before run(), not from a handler")
      case .softwareBreakpoint(let address):
        let planted = registry.withLock { $0.planted.contains(address) }
        if !planted {
          try caller.stepper.insertSoftwareBreakpoint(at: address)
          registry.withLock { _ = $0.planted.insert(address) }
        }
      default:
        break
      }
    }
    let id = registry.withLock { registry in
      let id = SubscriptionID(value: registry.nextID)
      registry.nextID += 1
      registry.subscriptions.append(
        Subscription(id: id, filter: filter, vcpus: vcpus, handler: handler, batch: batch))
      registry.generation += 1
      subscriptionGeneration.store(registry.generation, ordering: .releasing)
      return id
    }
    if let caller { interruptOthers(than: caller) }
    return id
  }

  /// Removes a subscription (an unknown one is an error); see `add` for `caller`.
  func remove(_ id: SubscriptionID, from caller: VCPUState?) throws {
    let removed = registry.withLock { registry -> Subscription? in
      guard let index = registry.subscriptions.firstIndex(where: { $0.id == id }) else { return nil }
      registry.generation += 1
      subscriptionGeneration.store(registry.generation, ordering: .releasing)
      return registry.subscriptions.remove(at: index)
    }
    guard let removed else { throw IntrospectionError("no subscription \(id.value)") }
    guard let caller else { return }
    if case .softwareBreakpoint(let address) = removed.filter, !softwareBreakpoints.contains(address) {
      try caller.stepper.removeSoftwareBreakpoint(at: address)
      registry.withLock { _ = $0.planted.remove(address) }
    }
    interruptOthers(than: caller)
  }

  /// `EventContext.subscribe`/`unsubscribe`: from a handler on `vcpu`'s thread.
  func subscribe(fromHandlerOn vcpu: Int, _ filter: EventFilter, vcpus: Set<Int>?, handler: @escaping EventHandler)
    throws -> SubscriptionID
  {
    try add(filter, vcpus: vcpus, handler: handler, from: running.load(ordering: .acquiring) ? vcpuStates[vcpu] : nil)
  }

  func unsubscribe(fromHandlerOn vcpu: Int, _ id: SubscriptionID) throws {
    try remove(id, from: running.load(ordering: .acquiring) ? vcpuStates[vcpu] : nil)
  }

  /// Makes the other vCPUs, which may be running free, stop once and pick up a change of
  /// the subscriptions (an interrupted stop is no event).
  private func interruptOthers(than caller: VCPUState) {
    for state in vcpuStates where state !== caller { state.stepper.requestStop() }
  }

  /// Single-stepping on or off for a vCPU before a run (handlers toggle it during one).
  public func setSingleStep(_ on: Bool, vcpu: Int) throws {
    guard vcpuStates.indices.contains(vcpu) else { throw IntrospectionError("there is no vCPU \(vcpu)") }
    vcpuStates[vcpu].singleStepping = on
  }

  /// Whether write watchpoints on KVM run the guest at full speed with their pages
  /// write-protected (the default, where the host allows), or step it and compare after every
  /// instruction (for comparison: Benchmarks/watch.sh). Set before `run()`.
  public var writeWatchesAtFullSpeed = true

  /// The engine the vCPUs run on now: the machine's, or after `switchEngine` the other one.
  public var engine: EngineKind { vcpuStates.first?.stepper.engine ?? machine.engine }

  /// Moves every vCPU to `target` between runs (`Stepper.switchEngine`); the memory watches
  /// the next run needs are installed on the engine it finds. Throws, changing nothing, when
  /// the machine cannot switch.
  public func switchEngine(to target: EngineKind) throws {
    if target != engine, let refusal = machine.engineSwitchRefusal(allVCPUsTogether: true) {
      throw IntrospectionError("cannot switch engines: \(refusal)")
    }
    var moved: [VCPUState] = []
    do {
      for state in vcpuStates {
        try state.stepper.switchEngine(to: target)
        state.installedWatches = []
        moved.append(state)
      }
    } catch {
      // All or none: the vCPUs moved already go back (KVM's in-kernel chips move only with
      // every vCPU). Should one of those moves fail as well, the first error is still the
      // one that says why.
      for state in moved.reversed() { try? state.stepper.switchEngine(to: target == .kvm ? .interpreter : .kvm) }
      throw error
    }
  }

  /// The stepper of one vCPU, for a client that also drives it itself between runs (the GDB
  /// server's single steps and register access). Never while `run()` is going on.
  public func stepper(forVCPU index: Int) -> Stepper { vcpuStates[index].stepper }

  /// The event context of one vCPU, for a client that looks at it between runs as a handler
  /// would during one (a console's first stop, before the guest has run: registers, memory,
  /// subscriptions). Never while `run()` is going on; its `stop` is the last run's, or nil.
  public func context(forVCPU index: Int) -> EventContext { vcpuStates[index].context }

  public func isSingleStepping(vcpu: Int) -> Bool {
    vcpuStates.indices.contains(vcpu) && vcpuStates[vcpu].singleStepping
  }

  private func validate(_ filter: EventFilter, vcpus: Set<Int>?) throws {
    if let vcpus, let bad = vcpus.first(where: { !machine.cpus.indices.contains($0) }) {
      throw IntrospectionError("there is no vCPU \(bad) (the machine has \(machine.cpus.count))")
    }
    switch filter {
    case .memoryAccess where engine != .interpreter && !machine.canWriteProtect:
      throw IntrospectionError(
        "memory-access events on KVM need one vCPU and read-only memory slots; use the interpreter (--accel emu)")
    case .memoryAccess(let watch) where watch.length == 0 || watch.kinds.isEmpty:
      throw IntrospectionError("a memory watch needs a length and at least one of read, write, execute")
    case .writeWatchpoint(_, let length) where !(1...8).contains(length):
      throw IntrospectionError("a write watchpoint covers 1 to 8 bytes, not \(length)")
    case .exception(let vectors) where vectors.contains { $0 >= 32 }:
      throw IntrospectionError("exception vectors are 0-31; use .interrupt for vectors 32-255")
    case .systemRegisterWrite:
      throw IntrospectionError(
        "system-register events are AArch64's (VirtIntrospectionSession); on x86 subscribe to .msrWrite")
    case .msrWrite(let indices) where indices.isEmpty:
      throw IntrospectionError("an MSR-write subscription needs at least one MSR")
    case .msrWrite(let indices):
      let all = Set(msrIndices + indices)
      guard all.count <= 16 else { throw IntrospectionError("at most 16 MSRs can be watched, \(all.count) asked for") }
    case .hardwareBreakpoint(let address):
      let all = Set(hardwareBreakpoints + [address])
      guard all.count <= 4 else {
        throw IntrospectionError(
          "all four debug-register slots are in use: no hardware breakpoint at 0x\(String(address, radix: 16))")
      }
    default:
      break
    }
  }

  private var hardwareBreakpoints: [UInt64] { subscriptions.hardwareBreakpoints }
  private var softwareBreakpoints: Set<UInt64> { subscriptions.softwareBreakpoints }
  private var msrIndices: [UInt32] {
    subscriptions.flatMap { subscription -> [UInt32] in
      if case .msrWrite(let indices) = subscription.filter { return indices }
      return []
    }
  }

  // MARK: Running

  /// Runs the machine under the subscriptions until it ends or the session is stopped.
  /// Throws if a handler throws (after stopping every vCPU), naming the event and the error.
  public func run() throws -> SessionEnd {
    guard !running.exchange(true, ordering: .acquiringAndReleasing) else {
      throw IntrospectionError("the session is already running")
    }
    defer { running.store(false, ordering: .releasing) }
    ending.withLock { $0 = nil }
    ended.store(false, ordering: .releasing)
    for state in vcpuStates { _ = state.stepper.stopSwitch.take() }  // stale requests from before

    for address in softwareBreakpoints {
      try vcpuStates[0].stepper.insertSoftwareBreakpoint(at: address)
      registry.withLock { _ = $0.planted.insert(address) }
    }
    defer {
      // Also those handlers added: the run's thread is the only one left.
      let planted = registry.withLock { registry in
        defer { registry.planted.removeAll() }
        return registry.planted
      }
      // A defer cannot throw, and each byte goes back to the RAM it was read from: cannot fail.
      for address in planted { try? vcpuStates[0].stepper.removeSoftwareBreakpoint(at: address) }
    }
    let msrs = Array(Set(msrIndices)).sorted()
    if !msrs.isEmpty { try machine.trapMSRWrites(msrs) }
    let watcher = AccessDispatcher(session: self)
    if watcher.isNeeded { machine.watchAccesses(watcher) }
    defer { machine.watchAccesses(nil) }
    for state in vcpuStates {
      state.watched = []
      state.plan = Plan()
      try refreshPlan(state)
    }

    let others = vcpuStates.dropFirst().map { state in
      let session = SendableSession(self)
      return HostThread(name: "vcpu\(state.context.vcpu)-events") { session.value.drive(state) }
    }
    drive(vcpuStates[0])
    for thread in others { thread.join() }
    // No vCPU runs now: all RAM writable again, for whatever runs the guest next.
    if !machine.memoryProtection.isEmpty { try machine.protectMemory(MemoryProtection()) }
    switch ending.withLock({ $0 }) {
    case .end(let end): return end
    case .failure(let error): throw error
    case nil: return .machineEnded(.halted)  // every vCPU halted with interrupts off
    }
  }

  /// Stops a running session from any thread; `run()` returns `.stopped(vcpu: -1, event: nil)`.
  public func requestStop() { finish(.end(.stopped(vcpu: -1, event: nil))) }

  /// Records the first ending and stops every vCPU at its next instruction boundary.
  private func finish(_ reason: Ending) {
    let first = ending.withLock { current in
      guard current == nil else { return false }
      current = reason
      return true
    }
    guard first else { return }
    ended.store(true, ordering: .releasing)
    for state in vcpuStates { state.stepper.requestStop() }
  }

  private var isEnding: Bool { ended.load(ordering: .acquiring) }

  /// Brings a vCPU's plan and write watches up to date with the subscriptions. Watches it
  /// already had keep their last seen value; new ones start from memory as it is now.
  private func refreshPlan(_ state: VCPUState) throws {
    let vcpu = state.context.vcpu
    guard subscriptionGeneration.load(ordering: .acquiring) != state.plan.generation else { return }
    let (current, generation) = registry.withLock { ($0.subscriptions, $0.generation) }
    let mine = current.filter { $0.covers(vcpu) }
    let steps = mine.filter { if case .singleStep = $0.filter { true } else { false } }
    state.plan = Plan(
      subscriptions: mine,
      stepHandlers: steps.map(\.handler),
      stepBatch: steps.count == 1 ? steps[0].batch : nil,
      hardware: current.hardwareBreakpoints,
      software: current.softwareBreakpoints,
      watchesHandlers: mine.contains { subscription in
        switch subscription.filter {
        case .exception, .interrupt: return true
        default: return false
        }
      },
      memoryWatches: mine.reduce(into: []) { watches, subscription in
        if case .memoryAccess(let watch) = subscription.filter, !watches.contains(watch) { watches.append(watch) }
      },
      generation: generation)
    if state.plan.memoryWatches != state.installedWatches {
      try state.stepper.setMemoryWatches(state.plan.memoryWatches)
      state.installedWatches = state.plan.memoryWatches
    }
    let previous = state.watched
    state.watched = try mine.compactMap { subscription in
      guard case .writeWatchpoint(let address, let length) = subscription.filter else { return nil }
      if let known = previous.first(where: { $0.address == address && $0.length == length }) { return known }
      return (address, length, try state.stepper.readMemory(linear: address, count: length))
    }
    try protectWatchedPages(state)
  }

  /// On KVM, where the host has read-only memory slots (and the machine one vCPU), a vCPU's
  /// watches are served at full speed through protected pages: its write watchpoints' pages
  /// are write-protected, and a write there stops the run after its instruction for the
  /// compare; its memory watches' pages are absent or read-only to KVM, and the stepper
  /// stops only for an access that touches a watched byte (Stepper+ProtectedPages). The
  /// page tables mapping the watched addresses are write-protected too, and a write to them
  /// stops the run like a watched write: the pages are translated again at every stop on
  /// KVM (`drive`), so the protection follows a guest that remaps them. A write watchpoint
  /// on an unmapped page leaves the vCPU stepping and comparing, as before.
  private func protectWatchedPages(_ state: VCPUState) throws {
    state.watchesAtFullSpeed = false
    guard machine.canWriteProtect else { return }
    guard state.stepper.engine == .kvm else {
      if !machine.memoryProtection.isEmpty { try machine.protectMemory(MemoryProtection()) }
      return
    }
    let writes = writeWatchesAtFullSpeed ? state.watched.map { (address: $0.address, length: $0.length) } : []
    var (protection, writesMapped) = state.stepper.kvmWatchProtection(writeWatches: writes)
    if !writesMapped { (protection, _) = state.stepper.kvmWatchProtection(writeWatches: []) }
    try machine.protectMemory(protection)
    state.watchesAtFullSpeed = !writes.isEmpty && writesMapped
  }

  /// One vCPU's loop: run or step, turn stops into events, act on the answers.
  fileprivate func drive(_ state: VCPUState) {
    let stepper = state.stepper
    let vcpu = state.context.vcpu
    var events: [Event] = []
    events.reserveCapacity(4)
    do {
      while !isEnding {
        try refreshPlan(state)
        let watchesHandlers = state.plan.watchesHandlers
        // Handler INT3s need an IDT: until a protected- or long-mode guest loads one (its IDTR
        // limit is 0 from Hyperstep's entry state), the vCPU is stepped, so the LIDT is seen.
        // (Read only then: on the interpreter the first read after a stop builds them.)
        var noTableYet = false
        if watchesHandlers {
          let special = stepper.specialRegisters
          noTableYet = special.cr0 & 1 != 0 && special.idt.limit == 0
        }
        // Write watchpoints: compared after every step, or on KVM after each write to a
        // watched page while the guest runs at full speed (`protectWatchedPages`).
        let stepping = state.singleStepping || (!state.watched.isEmpty && !state.watchesAtFullSpeed) || noTableYet
        let stop: Stop
        if state.singleStepping, state.watched.isEmpty, !state.toggleAfterAccess, let batch = state.plan.stepBatch {
          // Plain steps go to the batch handler; a stop that is more than that goes on below.
          switch try stepBatch(batch, on: state) {
          case .over: return
          case .steppedOn: continue
          case .other(let other): stop = other
          }
        } else {
          stop =
            stepping
            ? try stepper.step() : try stepper.run(until: state.plan.hardware, watchingHandlers: watchesHandlers)
        }
        // A plain step while single-stepping is the one event of its stop (nothing else is
        // watched, nothing ends): straight to the single-step handlers, as the loop below would.
        if case .step = stop.reason, state.singleStepping, state.watched.isEmpty, !state.toggleAfterAccess {
          state.context.stop = stop
          let event = Event.singleStep(pc: stop.pc)
          if try apply(dispatchStep(event, on: state), to: event, on: state) { return }
          continue
        }
        // One array for the whole loop: a step is too short to allocate one each time.
        events.removeAll(keepingCapacity: true)
        var machineEnd: RunOutcome?
        switch stop.reason {
        case .step, .msrWrite, .protectedPageWritten:
          break
        case .halt(let interruptsOn):
          events.append(.halt(interruptsEnabled: interruptsOn))
          // Halted with interrupts off and nothing that could wake it: this vCPU is done.
          if !interruptsOn && (!machine.hasInterruptController || machine.cpus.count == 1) { machineEnd = .halted }
        case .exception(let vector):
          events.append(.exception(vector: vector))
        case .interrupt(let vector):
          events.append(.interrupt(vector: vector))
        case .breakpoint(let address):
          events.append(
            state.plan.software.contains(address)
              ? .softwareBreakpoint(address: address) : .hardwareBreakpoint(address: address))
        case .guestRequest(let value):
          events.append(.guestRequest(value: value))
        case .memoryAccess(let hits):
          for hit in hits where state.plan.memoryWatches.indices.contains(hit.watch) {
            events.append(.memoryAccess(hit, watch: state.plan.memoryWatches[hit.watch]))
          }
        case .interrupted:
          break
        case .exit(let outcome):
          if case .halted = outcome { events.append(.halt(interruptsEnabled: false)) }
          machineEnd = outcome
        }
        if state.singleStepping, stop.reason != .interrupted, machineEnd == nil {
          events.insert(.singleStep(pc: stop.pc), at: 0)  // (at most a few events: a cheap insert)
        }
        var protectedAccess = stop.reason == .protectedPageWritten
        if case .memoryAccess = stop.reason { protectedAccess = true }
        if (stepping || protectedAccess) && !state.watched.isEmpty {
          events += try watchpointChanges(state)
        }
        // On KVM the guest may have remapped watched addresses (a write to its page tables
        // stops the run; a CR3 load is seen here, at the next stop): the protection follows.
        if stepper.engine == .kvm && (!state.plan.memoryWatches.isEmpty || !state.watched.isEmpty) {
          try protectWatchedPages(state)
        }
        if let machineEnd { events.append(.shutdown(machineEnd)) }

        if state.toggleAfterAccess {
          state.toggleAfterAccess = false
          state.singleStepping.toggle()
        }
        state.context.stop = stop
        for event in events {
          let response = try dispatch(event, on: state)
          if try apply(response, to: event, on: state) { return }
        }
        if let machineEnd {
          if machineEnd == .halted && machine.cpus.count > 1 { return }  // the others may go on
          finish(.end(.machineEnded(machineEnd)))
          return
        }
      }
    } catch let error as IntrospectionError {
      finish(.failure(error))
    } catch {
      finish(.failure(IntrospectionError("vCPU \(vcpu): \(error)")))
    }
  }

  /// How a batch of plain steps ended.
  enum StepBatchEnd {
    /// The handler's answer ended the session.
    case over
    /// Back to the loop, which checks what it checks between steps.
    case steppedOn
    /// This stop, more than a plain step, is still to be handled as the loop handles stops.
    case other(Stop)
  }

  /// The most steps in one batch (the loop's checks are made between its steps too).
  static let stepBatchLimit = 1 << 16

  /// Plain single steps through the vCPU's batch handler (`subscribeSingleSteps`): the steps
  /// the loop would hand to the one single-step handler, with the loop's checks between
  /// them (the session's end, a change of subscriptions, an access handler's toggle) ending
  /// the batch where the loop would have looked again.
  private func stepBatch(_ batch: SingleStepBatchHandler, on state: VCPUState) throws -> StepBatchEnd {
    let stepper = state.stepper
    let generation = state.plan.generation
    var called = false
    var taken = 0
    var other: Stop?
    var lastPC: UInt64?
    var stepperError: (any Error)?
    let response: EventResponse
    do {
      response = try batch(
        { body in
          called = true
          do {
            (taken, other) = try stepper.stepPlain(limit: Self.stepBatchLimit) { pc in
              // An access handler's toggle counts from its instruction's stop: the loop's way.
              if state.toggleAfterAccess { return .decline }
              lastPC = pc
              guard body(pc) else { return .last }
              return isEnding || subscriptionGeneration.load(ordering: .acquiring) != generation ? .last : .next
            }
          } catch {
            stepperError = error
            throw error
          }
        }, state.context)
    } catch {
      if let stepperError { throw stepperError }
      let pc = try lastPC ?? stepper.pc()
      throw IntrospectionError(
        "the handler for \(describe(.singleStep(pc: pc))) on vCPU \(state.context.vcpu) failed: \(error)")
    }
    if let lastPC, taken > 0 { state.context.stop = Stop(reason: .step, pc: lastPC, vcpu: state.context.vcpu) }
    if let other {
      guard response == .continue else {
        throw IntrospectionError(
          "the single-step batch handler on vCPU \(state.context.vcpu) answered .\(response) without ending its batch")
      }
      return .other(other)
    }
    guard called || response != .continue else {
      throw IntrospectionError(
        "the single-step batch handler on vCPU \(state.context.vcpu) answered .continue without taking its steps")
    }
    let event = Event.singleStep(pc: try lastPC ?? stepper.pc())
    return try apply(response, to: event, on: state) ? .over : .steppedOn
  }

  /// Write watchpoints, checked after each step: the changes the last instruction made.
  private func watchpointChanges(_ state: VCPUState) throws -> [Event] {
    var events: [Event] = []
    for index in state.watched.indices {
      let entry = state.watched[index]
      let now = try state.stepper.readMemory(linear: entry.address, count: entry.length)
      if now != entry.value {
        events.append(.writeWatchpoint(address: entry.address, old: entry.value, new: now))
        state.watched[index].value = now
      }
    }
    return events
  }

  /// Calls every handler subscribed to `event` on this vCPU, in subscription order, and
  /// combines their answers (`Answers`).
  func dispatch(_ event: Event, on state: VCPUState) throws -> EventResponse {
    var answers = Answers()
    defer { if let engine = answers.engine { state.pendingEngine = engine } }
    // The vCPU's plan holds its subscriptions; one a handler adds counts from the next stop.
    for subscription in state.plan.subscriptions where subscription.filter.matches(event) {
      if answers.take(try call(subscription.handler, event, on: state)) { return .stop }
    }
    return answers.combined
  }

  /// `dispatch` for a single step, through the plan's list of its handlers (the same ones in
  /// the same order, without matching every subscription against the event).
  private func dispatchStep(_ event: Event, on state: VCPUState) throws -> EventResponse {
    var answers = Answers()
    defer { if let engine = answers.engine { state.pendingEngine = engine } }
    for handler in state.plan.stepHandlers {
      if answers.take(try call(handler, event, on: state)) { return .stop }
    }
    return answers.combined
  }

  /// One handler's answer, its error named after the event and the vCPU.
  @inline(__always)
  private func call(_ handler: EventHandler, _ event: Event, on state: VCPUState) throws -> EventResponse {
    do { return try handler(event, state.context) } catch {
      throw IntrospectionError("the handler for \(describe(event)) on vCPU \(state.context.vcpu) failed: \(error)")
    }
  }

  /// Acts on an answer to an instruction-boundary event; true when the session is over.
  private func apply(_ response: EventResponse, to event: Event, on state: VCPUState) throws -> Bool {
    switch response {
    case .continue:
      break
    case .toggleSingleStep:
      state.singleStepping.toggle()
    case .emulateAndSkip:
      throw IntrospectionError("emulate-and-skip answers port, MMIO and MSR events only, not \(describe(event))")
    case .stop:
      finish(.end(.stopped(vcpu: state.context.vcpu, event: event)))
      return true
    case .switchEngine(let engine):
      state.pendingEngine = engine
    }
    if let engine = state.pendingEngine {
      state.pendingEngine = nil
      try switchEngine(of: state, to: engine)
    }
    return false
  }

  /// Moves one vCPU to `engine` at the instruction boundary where it stands.
  private func switchEngine(of state: VCPUState, to engine: EngineKind) throws {
    guard engine != state.stepper.engine else { return }
    if let refusal = machine.engineSwitchRefusal {
      throw IntrospectionError("vCPU \(state.context.vcpu) cannot switch engines: \(refusal)")
    }
    try state.stepper.switchEngine(to: engine)
    state.installedWatches = []
    state.plan.generation = -1  // the next boundary installs the watches on the new engine
  }

  /// Port, MMIO and MSR events, from inside the vCPU's exit (see `AccessDispatcher`).
  fileprivate func accessEvent(_ access: GuestAccess, vcpu: Int) -> AccessVerdict {
    guard vcpuStates.indices.contains(vcpu), !isEnding else { return .perform }
    let state = vcpuStates[vcpu]
    state.context.insideAccess = true
    let stop = state.context.stop
    state.context.stop = nil
    defer {
      state.context.insideAccess = false
      state.context.stop = stop
    }
    let response: EventResponse
    do { response = try dispatch(.access(access), on: state) } catch let error as IntrospectionError {
      finish(.failure(error))
      return .perform
    } catch {
      return .perform
    }
    if state.pendingEngine != nil {
      state.pendingEngine = nil
      finish(
        .failure(
          IntrospectionError(
            "an engine switch answers instruction-boundary events, not \(describe(.access(access))): the vCPU is inside an instruction"
          )))
      return .perform
    }
    switch response {
    case .continue, .switchEngine:
      return .perform
    case .emulateAndSkip(let value):
      return .skip(readValue: value)
    case .toggleSingleStep:
      // Takes effect once the instruction is complete: a run stops for it then.
      state.toggleAfterAccess = true
      if !state.singleStepping { state.stepper.requestStop() }
      return .perform
    case .stop:
      finish(.end(.stopped(vcpu: vcpu, event: .access(access))))
      return .perform
    }
  }

  /// Which accesses the dispatcher must be asked about (fixed for a run).
  fileprivate var accessFilters: (ports: [ClosedRange<UInt16>], mmio: [ClosedRange<UInt64>], msrs: Set<UInt32>) {
    var ports: [ClosedRange<UInt16>] = []
    var mmio: [ClosedRange<UInt64>] = []
    for subscription in subscriptions {
      if case .port(let range) = subscription.filter { ports.append(range) }
      if case .mmio(let range) = subscription.filter { mmio.append(range) }
    }
    return (ports, mmio, Set(msrIndices))
  }
}

/// Hands the machine's watched accesses to the session.
struct AccessDispatcher: AccessWatcher {
  let session: SendableSession
  let ports: [ClosedRange<UInt16>]
  let mmio: [ClosedRange<UInt64>]
  let msrs: Set<UInt32>

  init(session: IntrospectionSession) {
    self.session = SendableSession(session)
    (ports, mmio, msrs) = session.accessFilters
  }

  var isNeeded: Bool { !ports.isEmpty || !mmio.isEmpty || !msrs.isEmpty }
  func watches(_ access: GuestAccess) -> Bool {
    switch access {
    case .portWrite(let port, _, _), .portRead(let port, _): ports.contains { $0.contains(port) }
    case .mmioWrite(let address, _, _), .mmioRead(let address, _): mmio.contains { $0.contains(address) }
    case .msrWrite(let index, _): msrs.contains(index)
    }
  }
  func decide(_ access: GuestAccess, on vcpu: any VirtualCPU) -> AccessVerdict {
    session.value.accessEvent(access, vcpu: vcpu.id)
  }
}

struct SendableSession: @unchecked Sendable {
  // @unchecked: the session guards its own shared state (see IntrospectionSession).
  let value: IntrospectionSession
  init(_ value: IntrospectionSession) { self.value = value }
}

extension [IntrospectionSession.Subscription] {
  /// The distinct hardware-breakpoint addresses, in address order (one debug-register slot each).
  var hardwareBreakpoints: [UInt64] {
    Set(compactMap { if case .hardwareBreakpoint(let address) = $0.filter { address } else { nil } }).sorted()
  }
  var softwareBreakpoints: Set<UInt64> {
    Set(compactMap { if case .softwareBreakpoint(let address) = $0.filter { address } else { nil } })
  }
}
