import CKVM

#if canImport(Glibc)
  import Glibc
#endif

// The one choke point through which every system call of the KVM layer goes, so
// that errors always carry errno and the operation's name, and so that there is a
// single place to look when counting or auditing system calls.
enum Syscall {
  /// ioctl with a pointer argument. Retries EINTR except for KVM_RUN, where an
  /// interruption is a deliberate kick and is reported to the caller instead.
  @inline(__always)
  static func ioctl(
    _ fd: Int32, _ request: UInt, _ argument: UnsafeMutableRawPointer?, _ name: StaticString
  ) throws(KVMError) -> Int32 {
    while true {
      // SAFETY: `argument` points at a live value of the type the request expects; callers pair them.
      let result = unsafe ckvm_ioctl_ptr(fd, request, argument)
      if result >= 0 { return result }
      let error = Glibc.errno
      if error == EINTR { continue }
      throw KVMError(errno: error, operation: name.description)
    }
  }

  /// ioctl on one value (a KVM struct, or an integer) that the request reads, fills or both.
  @inline(__always)
  static func ioctl<T>(_ fd: Int32, _ request: UInt, on value: inout T, _ name: StaticString) throws(KVMError) {
    // SAFETY: `value` stays live and exclusively borrowed for the call; each caller passes the
    // type its request is defined on (kvm_fpu for KVM_GET_FPU, ...).
    _ = try unsafe withUnsafeMutablePointer(to: &value) { pointer throws(KVMError) in
      try unsafe ioctl(fd, request, pointer, name)
    }
  }

  /// ioctl with an integer argument (KVM_CREATE_VCPU, KVM_CHECK_EXTENSION, ...).
  @inline(__always)
  static func ioctl(_ fd: Int32, _ request: UInt, value: UInt, _ name: StaticString) throws(KVMError) -> Int32 {
    while true {
      let result = ckvm_ioctl_value(fd, request, value)
      if result >= 0 { return result }
      let error = Glibc.errno
      if error == EINTR { continue }
      throw KVMError(errno: error, operation: name.description)
    }
  }

  /// KVM_RUN: returns false when the call was interrupted by a signal (a kick).
  @inline(__always)
  static func run(_ fd: Int32) throws(KVMError) -> Bool {
    let result = ckvm_ioctl_value(fd, CKVM_RUN, 0)
    if result >= 0 { return true }
    let error = Glibc.errno
    if error == EINTR || error == EAGAIN { return false }
    throw KVMError(errno: error, operation: "KVM_RUN")
  }

  static func open(_ path: String, _ flags: Int32) throws(KVMError) -> Int32 {
    // SAFETY: open(2) with a Swift string converted to a C string for the call.
    let fd = unsafe Glibc.open(path, flags | O_CLOEXEC)
    if fd < 0 { throw KVMError(errno: Glibc.errno, operation: "open \(path)") }
    return fd
  }

  static func close(_ fd: Int32) {
    _ = Glibc.close(fd)
  }

  static func mmap(length: Int, protection: Int32, flags: Int32, fd: Int32, name: StaticString) throws(KVMError)
    -> UnsafeMutableRawPointer
  {
    // SAFETY: a fresh mapping chosen by the kernel; nothing else aliases it yet.
    let address = unsafe Glibc.mmap(nil, length, protection, flags, fd, 0)
    guard let address = unsafe address, unsafe address != MAP_FAILED else {
      throw KVMError(errno: Glibc.errno, operation: name.description)
    }
    return unsafe address
  }

  static func munmap(_ address: UnsafeMutableRawPointer, length: Int) {
    // SAFETY: called once, by the owner of a mapping made by `mmap` above, when it is dropped.
    _ = unsafe Glibc.munmap(address, length)
  }
}
