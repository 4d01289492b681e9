/// Why KVM_RUN returned to user space, decoded from `kvm_run` into plain values.
public enum VCPUExit: Sendable, Equatable {
  /// IN/INS: the VMM supplies `count` values of `size` bytes with `VCPU.setIOValue(_:at:)`.
  case portIn(port: UInt16, size: Int, count: Int)
  /// OUT/OUTS: `count` values of `size` bytes, read with `VCPU.ioValue(at:)`.
  case portOut(port: UInt16, size: Int, count: Int)
  /// A load from guest-physical memory that no RAM slot backs; answer with `VCPU.setMMIOReadValue`.
  case mmioRead(address: UInt64, size: Int)
  /// A store to guest-physical memory that no writable RAM slot backs.
  case mmioWrite(address: UInt64, size: Int, value: UInt64)
  /// HLT executed (only reported when no in-kernel local APIC is present).
  case halt
  /// The guest triple-faulted or otherwise asked for a shutdown.
  case shutdown
  /// A debug exception or breakpoint intercepted for the VMM (KVM_SET_GUEST_DEBUG).
  case debug(DebugExit)
  /// KVM_RUN was interrupted by a kick (a signal or `immediate_exit`).
  case interrupted
  /// VM entry failed; `reason` is the hardware's code.
  case failedEntry(reason: UInt64)
  /// KVM could not handle an exit in the kernel (for example an instruction it cannot emulate).
  case internalError(suberror: UInt32, data: [UInt64])
  /// A guest RDMSR of an MSR user space asked for; answer with `VCPU.completeMSRAccess`.
  case msrRead(index: UInt32)
  /// A guest WRMSR of an MSR user space asked for (`VirtualMachine.trapMSRWrites`): the
  /// write has not happened; user space does it (or refuses it) and completes the access.
  case msrWrite(index: UInt32, value: UInt64)
  /// KVM_EXIT_SYSTEM_EVENT (shutdown, reset, crash).
  case systemEvent(type: UInt32)
  /// Any other exit reason, reported as its KVM number.
  case other(reason: UInt32)
}

/// The architectural details of a KVM_EXIT_DEBUG on x86.
public struct DebugExit: Sendable, Equatable {
  /// 1 for #DB, 3 for #BP.
  public var exception: UInt32
  public var pc: UInt64
  public var dr6: UInt64
  public var dr7: UInt64

  public init(exception: UInt32, pc: UInt64, dr6: UInt64, dr7: UInt64) {
    self.exception = exception
    self.pc = pc
    self.dr6 = dr6
    self.dr7 = dr7
  }
}

extension VCPUExit {
  /// KVM_INTERNAL_ERROR_EMULATION: the in-kernel emulator failed on an instruction.
  public static let emulationFailureSuberror: UInt32 = 1
}
