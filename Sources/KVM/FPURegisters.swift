import CKVM

/// x87 and SSE state (KVM_GET_XSAVE's legacy region, or KVM_GET_FPU), in FXSAVE terms.
public struct FPURegisters: Sendable, Equatable {
  /// ST0-ST7, 10 bytes each (80-bit extended precision).
  public var st: [[UInt8]] = Array(repeating: Array(repeating: 0, count: 10), count: 8)
  public var controlWord: UInt16 = 0x37f
  public var statusWord: UInt16 = 0
  /// FXSAVE's abridged tag: one bit per register, 1 = valid.
  public var abridgedTag: UInt8 = 0
  public var lastOpcode: UInt16 = 0
  public var lastInstructionPointer: UInt64 = 0
  public var lastDataPointer: UInt64 = 0
  /// XMM0-XMM15, 16 bytes each.
  public var xmm: [[UInt8]] = Array(repeating: Array(repeating: 0, count: 16), count: 16)
  public var mxcsr: UInt32 = 0x1f80

  public init() {}

  init(_ raw: kvm_fpu) {
    var raw = raw
    // SAFETY: fpr and xmm are fixed-size byte arrays inside the local copy, read within bounds.
    st = unsafe withUnsafeBytes(of: &raw.fpr) { bytes in (0..<8).map { unsafe Array(bytes[($0 * 16)..<($0 * 16 + 10)]) }
    }
    // SAFETY: as above.
    xmm = unsafe withUnsafeBytes(of: &raw.xmm) { bytes in
      (0..<16).map { unsafe Array(bytes[($0 * 16)..<($0 * 16 + 16)]) }
    }
    controlWord = raw.fcw
    statusWord = raw.fsw
    abridgedTag = raw.ftwx
    lastOpcode = raw.last_opcode
    lastInstructionPointer = raw.last_ip
    lastDataPointer = raw.last_dp
    mxcsr = raw.mxcsr
  }

  var raw: kvm_fpu {
    var raw = kvm_fpu()
    // SAFETY: fpr is 8x16 bytes inside the local struct; writes stay within it.
    unsafe withUnsafeMutableBytes(of: &raw.fpr) { bytes in
      for (index, value) in st.prefix(8).enumerated() {
        for (offset, byte) in value.prefix(10).enumerated() { unsafe bytes[index * 16 + offset] = byte }
      }
    }
    // SAFETY: xmm is 16x16 bytes inside the local struct; writes stay within it.
    unsafe withUnsafeMutableBytes(of: &raw.xmm) { bytes in
      for (index, value) in xmm.prefix(16).enumerated() {
        for (offset, byte) in value.prefix(16).enumerated() { unsafe bytes[index * 16 + offset] = byte }
      }
    }
    raw.fcw = controlWord
    raw.fsw = statusWord
    raw.ftwx = abridgedTag
    raw.last_opcode = lastOpcode
    raw.last_ip = lastInstructionPointer
    raw.last_dp = lastDataPointer
    raw.mxcsr = mxcsr
    return raw
  }
}

extension FPURegisters {
  /// The state in an FXSAVE image (the first 512 bytes of an XSAVE area, SDM Vol. 1,
  /// 10.5.1, table 10-2, 64-bit layout): FCW 0, FSW 2, abridged FTW 4, FOP 6, FIP 8, FDP 16,
  /// MXCSR 24, ST0-ST7 from 32 and XMM0-XMM15 from 160, 16 bytes apart.
  init(fxsave bytes: [UInt8]) {
    func value(_ offset: Int, _ count: Int) -> UInt64 {
      (0..<count).reduce(0) { $0 | UInt64(bytes[offset + $1]) << (8 * UInt64($1)) }
    }
    controlWord = UInt16(value(0, 2))
    statusWord = UInt16(value(2, 2))
    abridgedTag = bytes[4]
    lastOpcode = UInt16(value(6, 2))
    lastInstructionPointer = value(8, 8)
    lastDataPointer = value(16, 8)
    mxcsr = UInt32(value(24, 4))
    st = (0..<8).map { Array(bytes[(32 + $0 * 16)..<(32 + $0 * 16 + 10)]) }
    xmm = (0..<16).map { Array(bytes[(160 + $0 * 16)..<(160 + $0 * 16 + 16)]) }
  }

  /// Writes this state into an FXSAVE image, leaving its other bytes (MXCSR_MASK, reserved) as they are.
  func store(into bytes: inout [UInt8]) {
    func put(_ value: UInt64, _ offset: Int, _ count: Int) {
      for index in 0..<count { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(index))) }
    }
    put(UInt64(controlWord), 0, 2)
    put(UInt64(statusWord), 2, 2)
    bytes[4] = abridgedTag
    put(UInt64(lastOpcode), 6, 2)
    put(lastInstructionPointer, 8, 8)
    put(lastDataPointer, 16, 8)
    put(UInt64(mxcsr), 24, 4)
    for (index, register) in st.prefix(8).enumerated() {
      for (offset, byte) in register.prefix(10).enumerated() { bytes[32 + index * 16 + offset] = byte }
    }
    for (index, register) in xmm.prefix(16).enumerated() {
      for (offset, byte) in register.prefix(16).enumerated() { bytes[160 + index * 16 + offset] = byte }
    }
  }
}

extension VCPU {
  /// x87 and SSE state. Through KVM_GET_XSAVE where the host has it: KVM_GET_FPU and
  /// KVM_SET_FPU leave MXCSR out (reads give 0, writes are dropped; seen on this project's
  /// hosts and in the kernel's kvm_arch_vcpu_ioctl_get_fpu), and MXCSR is guest state that
  /// must survive a move between engines.
  public func fpuRegisters() throws(KVMError) -> FPURegisters {
    if vm.hypervisor.check(.xsave) != 0 {
      var area = kvm_xsave()
      try Syscall.ioctl(fd.rawValue, CKVM_GET_XSAVE, on: &area, "KVM_GET_XSAVE")
      return FPURegisters(fxsave: Self.legacyRegion(of: &area))
    }
    var raw = kvm_fpu()
    try Syscall.ioctl(fd.rawValue, CKVM_GET_FPU, on: &raw, "KVM_GET_FPU")
    return FPURegisters(raw)
  }

  public func setFPURegisters(_ registers: FPURegisters) throws(KVMError) {
    if vm.hypervisor.check(.xsave) != 0 {
      // Read, change the legacy region, write back: the extended components (AVX's upper
      // halves) stay as they are. XSTATE_BV (the header's first 8 bytes, at 512) gets the
      // x87 and SSE bits, so that the restore takes those components from the image rather
      // than from their initial state (SDM Vol. 1, 13.8.1).
      var area = kvm_xsave()
      try Syscall.ioctl(fd.rawValue, CKVM_GET_XSAVE, on: &area, "KVM_GET_XSAVE")
      var bytes = Self.legacyRegion(of: &area)
      registers.store(into: &bytes)
      // SAFETY: region is 4096 bytes inside the local struct; the writes cover bytes 0..<512 and 512.
      unsafe withUnsafeMutableBytes(of: &area.region) { region in
        for (offset, byte) in bytes.enumerated() { unsafe region[offset] = byte }
        unsafe region[512] |= 0b11
      }
      try Syscall.ioctl(fd.rawValue, CKVM_SET_XSAVE, on: &area, "KVM_SET_XSAVE")
      return
    }
    var raw = registers.raw
    try Syscall.ioctl(fd.rawValue, CKVM_SET_FPU, on: &raw, "KVM_SET_FPU")
  }

  private static func legacyRegion(of area: inout kvm_xsave) -> [UInt8] {
    // SAFETY: region is 4096 bytes inside the struct; the first 512 are read.
    unsafe withUnsafeBytes(of: &area.region) { region in unsafe Array(region[0..<512]) }
  }
}
