#if canImport(Glibc)
  import Glibc
#endif

/// A failed system call in the KVM layer: which operation failed and the errno it gave.
public struct KVMError: Error, Equatable, CustomStringConvertible {
  /// The errno value the kernel returned.
  public let errno: Int32
  /// What was being attempted, named after the ioctl or call (`KVM_CREATE_VM`, `mmap kvm_run`).
  public let operation: String

  public init(errno: Int32, operation: String) {
    self.errno = errno
    self.operation = operation
  }

  public var description: String {
    // SAFETY: strerror returns a static, NUL-terminated message for any errno.
    let reason = unsafe String(cString: strerror(errno))
    switch errno {
    case ENOENT where operation.hasPrefix("open /dev/kvm"):
      return
        "\(operation) failed: \(reason) (is the kvm module loaded, and is this a machine with hardware virtualization?)"
    case EACCES where operation.hasPrefix("open /dev/kvm"):
      return "\(operation) failed: \(reason) (add your user to the kvm group, or run as root)"
    default:
      return "\(operation) failed: \(reason) (errno \(errno))"
    }
  }
}
