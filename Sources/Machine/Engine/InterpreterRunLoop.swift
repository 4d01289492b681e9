import Devices
import KVM
import X86

extension Machine {
  /// Instructions one interpreter vCPU runs before the next takes its turn (and before the
  /// timeout and stop requests are looked at again).
  static let interpreterQuantum: UInt64 = 100_000

  /// Runs the machine on the interpreter until the guest ends it. Every vCPU runs on the
  /// calling thread, taking turns of `interpreterQuantum` instructions in vCPU order, so a
  /// run is deterministic: the same guest gives the same interleaving every time.
  func runInterpreter() -> RunOutcome {
    let start = HostIO.monotonicNanoseconds()
    while true {
      if isFinished { break }
      if let limit = configuration.timeoutMilliseconds,
        HostIO.monotonicNanoseconds() - start >= UInt64(limit) * 1_000_000
      {
        finish(.timedOut)
        break
      }
      var anyRan = false
      for vcpu in interpreterVCPUs where !vcpu.waitingForStartup && !vcpu.cpu.state.halted {
        anyRan = true
        let (_, stop) = vcpu.cpu.run(maxInstructions: Self.interpreterQuantum)
        if let outcome = interpreterOutcome(of: stop, on: vcpu) {
          finish(outcome)
          break
        }
      }
      if !anyRan && !isFinished {
        // Every vCPU is halted or waiting; with no interrupt source, nothing wakes them.
        finish(haltedOutcome())
      }
    }
    console.flush()
    return runState.withLock { $0.outcome! }
  }

  /// Halted for good: cleanly when vCPU 0 halted with interrupts off, or asleep forever.
  private func haltedOutcome() -> RunOutcome {
    let boot = interpreterVCPUs[0]
    return boot.cpu.state.rflags & RFlags.interruptEnable == 0 ? .halted : .haltedForever(snapshot(boot))
  }

  /// What one interpreter stop means for a plain run; nil to go on.
  public func interpreterOutcome(of stop: StepResult, on vcpu: InterpreterVCPU) -> RunOutcome? {
    switch stop {
    case .retired, .halted, .delivered:
      return nil
    case .tripleFault:
      return .tripleFault(snapshot(vcpu))
    case .ioStop:
      return outcome(of: vcpu.takeDeviceAction())
    case .exception(let exception):
      // Not reached while the vCPU delivers exceptions (it always does here).
      return .internalError(description: "undelivered \(exception)", snapshot(vcpu))
    case .unsupported(let feature):
      return .internalError(description: "the interpreter does not implement \(feature)", snapshot(vcpu))
    }
  }
}
