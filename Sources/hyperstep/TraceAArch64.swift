import AArch64
import Debugger
import Machine

extension TraceCommand {
  /// `hyperstep trace` for an AArch64 guest: runs CPU 0 at full speed to --from (a host
  /// breakpoint there, or the guest's request `hvc #0x4853` with W0 = 1), then steps CPU 0,
  /// the others standing still, one line per stop, until --until, --limit, the guest's request
  /// with W0 = 0 (the rest then runs untraced) or the end.
  ///
  /// Stops are those of x86 traces, with AArch64's numbers: `exception N` is the ESR_EL1
  /// exception class the step took (0x15 SVC, 0x3c BRK, 0x25 a data abort ...), `interrupt
  /// 0` an IRQ and `interrupt 1` an FIQ taken under `--irq deliver`; a semihosting exit shows
  /// as `debug-exit CODE`. Returns the exit status.
  func traceAArch64(
    _ configuration: MachineConfiguration, sink: TraceSink, filter: TraceFilter, policy: InterruptPolicy,
    from fromAddress: UInt64?, until: UInt64?, limit: Int
  ) -> Int32 {
    let vm: VirtMachine
    do {
      // A trace on standard output keeps it to itself: the guest's console goes to stderr.
      vm = try VirtMachine(configuration: configuration, console: StandardOutputConsole(fd: output == nil ? 2 : 1))
    } catch {
      fail(error.description, status: error.isBadInput ? .badInput : .hostFailure)
    }
    let cpu = vm.cpus[0]
    let fromRequest = from == "request"
    if fromAddress != nil || fromRequest {
      if let status = runToStart(vm, fromAddress: fromAddress, until: until) { return status }
    }
    var recorded = 0
    var limitReached = false
    /// Writes one stop; true when the trace ends with it.
    func record(_ reason: StopReason) -> Bool {
      let pc = cpu.state.pc
      if filter.range.map({ $0.contains(pc) }) ?? true {
        sink.record(Stop(reason: reason, pc: pc, vcpu: 0))
        recorded += 1
      }
      if pc == until { return true }
      if recorded >= limit { limitReached = true }
      return limitReached || sink.failure != nil
    }
    if record(.step) { return ExitStatus.success.rawValue }
    let deliver = policy == .deliver
    while true {
      // Plain steps go to the writer in batches (`writePlainSteps`), which keeps the lines in
      // one local value; anything else comes back here as `next`.
      var next: VirtMachine.Stop?
      if case .lines(let writer) = sink {
        let batch = writer.writePlainSteps(
          vcpu: 0, range: filter.range, until: until, maxLines: max(limit - recorded, 0)
        ) { body in
          next = vm.stepPlain(cpu: 0, deliverInterrupts: deliver, body: body)
        }
        recorded += batch.lines
        if batch.reachedUntil || writer.failure != nil { break }
        if recorded >= limit {
          limitReached = true
          break
        }
      }
      let reason: StopReason
      switch next ?? vm.step(cpu: 0, deliverInterrupts: deliver) {
      case .step: reason = .step
      case .exception(let syndrome): reason = .exception(vector: UInt8(syndrome >> 26))
      case .interrupt(let fiq): reason = .interrupt(vector: fiq ? 1 : 0)
      case .guestRequest(let value):
        if record(.guestRequest(value: value)) { return ExitStatus.success.rawValue }
        guard fromRequest && value == 0 else { continue }
        // The guest's request to stop: the rest runs at full speed, untraced.
        sink.flush()
        return Self.status(of: vm.run())
      case .halted:
        _ = record(.halt(interruptsEnabled: cpu.state.pstate.daif & PState.i == 0))
        sink.flush()
        warn("error: CPU 0 waits (WFI/WFE) at 0x\(String(cpu.state.pc, radix: 16)) and nothing will wake it")
        return ExitStatus.haltedForever.rawValue
      case .ended(let outcome):
        _ = record(.exit(outcome.runOutcome))
        return Self.status(of: outcome)
      case .breakpoint, .watch, .fetchWatch, .systemRegisterWrite, .interrupted:
        continue  // none is set while tracing
      }
      if record(reason) { break }
    }
    sink.flush()
    if limitReached && sink.failure == nil {
      warn(
        "note: the trace stopped at its limit of \(limit) lines\(limit == TraceCommand.defaultLimit ? " (the default)" : ""); raise --limit for more"
      )
    }
    return ExitStatus.success.rawValue
  }

  /// Runs to --from (a host breakpoint on CPU 0) or to the guest's request to start; returns
  /// an exit status when the trace cannot start.
  private func runToStart(_ vm: VirtMachine, fromAddress: UInt64?, until: UInt64?) -> Int32? {
    let cpu = vm.cpus[0]
    if let fromAddress { cpu.hostBreakpoints = Set([fromAddress] + (until.map { [$0] } ?? [])) }
    defer { cpu.hostBreakpoints = [] }
    while true {
      let (index, stop) = vm.resume { false }
      switch stop {
      case .breakpoint where index == 0 && cpu.state.pc == fromAddress:
        return nil
      case .breakpoint where index == 0 && cpu.state.pc == until:
        warn("error: --until 0x\(String(until ?? 0, radix: 16)) was reached before --from")
        return ExitStatus.badInput.rawValue
      case .guestRequest(let value) where index == 0 && fromAddress == nil && value == 1:
        return nil
      case .ended(let outcome):
        warn(
          "error: the guest ended (\(TraceWriter.outcomeName(outcome.runOutcome))) before reaching --from \(from ?? "")"
        )
        return ExitStatus.fromNeverReached.rawValue
      default:
        continue
      }
    }
  }

  /// The exit status `hyperstep run` gives the same end.
  static func status(of outcome: VirtOutcome) -> Int32 {
    switch outcome {
    case .exit(let code, _): Int32(truncatingIfNeeded: code & 0xff)
    case .powerOff, .reset: ExitStatus.success.rawValue
    case .waitingForever: ExitStatus.haltedForever.rawValue
    case .timedOut: ExitStatus.timedOut.rawValue
    }
  }
}
