import Devices
import X86

/// The machine's devices as one interpreter vCPU reaches them: port I/O and MMIO go to the
/// shared `IOBus` (under the machine's bus lock, with the access watcher asked first, as
/// KVM exits are), and a device action that ends or pauses a run is kept here for the run
/// loop, which the interpreter tells to stop after the instruction.
final class InterpreterBus: X86IOBus {
  unowned let machine: Machine
  let vcpuID: Int
  /// The machine's chips and virtual time: an interpreter machine's. For the interpreter twin
  /// of a KVM vCPU (`Machine.interpreterTwin`): nil while KVM has the vCPU (its machine has no
  /// chips in user space, or KVM's in-kernel ones), and, on a machine with in-kernel chips,
  /// their models while the vCPU runs on the interpreter (`Machine.moveToInterpreter`), which
  /// this bus then reaches itself (`carriedChip`), as the machine's bus does not have them.
  var platform: InterpreterPlatform?
  /// The vCPU this bus serves (which owns it).
  unowned let vcpu: InterpreterVCPU
  /// A KVM machine's chip that an access of the twin reached (KVMAssist.swift): KVM emulates
  /// its PIC, PIT and APICs in the kernel when it has them, where the interpreter cannot
  /// reach; such an access is answered with nothing and noted here, and the instruction's
  /// result is thrown away.
  var kernelDeviceAccess: String?
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

  func willAccess(retiredInstructions: UInt64, state: borrowing X86State) {
    retired = retiredInstructions
    stateDuringAccess = machine.hasAccessWatcher ? copy state : nil
  }

  /// The virtual time of the access being made: the vCPU's clock (see InterpreterPlatform).
  private var now: UInt64 { vcpu.clockBase &+ retired }

  init(machine: Machine, vcpu: InterpreterVCPU, platform: InterpreterPlatform?) {
    self.machine = machine
    self.vcpuID = vcpu.id
    self.vcpu = vcpu
    self.platform = platform
  }

  /// Runs `body` under the machine's bus lock with the devices brought to the access's time.
  private func atAccessTime<T: Sendable>(_ body: () -> T) -> T {
    machine.busLock.withLock { _ in
      platform?.advance(to: now)
      return body()
    }
  }

  func take() -> DeviceAction {
    defer { pendingAction = .none }
    return pendingAction
  }

  /// Keeps the first action a device asked for during the instruction.
  private func record(_ action: DeviceAction) {
    if pendingAction == .none { pendingAction = action }
  }

  /// Whether an access goes to one of KVM's in-kernel chips (a twin on a machine with them).
  private func inKernel(port: UInt16) -> Bool {
    guard platform == nil, machine.hasInterruptController else { return false }
    guard Self.isKernelChipPort(port) else { return false }
    kernelDeviceAccess = "port 0x\(String(port, radix: 16))"
    return true
  }

  /// The ports of KVM's in-kernel chips: the 8259s and their ELCR, the PIT and port 0x61
  /// (KVM_PIT_SPEAKER_DUMMY).
  static func isKernelChipPort(_ port: UInt16) -> Bool {
    switch port {
    case 0x20...0x21, 0xa0...0xa1, 0x4d0...0x4d1, 0x40...0x43, 0x61: true
    default: false
    }
  }

  /// A moved twin's model of an in-kernel chip at `port` (see `platform`), or nil.
  private func carriedChip(port: UInt16) -> (any PlatformPortDevice)? {
    guard let platform, machine.engine == .kvm, Self.isKernelChipPort(port) else { return nil }
    return (0x40...0x43).contains(port) || port == 0x61 ? platform.chips.pit : platform.chips.pic
  }

  /// A moved twin's model of the in-kernel I/O APIC, when `address` is in its page.
  private func carriedIOAPIC(_ address: UInt64) -> IOAPIC? {
    guard let platform, machine.engine == .kvm, address & ~0xfff == IOAPIC.defaultBase else { return nil }
    return platform.chips.ioapic
  }

  /// The local APIC's and the I/O APIC's pages, on a machine with KVM's in-kernel chips.
  private func inKernel(address: UInt64) -> Bool {
    guard platform == nil, machine.hasInterruptController,
      address & ~0xfff == LocalAPIC.defaultBase || address & ~0xfff == 0xfec0_0000
    else { return false }
    kernelDeviceAccess = "MMIO 0x\(String(address, radix: 16))"
    return true
  }

  func portRead(_ port: UInt16, size: Int) -> UInt32 {
    defer { stateDuringAccess = nil }
    if inKernel(port: port) { return 0 }
    accesses &+= 1
    machine.console.flush()  // the guest may be waiting for input after a prompt
    if case .skip(let value) = machine.verdict(on: .portRead(port: port, size: size), by: vcpu) {
      return UInt32(truncatingIfNeeded: value)
    }
    if let chip = carriedChip(port: port) { return atAccessTime { chip.read(port: port, size: size) } }
    return atAccessTime { machine.bus.portRead(port, size: size) }
  }

  func portWrite(_ port: UInt16, size: Int, value: UInt32) -> Bool {
    defer { stateDuringAccess = nil }
    if inKernel(port: port) { return true }
    accesses &+= 1
    guard machine.verdict(on: .portWrite(port: port, size: size, value: value), by: vcpu) == .perform
    else {
      return false
    }
    if let chip = carriedChip(port: port) {
      record(atAccessTime { chip.write(port: port, size: size, value: value) })
      return true
    }
    record(atAccessTime { machine.bus.portWrite(port, size: size, value: value) })
    return true  // the write may have raised an interrupt for some vCPU: the run loop looks
  }

  func mmioRead(_ address: UInt64, size: Int) -> UInt64 {
    defer { stateDuringAccess = nil }
    if inKernel(address: address) { return 0 }
    accesses &+= 1
    if let platform, let offset = localAPICOffset(address) {
      return UInt64(atAccessTime { platform.chips.readLocalAPIC(cpu: vcpuID, offset: offset) })
    }
    if case .skip(let value) = machine.verdict(on: .mmioRead(address: address, size: size), by: vcpu) {
      return value
    }
    if let ioapic = carriedIOAPIC(address) {
      return atAccessTime { ioapic.read(offset: address - IOAPIC.defaultBase, size: size) }
    }
    return machine.busLock.withLock { _ in machine.bus.mmioRead(address, size: size) }
  }

  func mmioWrite(_ address: UInt64, size: Int, value: UInt64) -> Bool {
    defer { stateDuringAccess = nil }
    if inKernel(address: address) { return true }
    accesses &+= 1
    if let platform, let offset = localAPICOffset(address) {
      atAccessTime {
        platform.chips.writeLocalAPIC(cpu: vcpuID, offset: offset, value: UInt32(truncatingIfNeeded: value))
      }
      return true  // an IPI, an EOI or a timer change: the run loop looks
    }
    guard
      machine.verdict(on: .mmioWrite(address: address, size: size, value: value), by: vcpu) == .perform
    else {
      return false
    }
    if let ioapic = carriedIOAPIC(address) {
      record(atAccessTime { ioapic.write(offset: address - IOAPIC.defaultBase, size: size, value: value) })
      return true
    }
    record(atAccessTime { machine.bus.mmioWrite(address, size: size, value: value) })
    return true  // the write may have raised an interrupt for some vCPU: the run loop looks
  }

  /// The last trapped MSR write carried out, for a stepper that stops after it.
  var lastMSRWrite: (index: UInt32, value: UInt64)?

  func willWriteMSR(_ index: UInt32, value: UInt64, state: borrowing X86State) -> MSRWriteVerdict {
    guard machine.isTrappedMSR(index) else { return .perform }
    stateDuringAccess = copy state
    defer { stateDuringAccess = nil }
    guard machine.verdict(on: .msrWrite(index: index, value: value), by: vcpu) == .perform else {
      return .drop
    }
    lastMSRWrite = (index, value)
    return .performAndStop
  }

  /// The offset of an access in the local APIC's page (each vCPU sees its own APIC there,
  /// SDM Vol. 3, 11.4.1); nil for any other address.
  private func localAPICOffset(_ address: UInt64) -> UInt32? {
    address & ~0xfff == LocalAPIC.defaultBase ? UInt32(address & 0xfff) : nil
  }
}
