import Devices
import KVM
import X86

extension Machine {
  /// Instructions one interpreter vCPU runs before the next takes its turn (and before the
  /// timeout and stop requests are looked at again).
  static let interpreterQuantum: UInt64 = 100_000

  /// Runs the machine on the interpreter until the guest ends it. Every vCPU runs on the
  /// calling thread, taking turns of at most `interpreterQuantum` instructions in vCPU order,
  /// each turn cut short at the next device deadline, by an interrupt it can take, or by a
  /// device write; so a run is deterministic: the same guest gives the same interleaving,
  /// and takes its interrupts at the same instructions, every time.
  func runInterpreter() -> RunOutcome {
    let start = HostIO.monotonicNanoseconds()
    while !isFinished {
      if let limit = configuration.timeoutMilliseconds,
        HostIO.monotonicNanoseconds() - start >= UInt64(limit) * 1_000_000
      {
        finish(.timedOut)
        break
      }
      var ran = false
      for vcpu in interpreterVCPUs {
        if let delivered = serviceInterrupts(vcpu, deliver: true),
          let outcome = interpreterOutcome(of: delivered, on: vcpu)
        {
          finish(outcome)
          break
        }
        guard !vcpu.waitingForStartup && !vcpu.cpu.state.halted else { continue }
        ran = true
        let budget = instructionBudget(vcpu, limit: Self.interpreterQuantum)
        let (_, stop) = vcpu.cpu.run(maxInstructions: budget)
        if let outcome = interpreterOutcome(of: stop, on: vcpu) {
          finish(outcome)
          break
        }
      }
      if !ran && !isFinished {
        // Every vCPU is halted or waiting for a start-up IPI: time jumps to the next timer,
        // or, with none to come, the machine has stopped for good.
        let anyInterruptible = interpreterVCPUs.contains {
          !$0.waitingForStartup && $0.cpu.state.rflags & RFlags.interruptEnable != 0
        }
        let sleepers = interpreterVCPUs.filter { !$0.waitingForStartup }
        if anyInterruptible && consoleInput.isOpen {
          waitIdle(sleepers)
        } else if !anyInterruptible || !skipIdleTime(for: sleepers) {
          finish(haltedOutcome())
        }
      }
    }
    console.flush()
    return runState.withLock { $0.outcome! }
  }

  /// Every vCPU sleeps while the console may still bring input (ConsoleInput.swift): typed
  /// or piped bytes can wake the guest even when no timer will. Virtual time passes at the
  /// wall clock's pace while the input is a terminal (a `sleep 1` at an interactive shell
  /// takes a second), and at once up to the next deadline for piped input, as in a plain
  /// run; in both cases the wait ends early when a byte arrives.
  private func waitIdle(_ sleepers: [InterpreterVCPU]) {
    let slice: UInt64 = 20_000_000  // nanoseconds: the input's longest wait unnoticed
    console.flush()  // a prompt without a newline is shown while the guest waits
    let due = timeToNextDeadline()
    if consoleInput.pacesIdleTime || due == nil {
      let wait = min(due ?? slice, slice)
      let start = HostIO.monotonicNanoseconds()
      while !serial.hasPendingInput && consoleInput.isOpen && HostIO.monotonicNanoseconds() &- start < wait {
        HostIO.sleep(milliseconds: 1)
      }
      guard due != nil else { return }
      _ = skipIdleTime(for: sleepers, limit: HostIO.monotonicNanoseconds() &- start)
    } else if !serial.hasPendingInput {
      _ = skipIdleTime(for: sleepers)
    }
  }

  /// Halted for good: cleanly when every vCPU halted with interrupts off (or never started),
  /// or asleep forever with interrupts on and nothing left to raise one.
  private func haltedOutcome() -> RunOutcome {
    let sleeper = interpreterVCPUs.first {
      !$0.waitingForStartup && $0.cpu.state.rflags & RFlags.interruptEnable != 0
    }
    return sleeper.map { .haltedForever(snapshot($0)) } ?? .halted
  }

  /// What one interpreter stop means for a plain run; nil to go on.
  public func interpreterOutcome(of stop: StepResult, on vcpu: InterpreterVCPU) -> RunOutcome? {
    noteDelivery(stop, on: vcpu)
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

extension Machine {
  /// The most distinct addresses reported for unknown instructions before going quiet.
  static let unknownInstructionReports = 16

  /// After an event was delivered to an interpreter vCPU: when it was the #UD for bytes the
  /// interpreter does not know, says once on stderr which bytes at which address (the guest
  /// gets the #UD, as from a CPU that lacks the instruction).
  public func noteDelivery(_ result: StepResult, on vcpu: InterpreterVCPU) {
    guard case .delivered(let event) = result, event.vector == X86Exception.Vector.invalidOpcode,
      let address = vcpu.cpu.takeUndefinedOpcode()
    else { return }
    let first = unknownInstructions.withLock { seen -> Int? in
      guard !seen.contains(address), seen.count <= Self.unknownInstructionReports else { return nil }
      seen.insert(address)
      return seen.count
    }
    guard let first else { return }
    let walker = GuestCPU(registers: Registers(), special: vcpu.cpu.state.specialRegisters).walker(memory)
    let bytes = (try? walker.read(linear: address, count: 15)) ?? (try? walker.read(linear: address, count: 1)) ?? []
    let hex = bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }
    var line =
      "hyperstep: note: vCPU \(vcpu.id): the interpreter does not know the instruction at 0x\(String(address, radix: 16))"
      + " (bytes \(hex.joined(separator: " "))); the guest gets #UD\n"
    if first > Self.unknownInstructionReports { line = "hyperstep: note: more unknown instructions; not shown\n" }
    console.flush()
    try? HostIO.writeAll(2, Array(line.utf8)[...])  // a note for the user: a closed stderr must not stop the guest
  }
}
