import KVM

/// Moving a KVM machine's vCPU to the interpreter and back for good (until moved again), as a
/// debugger's engine switch does: the vCPU's `EngineState` goes into an interpreter twin that
/// shares guest RAM and the machine's devices, and comes back the same way. Unlike the
/// one-instruction assist (KVMAssist.swift), the twin keeps running: stepping, traces and
/// watchpoints then take the interpreter's paths.
extension Machine {
  /// Why this machine's vCPUs cannot move between the engines, or nil when they can.
  public var engineSwitchRefusal: String? {
    if engine != .kvm {
      return "this machine runs on the interpreter (--accel emu): it has no KVM vCPUs to move to"
    }
    if hasInterruptController {
      return
        "this machine uses KVM's in-kernel interrupt controllers (several vCPUs, a Linux guest or --irqchip), whose state does not move to the interpreter yet"
    }
    return nil
  }

  /// The interpreter twin of KVM vCPU `index`: an `InterpreterVCPU` on the same RAM and bus,
  /// without user-space chips (the machine has none) or a local APIC.
  func interpreterTwin(for index: Int) -> InterpreterVCPU {
    interpreterTwins.withLock { twins in
      if let twin = twins[index] { return twin }
      let twin = InterpreterVCPU(id: index, memory: memory)
      twin.waitingForStartup = false
      twin.attach(InterpreterBus(machine: self, vcpu: twin, platform: nil))
      twins[index] = twin
      return twin
    }
  }

  /// Moves KVM vCPU `index` into its interpreter twin and returns the twin, which runs it
  /// from now on. The TSC goes on from KVM's value, one tick per instruction.
  public func moveToInterpreter(_ index: Int) throws -> InterpreterVCPU {
    if let refusal = engineSwitchRefusal { throw EngineSwitchError(refusal) }
    // An event KVM has queued or begun to deliver is not in the state that moves: moving now
    // would lose it. (At a debugger's stop there is none; the move is refused if there is.)
    let events = try kvmVCPUs[index].events()
    if let inFlight = Self.eventInFlight(events) {
      throw EngineSwitchError("KVM is delivering \(inFlight) to vCPU \(index); step it once on KVM, then move it")
    }
    let twin = interpreterTwin(for: index)
    twin.cpu.state = try EngineState(reading: kvmVCPUs[index]).x86State
    twin.cpu.invalidateDecodedInstructions()  // KVM ran since the twin last decoded anything
    return twin
  }

  /// Moves vCPU `index` back from its twin into KVM (only what changed is written; KVM's TSC
  /// goes on from the interpreter's).
  public func moveToKVM(_ index: Int) throws {
    if let refusal = engineSwitchRefusal { throw EngineSwitchError(refusal) }
    let kvm = kvmVCPUs[index]
    let twin = interpreterTwin(for: index)
    try EngineState(twin.cpu.state).write(to: kvm, since: try EngineState(reading: kvm))
  }
}

extension Machine {
  /// What KVM has in flight for a vCPU (an exception, an interrupt, an NMI), or nil.
  static func eventInFlight(_ events: VCPUEvents) -> String? {
    if let exception = events.exception { return "exception \(exception.vector)" }
    if let interrupt = events.interrupt { return "interrupt \(interrupt.vector)" }
    if events.nmiInjected || events.nmiPending { return "an NMI" }
    return nil
  }
}

/// Why a vCPU could not change engines.
public struct EngineSwitchError: Error, CustomStringConvertible {
  public let description: String
  init(_ description: String) { self.description = description }
}
