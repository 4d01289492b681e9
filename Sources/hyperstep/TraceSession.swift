import Debugger
import Devices
import Introspection
import KVM
import Machine

/// `hyperstep trace` as a client of the event API: vCPU 0 runs free to where tracing
/// starts (a hardware breakpoint at --from, or the guest's request), then single-steps,
/// and every stop becomes a line (or a profile entry) until --until, --limit, a request to
/// stop stepping, or the machine's end. The other vCPUs run free throughout.
final class TraceSession: @unchecked Sendable {
  // @unchecked: every handler watches vCPU 0 only, so one thread at a time touches this
  // state; `run()` reads it after the session has ended.
  struct Options {
    var sink: TraceSink
    var filter: TraceFilter
    var policy: InterruptPolicy
    /// Where tracing starts: nil for the first instruction (unless `fromRequest`).
    var from: UInt64?
    var fromRequest: Bool
    var fromText: String?
    var until: UInt64?
    var limit: Int
    var watchedMSRs: [UInt32]
    var stats: Bool
    var showProgress: Bool
    /// Move the (KVM) vCPU to the interpreter where tracing begins.
    var traceOnInterpreter = false
  }

  private let machine: Machine
  private let options: Options
  /// The sink's line writer, when it has one: reached directly on every stop.
  private let writer: TraceWriter?
  /// Stepping and writing lines now; `started` stays true once it has begun.
  private var tracing = false
  /// The session, for the engine switch where tracing begins.
  private var session: IntrospectionSession?
  private var started = false
  private var recorded = 0
  private var steps = 0
  private var start: UInt64 = 0
  private var nextProgress: UInt64 = 0
  /// Set by a handler that ends the trace with a status of its own.
  private var status: Int32?
  /// --limit ended the trace (said on stderr: a silently cut trace looks complete).
  private var limitReached = false

  init(machine: Machine, options: Options) {
    self.machine = machine
    self.options = options
    if case .lines(let writer) = options.sink { self.writer = writer } else { writer = nil }
  }

  /// Runs the trace; returns the process exit status.
  func run() -> Int32 {
    defer { finishTracing() }
    do {
      let session = try IntrospectionSession(machine: machine, policy: options.policy)
      self.session = session
      let vcpu0: Set<Int> = [0]
      try subscribeStarts(session, vcpu0)
      let step: EventHandler = { [self] _, context in
        guard let stop = context.stop else { return .continue }
        return try record(stop, context) ? .stop : .continue
      }
      if options.filter.cr3 == nil && options.filter.ring == nil && writer != nil {
        // Each stop's line depends on its PC alone: plain steps are written in batches.
        try session.subscribeSingleSteps(
          vcpus: vcpu0, batch: { [self] steps, _ in try recordPlainSteps(steps) }, handler: step)
      } else {
        try session.subscribe(.singleStep, vcpus: vcpu0, handler: step)
      }
      try session.subscribe(.guestRequest, vcpus: vcpu0) { [self] event, _ in
        // The guest's request to stop stepping: the rest runs at full speed, untraced.
        guard tracing, options.fromRequest, event == .guestRequest(value: ControlPort.stopStepping) else {
          return .continue
        }
        finishTracing()
        return .toggleSingleStep
      }
      try session.subscribe(.shutdown, vcpus: vcpu0) { [self] event, context in
        if tracing, let stop = context.stop {
          _ = try record(stop, context)
        } else if !started && status == nil, case .shutdown(let outcome) = event {
          warn(
            "error: the guest ended (\(TraceWriter.outcomeName(outcome))) before reaching --from \(options.fromText ?? "")"
          )
          status = ExitStatus.fromNeverReached.rawValue
        }
        return .continue
      }
      if !options.watchedMSRs.isEmpty {
        // Subscribing sets KVM's MSR filter; the writes show as `msr-write` stops while stepping.
        try session.subscribe(.msrWrite(options.watchedMSRs), vcpus: vcpu0) { _, _ in .continue }
      }
      if options.from == nil && !options.fromRequest {
        // From the first instruction: its line is written before anything runs.
        try session.setSingleStep(true, vcpu: 0)
        if try beginTracing(at: session.stepper(forVCPU: 0).pc()) { return status ?? ExitStatus.success.rawValue }
      }
      let end = try session.run()
      options.sink.flush()
      if limitReached && options.sink.failure == nil {
        warn(
          "note: the trace stopped at its limit of \(options.limit) lines\(options.limit == TraceCommand.defaultLimit ? " (the default)" : ""); raise --limit for more"
        )
      }
      if let status { return status }
      switch end {
      case .machineEnded(let outcome): return report(outcome)
      case .stopped: return ExitStatus.success.rawValue
      }
    } catch {
      options.sink.flush()
      warn("error: \(error)")
      return ExitStatus.hostFailure.rawValue
    }
  }

  /// Where tracing begins: a hardware breakpoint at --from (and one at --until, reached
  /// first only by mistake), or the guest's request to start stepping.
  private func subscribeStarts(_ session: IntrospectionSession, _ vcpus: Set<Int>) throws {
    if let from = options.from {
      try session.subscribe(.hardwareBreakpoint(at: from), vcpus: vcpus) { [self] _, context in
        guard !tracing else { return .continue }
        return try beginTracing(at: from, context) ? .stop : .toggleSingleStep
      }
      if let until = options.until {
        try session.subscribe(.hardwareBreakpoint(at: until), vcpus: vcpus) { [self] _, _ in
          guard !tracing else { return .continue }
          warn("error: --until 0x\(String(until, radix: 16)) was reached before --from")
          status = ExitStatus.badInput.rawValue
          return .stop
        }
      }
    }
    if options.fromRequest {
      try session.subscribe(.guestRequest, vcpus: vcpus) { [self] event, context in
        guard !tracing, event == .guestRequest(value: ControlPort.startStepping) else { return .continue }
        return try beginTracing(at: try context.pc(), context) ? .stop : .toggleSingleStep
      }
    }
  }

  /// The first line, at the place tracing starts; true when that already ends the trace.
  private func beginTracing(at pc: UInt64, _ context: EventContext? = nil) throws -> Bool {
    if options.traceOnInterpreter, let session {
      try session.stepper(forVCPU: 0).switchEngine(to: .interpreter)
    }
    tracing = true
    started = true
    start = HostIO.monotonicNanoseconds()
    nextProgress = start + 500_000_000
    return try record(Stop(reason: .step, pc: pc, vcpu: 0), context)
  }

  /// Writes one stop if the filters keep it; true when it ends the trace (--until, --limit).
  private func record(_ stop: Stop, _ context: EventContext?) throws -> Bool {
    steps += 1
    if options.showProgress && steps & 0x3ff == 0 { showProgress() }
    if try options.filter.isEmpty || options.filter.keeps(pc: stop.pc, special: specialRegisters(context)) {
      if let writer { writer.write(stop) } else { options.sink.record(stop) }
      recorded += 1
    }
    if stop.pc == options.until { return true }
    if recorded >= options.limit { limitReached = true }
    // A failed write ends the trace at once: the output is incomplete from there on.
    return limitReached || writer?.failure != nil
  }

  /// `record` for a batch of plain steps while stops are written as lines and kept by their
  /// PC alone (no filter but an address range): the same lines, counts and ending, with the
  /// writer's state held once for the batch.
  private func recordPlainSteps(_ plainSteps: PlainSingleSteps) rethrows -> EventResponse {
    guard let writer, recorded < options.limit else { return .stop }  // (ended by the last line)
    let before = steps
    let batch = try writer.writePlainSteps(
      vcpu: 0, range: options.filter.range, until: options.until, maxLines: options.limit - recorded, plainSteps)
    steps += batch.steps
    recorded += batch.lines
    if options.showProgress && steps >> 10 != before >> 10 { showProgress() }
    if batch.reachedUntil { return .stop }
    if recorded >= options.limit { limitReached = true }
    return limitReached || writer.failure != nil ? .stop : .continue
  }

  private func specialRegisters(_ context: EventContext?) throws -> SpecialRegisters {
    if let context { return try context.specialRegisters() }
    return try machine.cpus[0].specialRegisters()
  }

  /// Progress on a terminal while the trace goes to a file: steps, rate, elapsed time.
  private func showProgress() {
    let now = HostIO.monotonicNanoseconds()
    guard now >= nextProgress else { return }
    nextProgress = now + 500_000_000
    let seconds = Double(now - start) / 1e9
    let line = "\rhyperstep: \(steps) steps, \(Int(Double(steps) / seconds)) steps/s, \(Int(seconds)) s elapsed  "
    HostIO.write(2, Array(line.utf8)[...])
  }

  /// The end of the traced part: the progress line is closed, the statistics printed.
  private func finishTracing() {
    guard tracing else { return }
    tracing = false
    options.sink.flush()
    if options.showProgress { HostIO.write(2, Array("\n".utf8)[...]) }
    if options.stats {
      let seconds = Double(HostIO.monotonicNanoseconds() - start) / 1e9
      let rate = Int(Double(recorded) / max(seconds, 1e-9))
      warn("traced \(recorded) stops in \(seconds) s (\(rate) stops/s)")
    }
  }

  private func report(_ outcome: RunOutcome) -> Int32 {
    if let status = outcome.cleanExitStatus { return status }
    if let state = outcome.crashState {
      warn("error: the guest stopped: \(TraceWriter.outcomeName(outcome)) on vCPU \(state.vcpu)")
      HostIO.write(2, Array((state.dump + "\n").utf8)[...])
    }
    return ExitStatus.guestCrashed.rawValue
  }
}
