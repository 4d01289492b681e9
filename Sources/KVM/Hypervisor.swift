import CKVM

#if canImport(Glibc)
  import Glibc
#endif

/// `/dev/kvm`: the root of the ownership chain Hypervisor -> VirtualMachine -> VCPU.
public final class Hypervisor: Sendable {
  let fd: OwnedFileDescriptor
  /// Size of each vCPU's shared `kvm_run` area.
  let vcpuMmapSize: Int

  /// The device node every KVM session starts from.
  public static let devicePath = "/dev/kvm"

  /// Whether this process can open `/dev/kvm` and talk to it now (for tests that must say
  /// when they cannot run). Tries for real: permission bits alone mislead root.
  public static var isAvailable: Bool {
    (try? Hypervisor()) != nil  // a yes/no question: why not is for the caller that needs KVM
  }

  public init(path: String = Hypervisor.devicePath) throws(KVMError) {
    let raw = try Syscall.open(path, O_RDWR)
    fd = OwnedFileDescriptor(raw)
    let version = try Syscall.ioctl(raw, CKVM_GET_API_VERSION, value: 0, "KVM_GET_API_VERSION")
    guard version == KVM_API_VERSION else {
      throw KVMError(errno: EINVAL, operation: "KVM_GET_API_VERSION (got \(version), need \(KVM_API_VERSION))")
    }
    vcpuMmapSize = Int(try Syscall.ioctl(raw, CKVM_GET_VCPU_MMAP_SIZE, value: 0, "KVM_GET_VCPU_MMAP_SIZE"))
  }

  /// The value KVM_CHECK_EXTENSION reports: 0 when absent, otherwise capability-specific.
  /// KVM answers EINVAL for capabilities it does not know: that too means absent.
  public func check(_ capability: Capability) -> Int {
    Int((try? Syscall.ioctl(fd.rawValue, CKVM_CHECK_EXTENSION, value: capability.number, "KVM_CHECK_EXTENSION")) ?? 0)
  }

  /// The largest vCPU count a VM may have on this host.
  public var maximumVCPUs: Int {
    let maximum = check(.maxVCPUs)
    return maximum > 0 ? maximum : max(check(.recommendedVCPUs), 4)
  }

  public func makeVirtualMachine() throws(KVMError) -> VirtualMachine {
    let raw = try Syscall.ioctl(fd.rawValue, CKVM_CREATE_VM, value: 0, "KVM_CREATE_VM")
    return VirtualMachine(fd: OwnedFileDescriptor(raw), hypervisor: self)
  }

  /// The CPUID leaves this host's KVM can expose to a guest (KVM_GET_SUPPORTED_CPUID).
  public func supportedCPUID() throws(KVMError) -> [CPUIDEntry] {
    var capacity = 128
    while true {
      let size = MemoryLayout<kvm_cpuid2>.size + capacity * MemoryLayout<kvm_cpuid_entry2>.stride
      let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
      // SAFETY: the buffer is allocated just above and freed when this scope ends.
      defer { unsafe buffer.deallocate() }
      // SAFETY: the buffer is large enough for a kvm_cpuid2 header plus `capacity` entries.
      let header = unsafe buffer.bindMemory(to: kvm_cpuid2.self, capacity: 1)
      unsafe header.pointee.nent = UInt32(capacity)
      do {
        _ = try unsafe Syscall.ioctl(fd.rawValue, CKVM_GET_SUPPORTED_CPUID, buffer, "KVM_GET_SUPPORTED_CPUID")
      } catch  where error.errno == E2BIG {
        capacity *= 2
        continue
      }
      let count = Int(unsafe header.pointee.nent)
      // SAFETY: KVM filled `count` entries directly after the header.
      let entries = unsafe (buffer + MemoryLayout<kvm_cpuid2>.size).bindMemory(
        to: kvm_cpuid_entry2.self, capacity: count)
      return (0..<count).map { unsafe CPUIDEntry(entries[$0]) }
    }
  }
}

extension Hypervisor {
  /// Whether this host's KVM is PVM (the kvm_pvm module: KVM for guests of a cloud VM, with no
  /// hardware virtualization under it). The one place Hyperstep asks; what differs there is
  /// named where it is used. Found by the module's directory in sysfs.
  public static let isPVM: Bool = {
    var info = stat()
    // SAFETY: stat(2) with a C string and a local stat buffer.
    return unsafe stat("/sys/module/kvm_pvm", &info) == 0
  }()
}
