import Devices
import KVM
import X86

/// The PC an interpreter machine has in user space, and its virtual time.
///
/// KVM machines get their PIC, PIT and APICs from the kernel (`--irqchip`); an interpreter
/// machine always has them, as Hyperstep's own chips (`PCPlatformInterrupts`: the 8259 pair,
/// the 8254, a local APIC per vCPU, the I/O APIC, the RTC, the 8042), because it costs
/// nothing while the guest does not use them. A KVM machine with the kernel's chips keeps a
/// platform of its own too (`Machine.kernelChipModels`), unused until its vCPUs move to the
/// interpreter with the chips' state (EngineSwitch.swift, KernelChips.swift).
///
/// Time is virtual: each vCPU's clock is its retired instructions at a nominal 1 GHz (one
/// nanosecond each, the rate of its TSC), from a base set when it starts or wakes. Devices see
/// the time of the vCPU touching them and never go back. A vCPU runs at most to the next
/// device deadline, so a timer interrupt arrives at the same instruction on every run.
/// Everything here is touched under the machine's `busLock`.
final class InterpreterPlatform {
  let chips: PCPlatformInterrupts
  /// The latest virtual time the devices have been brought to, in nanoseconds.
  private(set) var now: UInt64 = 0

  /// - Parameter clockStart: the RTC's date at power-on, in seconds since 1970 (UTC); nil
  ///   for the host's clock now.
  init(cpuCount: Int, memorySize: UInt64, clockStart: Int64? = nil) {
    let below4G = min(memorySize, BootLayout.ramRegions(memorySize: memorySize)[0].size)
    chips = PCPlatformInterrupts(
      cpuCount: cpuCount, rtcStart: CivilTime(secondsSinceEpoch: clockStart ?? HostIO.wallClockSeconds()),
      memoryBelow4G: below4G, memoryAbove4G: memorySize - below4G)
  }

  /// A vCPU's virtual time.
  func time(of vcpu: InterpreterVCPU) -> UInt64 { vcpu.clockBase &+ vcpu.cpu.retiredInstructions }

  /// Brings every device to `time` (never backwards).
  func advance(to time: UInt64) {
    if time > now { now = time }
    chips.advance(to: now)
  }

  /// Moves a vCPU's clock forward to `time` without running it (it was halted or waiting),
  /// its TSC with it, as a halted processor's TSC keeps counting.
  func catchUp(_ vcpu: InterpreterVCPU, to time: UInt64) {
    let current = self.time(of: vcpu)
    guard time > current else { return }
    vcpu.clockBase &+= time - current
    vcpu.cpu.advanceTimeStampCounter(by: time - current)
  }

  /// Instructions `vcpu` may run before the next device deadline (at least 1, at most `limit`).
  func budget(for vcpu: InterpreterVCPU, limit: UInt64) -> UInt64 {
    guard let deadline = chips.nextDeadline else { return limit }
    let time = self.time(of: vcpu)
    return deadline > time ? min(limit, deadline - time) : 1
  }
}

extension Machine {
  /// What the platform has for an interpreter vCPU at its current time: acts on INIT and
  /// start-up IPIs, refreshes its interrupt line, and (when `deliver` and the vCPU can take
  /// it) delivers a pending NMI or maskable interrupt. Returns the delivery's result, or nil
  /// when nothing was delivered.
  public func serviceInterrupts(_ vcpu: InterpreterVCPU, deliver: Bool) -> StepResult? {
    guard let platform = vcpu.bus?.platform else { return nil }
    return busLock.withLock { _ -> StepResult? in
      platform.advance(to: platform.time(of: vcpu))
      takeProcessorSignals(platform)
      guard !vcpu.waitingForStartup else { return nil }
      let apic = platform.chips.localAPICs[vcpu.id]
      if deliver && apic.nmiPending && vcpu.cpu.acceptsNMI {
        apic.nmiPending = false
        return vcpu.cpu.deliverNMI()
      }
      let pending = platform.chips.hasInterrupt(cpu: vcpu.id)
      vcpu.cpu.interruptLine = pending
      guard deliver && pending && vcpu.cpu.acceptsInterrupts,
        let vector = platform.chips.acknowledgeInterrupt(cpu: vcpu.id)
      else { return nil }
      vcpu.cpu.interruptLine = platform.chips.hasInterrupt(cpu: vcpu.id)
      return vcpu.cpu.deliverExternalInterrupt(vector: vector)
    }
  }

  /// The interpreter running vCPU `index`: an interpreter machine's vCPU, or a KVM vCPU's
  /// twin once made.
  func interpreterCPU(_ index: Int) -> InterpreterVCPU? {
    if engine == .interpreter { return interpreterVCPUs.indices.contains(index) ? interpreterVCPUs[index] : nil }
    return interpreterTwins.withLock { $0[index] }
  }

  /// INIT resets a vCPU to its power-on state and makes it wait; a start-up IPI starts a
  /// waiting one in real mode at vector × 4 KiB (SDM Vol. 3, 8.4.4), its clock set to now.
  private func takeProcessorSignals(_ platform: InterpreterPlatform) {
    guard !platform.chips.processorSignals.isEmpty else { return }
    let signals = platform.chips.processorSignals
    platform.chips.processorSignals.removeAll()
    for (cpu, signal) in signals {
      guard let vcpu = interpreterCPU(cpu) else { continue }
      switch signal {
      case .initialize:
        vcpu.cpu.state = .powerOn()
        vcpu.waitingForStartup = true
      case .startup(let vector):
        guard vcpu.waitingForStartup else { continue }  // a SIPI to a running CPU is ignored
        var state = X86State.powerOn()
        state[.cs] = SegmentRegister(
          selector: UInt16(vector) << 8, base: UInt64(vector) << 12, limit: 0xffff, type: 0xb)
        state.rip = 0
        vcpu.cpu.state = state
        vcpu.waitingForStartup = false
        vcpu.clockBase = platform.now &- vcpu.cpu.retiredInstructions
      }
    }
  }

  /// Skips virtual time to the next device deadline while `vcpus` are halted (all the
  /// running vCPUs, for a plain run; one, for a stepper waiting for its interrupt), their
  /// clocks moved along. False when no device will ever fire.
  /// At most `limit` nanoseconds of virtual time pass when given (the deadline is then
  /// approached, not necessarily reached).
  func skipIdleTime(for vcpus: [InterpreterVCPU], limit: UInt64? = nil) -> Bool {
    guard let platform = vcpus.first?.bus?.platform ?? interpreterPlatform else { return false }
    return busLock.withLock { _ in
      guard var deadline = platform.chips.nextDeadline else { return false }
      if let limit { deadline = min(deadline, platform.now &+ limit) }
      for vcpu in vcpus { platform.catchUp(vcpu, to: deadline) }
      platform.advance(to: deadline)
      return true
    }
  }

  /// Virtual nanoseconds until the next device deadline, or nil when none is set.
  func timeToNextDeadline() -> UInt64? {
    guard let platform = interpreterPlatform else { return nil }
    return busLock.withLock { _ in
      platform.chips.nextDeadline.map { $0 > platform.now ? $0 - platform.now : 0 }
    }
  }

  /// `skipIdleTime(for:)` for one vCPU.
  public func skipIdleTime(for vcpu: InterpreterVCPU) -> Bool { skipIdleTime(for: [vcpu]) }

  /// How many instructions `vcpu` may run before a device needs attention.
  public func instructionBudget(_ vcpu: InterpreterVCPU, limit: UInt64) -> UInt64 {
    guard let platform = vcpu.bus?.platform else { return limit }
    return busLock.withLock { _ in platform.budget(for: vcpu, limit: limit) }
  }
}
