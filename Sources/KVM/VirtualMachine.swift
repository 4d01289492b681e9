import CKVM

/// A KVM virtual machine file descriptor: memory slots, vCPUs and VM-wide devices.
public final class VirtualMachine: @unchecked Sendable {
  let fd: OwnedFileDescriptor
  /// Kept so the /dev/kvm descriptor outlives every VM made from it.
  public let hypervisor: Hypervisor

  init(fd: OwnedFileDescriptor, hypervisor: Hypervisor) {
    self.fd = fd
    self.hypervisor = hypervisor
  }

  /// Maps `size` bytes of host memory at `hostAddress` into guest-physical space at `guestAddress`.
  /// The caller keeps the host mapping alive for as long as this VM exists.
  public func setUserMemoryRegion(
    slot: UInt32, guestAddress: UInt64, size: UInt64, hostAddress: UnsafeMutableRawPointer, readOnly: Bool = false
  ) throws(KVMError) {
    var region = kvm_userspace_memory_region(
      slot: slot, flags: readOnly ? UInt32(KVM_MEM_READONLY) : 0, guest_phys_addr: guestAddress,
      memory_size: size, userspace_addr: UInt64(UInt(bitPattern: hostAddress)))
    try Syscall.ioctl(fd.rawValue, CKVM_SET_USER_MEMORY_REGION, on: &region, "KVM_SET_USER_MEMORY_REGION")
  }

  /// Where the three pages Intel VT-x needs for real-mode emulation live (ignored on AMD, required to be set).
  public func setTSSAddress(_ address: UInt64) throws(KVMError) {
    _ = try Syscall.ioctl(fd.rawValue, CKVM_SET_TSS_ADDR, value: UInt(address), "KVM_SET_TSS_ADDR")
  }

  public func setIdentityMapAddress(_ address: UInt64) throws(KVMError) {
    var value = address
    try Syscall.ioctl(fd.rawValue, CKVM_SET_IDENTITY_MAP_ADDR, on: &value, "KVM_SET_IDENTITY_MAP_ADDR")
  }

  /// The in-kernel PIC, IOAPIC and local APICs.
  public func createInterruptController() throws(KVMError) {
    _ = try Syscall.ioctl(fd.rawValue, CKVM_CREATE_IRQCHIP, value: 0, "KVM_CREATE_IRQCHIP")
  }

  /// The in-kernel 8254 PIT (needs the interrupt controller first).
  public func createPIT() throws(KVMError) {
    var config = kvm_pit_config()
    config.flags = UInt32(KVM_PIT_SPEAKER_DUMMY)
    try Syscall.ioctl(fd.rawValue, CKVM_CREATE_PIT2, on: &config, "KVM_CREATE_PIT2")
  }

  /// Raises or lowers an interrupt line of the in-kernel interrupt controller.
  public func setInterruptLine(_ line: UInt32, high: Bool) throws(KVMError) {
    var level = kvm_irq_level()
    level.irq = line
    level.level = high ? 1 : 0
    try Syscall.ioctl(fd.rawValue, CKVM_IRQ_LINE, on: &level, "KVM_IRQ_LINE")
  }

  public func makeVCPU(id: Int) throws(KVMError) -> VCPU {
    let raw = try Syscall.ioctl(fd.rawValue, CKVM_CREATE_VCPU, value: UInt(id), "KVM_CREATE_VCPU")
    let owned = OwnedFileDescriptor(raw)
    return try VCPU(id: id, fd: owned, mmapSize: hypervisor.vcpuMmapSize, vm: self)
  }
}
