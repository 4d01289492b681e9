import Devices
import KVM

/// Moving a KVM machine's vCPU to the interpreter and back for good (until moved again), as a
/// debugger's engine switch does: the vCPU's `EngineState` goes into an interpreter twin that
/// shares guest RAM and the machine's devices, and comes back the same way. Unlike the
/// one-instruction assist (KVMAssist.swift), the twin keeps running: stepping, traces and
/// watchpoints then take the interpreter's paths.
extension Machine {
  /// Why a vCPU of this machine cannot move between the engines on its own, or nil when it can.
  public var engineSwitchRefusal: String? { engineSwitchRefusal(allVCPUsTogether: false) }

  /// Why this machine's vCPUs cannot move between the engines, or nil when they can. With
  /// `allVCPUsTogether`, for a move of every vCPU at once while all are stopped
  /// (`IntrospectionSession.switchEngine`, gdb's `monitor accel`): the way a machine with
  /// several vCPUs on KVM's in-kernel chips can move, as the chips are the machine's, not a
  /// vCPU's (one vCPU on each engine would need them on both at once).
  public func engineSwitchRefusal(allVCPUsTogether: Bool) -> String? {
    if engine != .kvm {
      return "this machine runs on the interpreter (--accel emu): it has no KVM vCPUs to move to"
    }
    if hasInterruptController && cpus.count > 1 && !allVCPUsTogether {
      return
        "this machine uses KVM's in-kernel interrupt controllers with \(cpus.count) vCPUs, which move between the engines only all together while stopped (gdb's monitor accel), not one by one"
    }
    return nil
  }

  /// Why KVM vCPU `index` cannot run on KVM now, or nil when it can: the in-kernel chips'
  /// state is on the interpreter with other vCPUs, which must move back first.
  public func kernelChipsAway(from index: Int) -> String? {
    let away = carriedKernelChips.withLock { $0.onInterpreter }
    guard !away.isEmpty, !away.contains(index) else { return nil }
    let others = away.sorted().map(String.init).joined(separator: ", ")
    return
      "vCPU \(index) cannot run on KVM while the interrupt controllers' state is on the interpreter with vCPU \(others): move every vCPU together"
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
  /// KVM's in-kernel interrupt controllers their state moves with the first vCPU that moves
  /// (`KernelChips`), and the twins run on their models, on virtual time, until the last one
  /// moves back.
  public func moveToInterpreter(_ index: Int) throws -> InterpreterVCPU {
    if let refusal = engineSwitchRefusal(allVCPUsTogether: true) { throw EngineSwitchError(refusal) }
    let kvm = kvmVCPUs[index]
    // An event KVM has queued or begun to deliver is not in the state that moves: moving now
    // would lose it. (At a debugger's stop there is none; the move is refused if there is.)
    let events = try kvm.events()
    if let inFlight = Self.eventInFlight(events) {
      throw EngineSwitchError("KVM is delivering \(inFlight) to vCPU \(index); step it once on KVM, then move it")
    }
    var halted = false
    var waiting = false
    if hasInterruptController {
      // KVM keeps a halt, and an application processor's wait for INIT and SIPI, in its
      // multiprocessing state; reading it first makes KVM act on an INIT or SIPI still
      // pending (a vCPU stopped since another sent them), which changes the registers.
      switch try kvm.multiprocessingState(freshRegisters: true) {
      case .runnable: break
      case .halted: halted = true
      case .uninitialized, .initReceived: waiting = true
      case let other:
        throw EngineSwitchError("vCPU \(index) is in KVM's multiprocessing state \(other), which does not move")
      }
    }
    let state = try EngineState(reading: kvm)
    if let models = kernelChipModels, let vm, carriedKernelChips.withLock({ $0.onInterpreter.isEmpty }) {
      try moveKernelChipsIn(models, vm: vm)
    }
    let twin = interpreterTwin(for: index)
    twin.cpu.state = state.x86State
    twin.cpu.state.halted = halted
    twin.waitingForStartup = waiting
    twin.cpu.invalidateDecodedInstructions()  // KVM ran since the twin last decoded anything
    if let models = kernelChipModels {
      twin.clockBase = busLock.withLock { _ in models.now } &- twin.cpu.retiredInstructions
      twin.bus?.platform = models
      carriedKernelChips.withLock { _ = $0.onInterpreter.insert(index) }
    }
    return twin
  }

  /// Moves vCPU `index` back from its twin into KVM (only what changed is written; KVM's TSC
  /// goes on from the interpreter's), with the in-kernel chips' state when it is the last.
  public func moveToKVM(_ index: Int) throws {
    if let refusal = engineSwitchRefusal(allVCPUsTogether: true) { throw EngineSwitchError(refusal) }
    let kvm = kvmVCPUs[index]
    let twin = interpreterTwin(for: index)
    try EngineState(twin.cpu.state).write(to: kvm, since: try EngineState(reading: kvm))
    guard let models = twin.bus?.platform, let vm else { return }
    twin.bus?.platform = nil
    let last = carriedKernelChips.withLock { carried in
      carried.onInterpreter.remove(index)
      return carried.onInterpreter.isEmpty
    }
    busLock.withLock { _ in models.advance(to: models.time(of: twin)) }
    if last { try moveKernelChipsOut(models, vm: vm) }
    // KVM keeps a halt in its multiprocessing state (an interrupt it raises wakes the vCPU),
    // and a wait for INIT and SIPI too: a vCPU still waiting keeps the kind KVM gave it.
    if twin.waitingForStartup {
      switch try kvm.multiprocessingState() {
      case .uninitialized, .initReceived: break
      default: try kvm.setMultiprocessingState(.initReceived)  // INIT came on the interpreter
      }
    } else {
      try kvm.setMultiprocessingState(twin.cpu.isHalted ? .halted : .runnable)
    }
  }

  /// IA32_APIC_BASE bit 10, x2APIC mode, and bit 11, the APIC enabled (SDM Vol. 3, 11.12.1).
  static let x2APICEnable: UInt64 = 1 << 10
  static let apicGlobalEnable: UInt64 = 1 << 11

  /// KVM's chips into their models, at the models' current time.
  private func moveKernelChipsIn(_ models: InterpreterPlatform, vm: VirtualMachine) throws {
    let apicBases = try kvmVCPUs.map { try $0.specialRegisters().apicBase }
    if let x2APIC = apicBases.firstIndex(where: { $0 & Self.x2APICEnable != 0 }) {
      throw EngineSwitchError(
        "vCPU \(x2APIC)'s local APIC is in x2APIC mode, which the interpreter's APIC does not model")
    }
    let chips = try KernelChips.read(vm, kvmVCPUs)
    // TSC-deadline mode's deadline is an MSR the interpreter's APIC does not keep yet: the
    // guest (Linux, where the CPUID offers the mode) would wait for a timer that never fires.
    for (index, page) in chips.localAPICs.enumerated() {
      let timer = page[LocalAPIC.Register.lvtTimer]
      if timer >> 17 & 3 == 2 && timer & 0x1_0000 == 0 {
        throw EngineSwitchError(
          "vCPU \(index)'s local APIC timer is in TSC-deadline mode, which the interpreter does not run yet")
      }
    }
    // The interpreter's models merge a tick into one not yet taken, as the 8259's IRR does;
    // KVM re-injects such ticks later by default, from a count its API does not show. Turned
    // off (from the first move on), both engines raise the same ticks.
    if !carriedKernelChips.withLock({ $0.reinjectionOff }) {
      try vm.setPITReinjection(false)
      carriedKernelChips.withLock { $0.reinjectionOff = true }
    }
    let phase = carriedKernelChips.withLock { $0.pitPhase }?.resume(
      chips.pit.channels[0], now: HostIO.monotonicNanoseconds())
    busLock.withLock { _ in
      models.advance(to: models.now)
      chips.load(
        into: models.chips, apicEnabled: apicBases.map { $0 & Self.apicGlobalEnable != 0 },
        counter0Elapsed: phase?.elapsed)
      if phase?.owedTick == true {  // an edge of counter 0's schedule that KVM's restart put off
        models.chips.setISAInterrupt(0, high: true)
        models.chips.setISAInterrupt(0, high: false)
      }
    }
    carriedKernelChips.withLock { $0.basis = chips }
  }

  /// The models' state, at the time the last vCPU left them, back into KVM's chips.
  private func moveKernelChipsOut(_ models: InterpreterPlatform, vm: VirtualMachine) throws {
    guard let basis = carriedKernelChips.withLock({ $0.basis }) else { return }
    let (chips, counter0) = busLock.withLock { _ in
      (KernelChips(from: models.chips, basis: basis), models.chips.pit.counter(0))
    }
    try chips.write(to: vm, kvmVCPUs)
    let phase = PITPhase.after(writing: chips.pit.channels[0], at: HostIO.monotonicNanoseconds(), from: counter0)
    carriedKernelChips.withLock {
      $0.basis = nil
      $0.pitPhase = phase
    }
  }
}

/// Where a KVM machine's in-kernel chips' state is (EngineSwitch.swift).
struct CarriedKernelChips {
  /// What KVM's chips held when they moved into their models (nil while KVM has them): what
  /// the models do not keep goes back from it.
  var basis: KernelChips?
  /// The vCPUs on the interpreter, whose twins run on the models.
  var onInterpreter: Set<Int> = []
  /// KVM's PIT no longer re-injects ticks (from the first move on).
  var reinjectionOff = false
  /// Counter 0's schedule since the chips last went back to KVM.
  var pitPhase: PITPhase?
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
