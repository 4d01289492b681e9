import CKVM

/// x87 and SSE state (KVM_GET_FPU), in FXSAVE terms.
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

extension VCPU {
  public func fpuRegisters() throws(KVMError) -> FPURegisters {
    var raw = kvm_fpu()
    try Syscall.ioctl(fd.rawValue, CKVM_GET_FPU, on: &raw, "KVM_GET_FPU")
    return FPURegisters(raw)
  }

  public func setFPURegisters(_ registers: FPURegisters) throws(KVMError) {
    var raw = registers.raw
    try Syscall.ioctl(fd.rawValue, CKVM_SET_FPU, on: &raw, "KVM_SET_FPU")
  }
}
