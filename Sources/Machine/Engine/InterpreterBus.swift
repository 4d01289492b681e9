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
    machine.console.flush()  // the guest may be waiting for input after a prompt
    if case .skip(let value) = machine.verdict(on: .portRead(port: port, size: size), by: machine.cpus[vcpuID]) {
      return UInt32(truncatingIfNeeded: value)
    }
    return machine.busLock.withLock { _ in machine.bus.portRead(port, size: size) }
  }

  func portWrite(_ port: UInt16, size: Int, value: UInt32) -> Bool {
    guard machine.verdict(on: .portWrite(port: port, size: size, value: value), by: machine.cpus[vcpuID]) == .perform
    else {
      return false
    }
    return record(machine.busLock.withLock { _ in machine.bus.portWrite(port, size: size, value: value) })
  }

  func mmioRead(_ address: UInt64, size: Int) -> UInt64 {
    if case .skip(let value) = machine.verdict(on: .mmioRead(address: address, size: size), by: machine.cpus[vcpuID]) {
      return value
    }
    return machine.busLock.withLock { _ in machine.bus.mmioRead(address, size: size) }
  }

  func mmioWrite(_ address: UInt64, size: Int, value: UInt64) -> Bool {
    guard
      machine.verdict(on: .mmioWrite(address: address, size: size, value: value), by: machine.cpus[vcpuID]) == .perform
    else {
      return false
    }
    return record(machine.busLock.withLock { _ in machine.bus.mmioWrite(address, size: size, value: value) })
  }
}
