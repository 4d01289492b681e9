import Devices
import X86

/// The machine's devices as one interpreter vCPU reaches them: port I/O and MMIO go to the
/// shared `IOBus` (under the machine's bus lock, with the access watcher asked first, as
/// KVM exits are), and a device action that ends or pauses a run is kept here for the run
/// loop, which the interpreter tells to stop after the instruction.
final class InterpreterBus: X86IOBus {
  unowned let machine: Machine
  let vcpuID: Int
  /// The action a device asked for, not yet taken by the run loop or the stepper.
  var pendingAction: DeviceAction = .none
  /// Port and MMIO accesses made so far: a stepper that has seen the count unchanged since it
  /// last asked the platform knows this vCPU has changed no device (see `deviceAccesses`).
  private(set) var accesses: UInt64 = 0
  /// The vCPU's retired instructions at the access being made (the CPU says, just before).
  private var retired: UInt64 = 0
  /// While an access is being carried out: the vCPU's state as the instruction has left it so
  /// far, for an access watcher's handler that reads registers (the CPU is busy executing).
  private(set) var stateDuringAccess: X86State?
  /// Whether the next access is watched: only then is the state copied for the watcher.

  func willAccess(retiredInstructions: UInt64, state: borrowing X86State) {
    retired = retiredInstructions
    stateDuringAccess = machine.hasAccessWatcher ? copy state : nil
  }

  /// The virtual time of the access being made: the vCPU's clock (see InterpreterPlatform).
  private var now: UInt64 { machine.interpreterVCPUs[vcpuID].clockBase &+ retired }

  init(machine: Machine, vcpuID: Int) {
    self.machine = machine
    self.vcpuID = vcpuID
  }

  func take() -> DeviceAction {
    defer { pendingAction = .none }
    return pendingAction
  }

  private func record(_ action: DeviceAction) -> Bool {
    guard action != .none else { return false }
    if pendingAction == .none { pendingAction = action }
    return true
  }

  func portRead(_ port: UInt16, size: Int) -> UInt32 {
    defer { stateDuringAccess = nil }
    accesses &+= 1
    machine.console.flush()  // the guest may be waiting for input after a prompt
    if case .skip(let value) = machine.verdict(on: .portRead(port: port, size: size), by: machine.cpus[vcpuID]) {
      return UInt32(truncatingIfNeeded: value)
    }
    return machine.withPlatform(at: now) { _ in machine.bus.portRead(port, size: size) }
      ?? machine.busLock.withLock { _ in machine.bus.portRead(port, size: size) }
  }

  func portWrite(_ port: UInt16, size: Int, value: UInt32) -> Bool {
    defer { stateDuringAccess = nil }
    accesses &+= 1
    guard machine.verdict(on: .portWrite(port: port, size: size, value: value), by: machine.cpus[vcpuID]) == .perform
    else {
      return false
    }
    let action =
      machine.withPlatform(at: now) { _ in machine.bus.portWrite(port, size: size, value: value) }
      ?? machine.busLock.withLock { _ in machine.bus.portWrite(port, size: size, value: value) }
    return record(action) || interruptsMayHaveChanged()
  }

  func mmioRead(_ address: UInt64, size: Int) -> UInt64 {
    defer { stateDuringAccess = nil }
    accesses &+= 1
    if let offset = localAPICOffset(address, size: size) {
      return UInt64(machine.withPlatform(at: now) { $0.chips.readLocalAPIC(cpu: vcpuID, offset: offset) } ?? ~0)
    }
    if case .skip(let value) = machine.verdict(on: .mmioRead(address: address, size: size), by: machine.cpus[vcpuID]) {
      return value
    }
    return machine.busLock.withLock { _ in machine.bus.mmioRead(address, size: size) }
  }

  func mmioWrite(_ address: UInt64, size: Int, value: UInt64) -> Bool {
    defer { stateDuringAccess = nil }
    accesses &+= 1
    if let offset = localAPICOffset(address, size: size) {
      machine.withPlatform(at: now) {
        $0.chips.writeLocalAPIC(cpu: vcpuID, offset: offset, value: UInt32(truncatingIfNeeded: value))
      }
      return interruptsMayHaveChanged()
    }
    guard
      machine.verdict(on: .mmioWrite(address: address, size: size, value: value), by: machine.cpus[vcpuID]) == .perform
    else {
      return false
    }
    let action =
      machine.withPlatform(at: now) { _ in machine.bus.mmioWrite(address, size: size, value: value) }
      ?? machine.busLock.withLock { _ in machine.bus.mmioWrite(address, size: size, value: value) }
    return record(action) || interruptsMayHaveChanged()
  }

  /// The last trapped MSR write carried out, for a stepper that stops after it.
  var lastMSRWrite: (index: UInt32, value: UInt64)?

  func willWriteMSR(_ index: UInt32, value: UInt64, state: borrowing X86State) -> MSRWriteVerdict {
    guard machine.isTrappedMSR(index) else { return .perform }
    stateDuringAccess = copy state
    defer { stateDuringAccess = nil }
    guard machine.verdict(on: .msrWrite(index: index, value: value), by: machine.cpus[vcpuID]) == .perform else {
      return .drop
    }
    lastMSRWrite = (index, value)
    return .performAndStop
  }

  /// The offset in the local APIC's page of an aligned 32-bit access to it (xAPIC registers
  /// are 32-bit, 16-byte aligned; SDM Vol. 3, 11.4.1); nil for any other address.
  private func localAPICOffset(_ address: UInt64, size: Int) -> UInt32? {
    guard machine.interpreterPlatform != nil, address & ~0xfff == LocalAPIC.defaultBase else { return nil }
    return UInt32(address & 0xfff)
  }

  /// After a write that may have raised an interrupt for some vCPU (an IPI, an EOI, an
  /// unmasked line): the run stops after this instruction, so the run loop looks.
  private func interruptsMayHaveChanged() -> Bool { machine.interpreterPlatform != nil }
}
