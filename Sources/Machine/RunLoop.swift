import Devices
import KVM

extension Machine {
  /// How often the ticker wakes vCPUs to check the timeout and, with an interrupt
  /// controller, whether every vCPU has halted for good.
  static let tickMilliseconds = 50

  /// Runs the machine until the guest ends it. vCPU 0 runs on the calling thread, the
  /// others on threads of their own.
  public func run() -> RunOutcome {
    if engine == .interpreter { return runInterpreter() }
    let others = kvmVCPUs.dropFirst().map { vcpu in
      HostThread(name: "vcpu\(vcpu.id)") { [self] in
        if let outcome = runLoop(vcpu) { finish(outcome) }
      }
    }
    let needsTicker = configuration.timeoutMilliseconds != nil || hasInterruptController
    let ticker = needsTicker ? HostThread(name: "ticker") { [self] in tick() } : nil
    if let outcome = runLoop(kvmVCPUs[0]) { finish(outcome) }
    for thread in others { thread.join() }
    ticker?.join()
    console.flush()
    return runState.withLock { $0.outcome! }
  }

  /// Records the first outcome and knocks every vCPU out of the guest.
  func finish(_ outcome: RunOutcome) {
    let first = runState.withLock { state in
      guard state.outcome == nil else { return false }
      state.outcome = outcome
      return true
    }
    if first { for vcpu in cpus { vcpu.kick() } }
  }

  var isFinished: Bool { runState.withLock { $0.outcome != nil } }

  private func tick() {
    let start = HostIO.monotonicNanoseconds()
    while !isFinished {
      HostIO.sleep(milliseconds: Self.tickMilliseconds)
      if let limit = configuration.timeoutMilliseconds,
        HostIO.monotonicNanoseconds() - start >= UInt64(limit) * 1_000_000
      {
        finish(.timedOut)
        return
      }
      if hasInterruptController {
        runState.withLock { $0.tick += 1 }
        for vcpu in cpus { vcpu.kick() }
      }
    }
  }

  /// Drives one vCPU until it produces an outcome (returned) or another vCPU did (nil).
  func runLoop(_ vcpu: VCPU) -> RunOutcome? {
    vcpu.bindToCurrentThread()
    // This host's KVM may deliver no data breakpoints: the guest's are served here then.
    let guestBreakpoints = servesGuestDataBreakpoints
    while true {
      let exit: VCPUExit
      do {
        if guestBreakpoints { try followGuestDataBreakpoints(vcpu, force: false) }
        exit = try vcpu.run()
      } catch {
        return .internalError(description: "\(error)", snapshot(vcpu))
      }
      switch exit {
      case .mmioRead(let address, let size) where guestBreakpoints && isAbsentToKVM(address, size: size),
        .mmioWrite(let address, let size, _) where guestBreakpoints && isWriteProtected(address, size: size):
        if let outcome = completeGuestBreakpointAccess(exit, on: vcpu) { return outcome }
      case .portOut, .portIn, .mmioRead, .mmioWrite:
        if let outcome = outcome(of: serviceDeviceExit(exit, on: vcpu)) { return outcome }
      case .msrRead, .msrWrite:
        _ = serviceMSRExit(exit, on: vcpu)
      case .halt:
        return haltOutcome(vcpu)
      case .internalError(let suberror, _) where suberror == VCPUExit.emulationFailureSuberror:
        // KVM could not run the instruction: the interpreter does (KVMAssist.swift).
        if let outcome = completeWithInterpreter(vcpu, failure: exit) { return outcome }
      case .shutdown where !memoryProtection.isEmpty:
        // KVM could not write an exception frame to a protected page: the interpreter delivers it.
        if case .failure(let end) = deliverOnInterpreterAfterShutdown(vcpu) { return end.outcome }
      case .shutdown, .internalError, .failedEntry, .systemEvent, .other:
        return terminalOutcome(of: exit, on: vcpu)!
      case .debug:
        continue  // no guest debugging is requested by a plain run
      case .interrupted:
        if isFinished { return nil }
        if hasInterruptController, let outcome = checkQuiescence(vcpu) { return outcome }
      }
    }
  }

  /// An access to a page protected for the guest's own data breakpoints: carried out, the
  /// instruction finished in KVM, and the guest's #DB if it hit one (GuestDataBreakpoints.swift).
  /// The outcome that ends the run, or nil to go on.
  private func completeGuestBreakpointAccess(_ exit: VCPUExit, on vcpu: VCPU) -> RunOutcome? {
    _ = takeProtectedAccesses(vcpu: vcpu.id)
    var action = serviceDeviceExit(exit, on: vcpu)
    do {
      let (more, other) = try finishProtectedInstruction(vcpu)
      if more != .none { action = more }
      let bits = guestDataBreakpointHits(takeProtectedAccesses(vcpu: vcpu.id), vcpu: vcpu.id)
      if bits != 0, let outcome = try deliverGuestDataBreakpoint(vcpu, bits: bits) { return outcome }
      if let outcome = outcome(of: action) { return outcome }
      guard let other else { return nil }
      switch other {
      case .halt: return haltOutcome(vcpu)
      case .internalError(let suberror, _) where suberror == VCPUExit.emulationFailureSuberror:
        return completeWithInterpreter(vcpu, failure: other)
      default: return terminalOutcome(of: other, on: vcpu)
      }
    } catch {
      return .internalError(description: "\(error)", snapshot(vcpu))
    }
  }

  /// With an in-kernel APIC, HLT never reaches user space, so halts are sampled on each
  /// tick: when every vCPU is halted with interrupts off (or was never started) in the
  /// same tick, nothing can wake the machine and it has halted cleanly.
  private func checkQuiescence(_ vcpu: VCPU) -> RunOutcome? {
    let quiet: Bool
    do {
      switch try vcpu.multiprocessingState() {
      case .uninitialized: quiet = true
      case .halted: quiet = try vcpu.registers().rflags & RFlags.interruptEnable == 0
      default: quiet = false
      }
    } catch {
      return .internalError(description: "\(error)", snapshot(vcpu))
    }
    let allQuiet = runState.withLock { state in
      state.quiescentTick[vcpu.id] = quiet ? state.tick : -1
      return state.quiescentTick.allSatisfy { $0 == state.tick }
    }
    return allQuiet ? .halted : nil
  }

  /// Installs (or with nil removes) the watcher that sees chosen port, MMIO and MSR accesses
  /// before they are carried out.
  public func watchAccesses(_ watcher: (any AccessWatcher)?) {
    accessWatcher.withLock { $0 = watcher }
  }

  /// Carries out the device access behind an I/O or MMIO exit. For string I/O, stops at
  /// the first access that asks for more than `.none` (an exit request ends the run anyway).
  public func serviceDeviceExit(_ exit: VCPUExit, on vcpu: VCPU) -> DeviceAction {
    switch exit {
    case .portOut(let port, let size, let count):
      for index in 0..<count {
        let value = vcpu.ioValue(at: index)
        guard verdict(on: .portWrite(port: port, size: size, value: value), by: vcpu) == .perform else { continue }
        let action = busLock.withLock { _ in bus.portWrite(port, size: size, value: value) }
        if action != .none { return action }
      }
    case .portIn(let port, let size, let count):
      console.flush()  // the guest may be waiting for input after a prompt
      for index in 0..<count {
        if case .skip(let value) = verdict(on: .portRead(port: port, size: size), by: vcpu) {
          vcpu.setIOValue(UInt32(truncatingIfNeeded: value), at: index)
        } else {
          vcpu.setIOValue(busLock.withLock { _ in bus.portRead(port, size: size) }, at: index)
        }
      }
    case .mmioRead(let address, let size):
      // A read of RAM that KVM sees absent (a watched page): not a device access.
      if let value = completeProtectedRead(address, size: size, by: vcpu.id) {
        vcpu.setMMIOReadValue(value)
        break
      }
      if case .skip(let value) = verdict(on: .mmioRead(address: address, size: size), by: vcpu) {
        vcpu.setMMIOReadValue(value)
      } else {
        vcpu.setMMIOReadValue(busLock.withLock { _ in bus.mmioRead(address, size: size) })
      }
    case .mmioWrite(let address, let size, let value):
      // A write to RAM that KVM sees read-only or absent (a watched page): not a device access.
      if completeProtectedWrite(address, size: size, value: value, by: vcpu.id) { break }
      guard verdict(on: .mmioWrite(address: address, size: size, value: value), by: vcpu) == .perform else { break }
      return busLock.withLock { _ in bus.mmioWrite(address, size: size, value: value) }
    default:
      break
    }
    return .none
  }

  /// Whether anyone watches accesses (the event API's port, MMIO and MSR events).
  var hasAccessWatcher: Bool { accessWatcher.withLock { $0 != nil } }

  /// What the access watcher (if any, and if it watches this access) says of it.
  func verdict(on access: GuestAccess, by vcpu: any VirtualCPU) -> AccessVerdict {
    guard let watcher = accessWatcher.withLock({ $0 }), watcher.watches(access) else { return .perform }
    return watcher.decide(access, on: vcpu)
  }

  /// The outcome for an exit that ends any run (plain, stepped or traced): a triple fault,
  /// a failed entry, a KVM internal error, a system event or an unknown exit. nil for others.
  public func terminalOutcome(of exit: VCPUExit, on vcpu: VCPU) -> RunOutcome? {
    switch exit {
    case .shutdown:
      return .tripleFault(snapshot(vcpu))
    case .internalError(let suberror, let data):
      let what =
        suberror == VCPUExit.emulationFailureSuberror
        ? "KVM failed to emulate an instruction" : "KVM internal error (suberror \(suberror))"
      let detail = data.isEmpty ? "" : " [" + data.map { "0x" + String($0, radix: 16) }.joined(separator: " ") + "]"
      return .internalError(description: what + detail, snapshot(vcpu))
    case .failedEntry(let reason):
      return .entryFailed(reason: reason, snapshot(vcpu))
    case .systemEvent(let type):
      // KVM_SYSTEM_EVENT_SHUTDOWN = 1, RESET = 2, CRASH = 3.
      switch type {
      case 1: return .powerOff
      case 2: return .reset
      default: return .internalError(description: "guest crash event (system event \(type))", snapshot(vcpu))
      }
    case .other(let reason):
      return .internalError(description: "unexpected KVM exit reason \(reason)", snapshot(vcpu))
    default:
      return nil
    }
  }

  /// Carries out a trapped MSR access for the guest: a write goes to the vCPU from here (a
  /// write KVM refuses raises #GP in the guest, as the hardware would); reads are not trapped.
  /// Returns the write, for whoever watches MSRs.
  public func serviceMSRExit(_ exit: VCPUExit, on vcpu: VCPU) -> (index: UInt32, value: UInt64)? {
    switch exit {
    case .msrWrite(let index, let value):
      if verdict(on: .msrWrite(index: index, value: value), by: vcpu) != .perform {
        vcpu.completeMSRAccess(error: false)  // dropped, as a watcher asked: no #GP
        return nil
      }
      // A write KVM refuses is the guest's #GP, not Hyperstep's error: the error is the answer.
      let accepted = (try? vcpu.setModelSpecificRegisters([(index, value)])) != nil
      vcpu.completeMSRAccess(error: !accepted)
      return accepted ? (index, value) : nil
    case .msrRead(let index):
      let value = try? vcpu.modelSpecificRegisters([index]).first  // likewise: unreadable is #GP
      vcpu.completeMSRAccess(error: value == nil, value: value ?? 0)
      return nil
    default:
      return nil
    }
  }

  /// What a device action means for a plain run: guest requests are for debuggers only.
  public func outcome(of action: DeviceAction) -> RunOutcome? {
    switch action {
    case .none, .guestRequest: return nil
    case .debugExit(let value): return .debugExit(value: value, status: DebugExitPort.status(forValue: value))
    case .reset: return .reset
    case .powerOff: return .powerOff
    }
  }

  /// How a run ends at a HLT with no in-kernel APIC to wake the vCPU: cleanly with interrupts
  /// off; with them on, nothing could ever interrupt it, which is reported.
  func haltOutcome(_ vcpu: any VirtualCPU) -> RunOutcome {
    let state = snapshot(vcpu)
    return state.registers.rflags & RFlags.interruptEnable == 0 ? .halted : .haltedForever(state)
  }

  /// The vCPU's registers for a crash report; when KVM cannot give them, the report says so
  /// rather than showing zeros as if they were the guest's.
  public func snapshot(_ vcpu: any VirtualCPU) -> CPUState {
    do {
      return CPUState(vcpu: vcpu.id, registers: try vcpu.registers(), special: try vcpu.specialRegisters())
    } catch {
      var state = CPUState(vcpu: vcpu.id, registers: Registers(), special: SpecialRegisters())
      state.unreadable = "\(error)"
      return state
    }
  }
}

extension Machine {
  /// Makes guest writes to these MSRs reach Hyperstep: through KVM's MSR filter (exits), or
  /// on the interpreter, through its WRMSR asking the machine first.
  public func trapMSRWrites(_ indices: [UInt32]) throws {
    if let vm { try vm.trapMSRWrites(indices) }
    trappedMSRs.withLock { $0 = Set(indices) }
  }

  /// Whether guest writes to this MSR are trapped (the interpreter asks at each WRMSR).
  func isTrappedMSR(_ index: UInt32) -> Bool { trappedMSRs.withLock { $0.contains(index) } }
}
