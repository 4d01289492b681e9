import Machine

/// A tracer's answer to one plain step of `Stepper.stepPlain`.
public enum PlainStepAnswer: Sendable {
  /// Taken: step on.
  case next
  /// Taken, and the last of this batch.
  case last
  /// Not taken: the batch ends, and `stepPlain` hands this step back as its stop.
  case decline
}

extension Stepper {
  /// Up to `limit` steps, each exactly as `step()` makes it, with the PC of every plain stop
  /// (`.step`) handed to `take` instead of returned. Returns how many `take` took, and the
  /// stop that ended the batch if `take` did not have it: a declined plain step, or any stop
  /// that is more than a plain step (the caller handles it as `step()`'s).
  ///
  /// For tracers: a traced step is otherwise a call through every layer for one instruction.
  /// On the interpreter, steps while the platform has nothing new for the vCPU (see
  /// `platformIsQuiet`) go in one access to the CPU; elsewhere this is `step()` in a loop.
  /// `take` must leave the vCPU alone (its access to the CPU may still be open).
  public func stepPlain(limit: Int, _ take: (UInt64) -> PlainStepAnswer) throws -> (taken: Int, other: Stop?) {
    var taken = 0
    while taken < limit {
      let stop: Stop
      if let interpreter, platformIsQuiet(interpreter), !interpreter.cpu.isHalted {
        let (count, end) = try interpreterQuietSteps(interpreter, limit: limit - taken, take)
        taken += count
        switch end {
        case .steppedOn: continue
        case .lastTaken: return (taken, nil)
        case .declined(let declined): return (taken, declined)
        case .stopped(let other): stop = other
        }
      } else {
        stop = try step()
      }
      guard case .step = stop.reason else { return (taken, stop) }
      switch take(stop.pc) {
      case .next: taken += 1
      case .last: return (taken + 1, nil)
      case .decline: return (taken, stop)
      }
    }
    return (taken, nil)
  }
}
