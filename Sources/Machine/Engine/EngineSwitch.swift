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
    if hasInterruptController && cpus.count > 1 {
      // The chips are the machine's, not a vCPU's: with one vCPU on KVM and another on the
      // interpreter, both would need them at once.
      return
        "this machine uses KVM's in-kernel interrupt controllers with \(cpus.count) vCPUs: their state moves to the interpreter with a one-vCPU machine only (all vCPUs would have to move together)"
    }
    return nil
  }

  /// The interpreter twin of KVM vCPU `index`: an `InterpreterVCPU` on the same RAM and bus,
  /// without user-space chips (the machine has none) until it moves with KVM's in-kernel ones.
  func interpreterTwin(for index: Int) -> InterpreterVCPU {
    interpreterTwins.withLock { twins in
      if let twin = twins[index] { return twin }
      let twin = InterpreterVCPU(id: index, memory: memory)
      twin.waitingForStartup = false
      twin.attach(InterpreterBus(machine: self, vcpu: twin, platform: nil))
      twin.cpu.localAPICID = UInt8(truncatingIfNeeded: index)  // KVM's APIC IDs are the vCPU ids
      twins[index] = twin
      return twin
    }
  }

  /// Moves KVM vCPU `index` into its interpreter twin and returns the twin, which runs it
  /// from now on. The TSC goes on from KVM's value, one tick per instruction. On a machine with
  /// KVM's in-kernel interrupt controllers their state moves too (`KernelChips`), and the twin
  /// runs on their models, on virtual time, until `moveToKVM`.
  public func moveToInterpreter(_ index: Int) throws -> InterpreterVCPU {
    if let refusal = engineSwitchRefusal { throw EngineSwitchError(refusal) }
    let kvm = kvmVCPUs[index]
    // An event KVM has queued or begun to deliver is not in the state that moves: moving now
    // would lose it. (At a debugger's stop there is none; the move is refused if there is.)
    let events = try kvm.events()
    if let inFlight = Self.eventInFlight(events) {
      throw EngineSwitchError("KVM is delivering \(inFlight) to vCPU \(index); step it once on KVM, then move it")
    }
    let state = try EngineState(reading: kvm)
    var halted = false
    if hasInterruptController {
      if state.special.apicBase & Self.x2APICEnable != 0 {
        throw EngineSwitchError(
          "vCPU \(index)'s local APIC is in x2APIC mode, which the interpreter's APIC does not model")
      }
      switch try kvm.multiprocessingState() {
      case .runnable: break
      case .halted: halted = true
      case let other:
        throw EngineSwitchError("vCPU \(index) is in KVM's multiprocessing state \(other), which does not move")
      }
    }
    let twin = interpreterTwin(for: index)
    twin.cpu.state = state.x86State
    twin.cpu.state.halted = halted
    twin.cpu.invalidateDecodedInstructions()  // KVM ran since the twin last decoded anything
    if let models = kernelChipModels, let vm {
      try moveKernelChipsIn(models, vm: vm, apicBase: state.special.apicBase)
      twin.clockBase = busLock.withLock { _ in models.now } &- twin.cpu.retiredInstructions
      twin.bus?.platform = models
    }
    return twin
  }

  /// Moves vCPU `index` back from its twin into KVM (only what changed is written; KVM's TSC
  /// goes on from the interpreter's), with the in-kernel chips' state when it moved out.
  public func moveToKVM(_ index: Int) throws {
    if let refusal = engineSwitchRefusal { throw EngineSwitchError(refusal) }
    let kvm = kvmVCPUs[index]
    let twin = interpreterTwin(for: index)
    try EngineState(twin.cpu.state).write(to: kvm, since: try EngineState(reading: kvm))
    guard let models = twin.bus?.platform, let vm else { return }
    twin.bus?.platform = nil
    try moveKernelChipsOut(models, vm: vm, time: models.time(of: twin))
    // KVM keeps a halt in its multiprocessing state; an interrupt it raises wakes the vCPU.
    try kvm.setMultiprocessingState(twin.cpu.isHalted ? .halted : .runnable)
  }

  /// IA32_APIC_BASE bit 10, x2APIC mode (SDM Vol. 3, 11.12.1).
  static let x2APICEnable: UInt64 = 1 << 10

  /// KVM's chips into their models, at the models' current time.
  private func moveKernelChipsIn(_ models: InterpreterPlatform, vm: VirtualMachine, apicBase: UInt64) throws {
    let chips = try KernelChips.read(vm, kvmVCPUs)
    // The interpreter's models merge a tick into one not yet taken, as the 8259's IRR does;
    // KVM re-injects such ticks later by default, from a count its API does not show. Turned
    // off, both engines raise the same ticks.
    if carriedKernelChips.withLock({ $0 }) == nil { try vm.setPITReinjection(false) }
    busLock.withLock { _ in
      models.advance(to: models.now)
      chips.load(into: models.chips, apicEnabled: kvmVCPUs.map { _ in apicBase & 0x800 != 0 })
    }
    carriedKernelChips.withLock { $0 = chips }
  }

  /// The models' state at virtual time `time` back into KVM's chips.
  private func moveKernelChipsOut(_ models: InterpreterPlatform, vm: VirtualMachine, time: UInt64) throws {
    guard let basis = carriedKernelChips.withLock({ $0 }) else { return }
    let chips = busLock.withLock { _ in
      models.advance(to: time)
      return KernelChips(from: models.chips, basis: basis)
    }
    try chips.write(to: vm, kvmVCPUs)
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
