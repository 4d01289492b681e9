import CKVM

extension VirtualMachine {
  /// Sends guest writes of these MSRs to user space as `VCPUExit.msrWrite`
  /// (KVM_CAP_X86_USER_SPACE_MSR with filter exits, and a KVM_X86_SET_MSR_FILTER that
  /// denies exactly those writes to the kernel). Up to 16 MSRs; reads are left alone.
  public func trapMSRWrites(_ indices: [UInt32]) throws(KVMError) {
    var enable = kvm_enable_cap()
    enable.cap = UInt32(KVM_CAP_X86_USER_SPACE_MSR)
    enable.args.0 = UInt64(KVM_MSR_EXIT_REASON_FILTER)
    try Syscall.ioctl(fd.rawValue, CKVM_ENABLE_CAP, on: &enable, "KVM_ENABLE_CAP(X86_USER_SPACE_MSR)")
    var filter = kvm_msr_filter()
    filter.flags = UInt32(KVM_MSR_FILTER_DEFAULT_ALLOW)
    // One range per MSR, each with a one-bit bitmap that is 0: "deny", so the write exits.
    let bitmap = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
    defer { unsafe bitmap.deallocate() }
    unsafe bitmap.pointee = 0
    // SAFETY: `ranges` holds KVM_MSR_FILTER_MAX_RANGES structs; at most that many are written,
    // and the bitmap outlives the ioctl, which copies it.
    unsafe withUnsafeMutableBytes(of: &filter.ranges) { bytes in
      let stride = unsafe MemoryLayout<kvm_msr_filter_range>.stride
      for (slot, index) in indices.prefix(Int(KVM_MSR_FILTER_MAX_RANGES)).enumerated() {
        var range = unsafe kvm_msr_filter_range()
        unsafe range.flags = UInt32(KVM_MSR_FILTER_WRITE)
        unsafe range.nmsrs = 1
        unsafe range.base = index
        unsafe range.bitmap = bitmap
        unsafe bytes.storeBytes(of: range, toByteOffset: slot * stride, as: kvm_msr_filter_range.self)
      }
    }
    try Syscall.ioctl(fd.rawValue, CKVM_X86_SET_MSR_FILTER, on: &filter, "KVM_X86_SET_MSR_FILTER")
  }
}

extension VCPU {
  /// Finishes an `msrRead`/`msrWrite` exit: `error` makes the guest's RDMSR/WRMSR raise #GP;
  /// `value` is what an RDMSR returns.
  public func completeMSRAccess(error: Bool, value: UInt64 = 0) {
    // SAFETY: the msr member of this vCPU's kvm_run is current during an MSR exit.
    unsafe shared.pointee.msr.error = error ? 1 : 0
    unsafe shared.pointee.msr.data = value
  }
}
