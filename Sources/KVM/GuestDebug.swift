import CKVM

/// What KVM_SET_GUEST_DEBUG asks of KVM for one vCPU.
public struct GuestDebug: Sendable, Equatable {
  public struct Options: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Single-step: KVM sets EFLAGS.TF for the guest and reports each trap as a debug exit.
    public static let singleStep = Options(rawValue: UInt32(KVM_GUESTDBG_SINGLESTEP))
    /// Intercept #BP so INT3 bytes planted by the host become debug exits.
    public static let softwareBreakpoints = Options(rawValue: UInt32(KVM_GUESTDBG_USE_SW_BP))
    /// Load `debugRegisters` into DR0-DR7 instead of the guest's own, and intercept #DB.
    public static let hardwareBreakpoints = Options(rawValue: UInt32(KVM_GUESTDBG_USE_HW_BP))
    /// Hold interrupts, NMIs and SMIs while single-stepping.
    public static let blockInterrupts = Options(rawValue: UInt32(KVM_GUESTDBG_BLOCKIRQ))
  }

  public var options: Options
  /// DR0-DR3, (DR4, DR5 unused), DR6, DR7 for `.hardwareBreakpoints`.
  public var debugRegisters: [UInt64]

  public init(options: Options = [], debugRegisters: [UInt64] = Array(repeating: 0, count: 8)) {
    self.options = options
    self.debugRegisters = debugRegisters
  }

  var raw: kvm_guest_debug {
    var raw = kvm_guest_debug()
    raw.control = options.isEmpty ? 0 : options.rawValue | UInt32(KVM_GUESTDBG_ENABLE)
    let r = debugRegisters + Array(repeating: 0, count: max(0, 8 - debugRegisters.count))
    raw.arch.debugreg = (r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7])
    return raw
  }
}

/// The guest's own debug registers, as it would read them (KVM_GET_DEBUGREGS).
public struct DebugRegisters: Sendable, Equatable {
  public var address: (UInt64, UInt64, UInt64, UInt64)
  public var dr6: UInt64
  public var dr7: UInt64

  public init(address: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0), dr6: UInt64 = 0xffff_0ff0, dr7: UInt64 = 0x400)
  {
    self.address = address
    self.dr6 = dr6
    self.dr7 = dr7
  }

  public static func == (lhs: DebugRegisters, rhs: DebugRegisters) -> Bool {
    lhs.address == rhs.address && lhs.dr6 == rhs.dr6 && lhs.dr7 == rhs.dr7
  }
}

/// Exceptions, interrupts and NMIs in flight for a vCPU (KVM_GET_VCPU_EVENTS), and the
/// interrupt shadow of MOV SS / STI.
public struct VCPUEvents: Sendable, Equatable {
  public struct Exception: Sendable, Equatable {
    public var vector: UInt8
    /// Already being delivered (true) or only queued (false).
    public var injected: Bool
    public var errorCode: UInt32?
    /// DR6 bits (#DB) or CR2 (#PF) to deliver with it, when KVM reports payloads.
    public var payload: UInt64?

    public init(vector: UInt8, injected: Bool, errorCode: UInt32? = nil, payload: UInt64? = nil) {
      self.vector = vector
      self.injected = injected
      self.errorCode = errorCode
      self.payload = payload
    }
  }

  public var exception: Exception?
  /// An external interrupt being delivered, and whether it came from INT n.
  public var interrupt: (vector: UInt8, soft: Bool)?
  /// Interrupt shadow: 1 after STI, 2 after MOV SS/POP SS (KVM_X86_SHADOW_INT_*).
  public var interruptShadow: UInt8
  public var nmiInjected: Bool
  public var nmiPending: Bool
  public var nmiMasked: Bool
  var raw: kvm_vcpu_events

  init(_ raw: kvm_vcpu_events) {
    self.raw = raw
    let e = raw.exception
    if e.injected != 0 || e.pending != 0 {
      exception = Exception(
        vector: e.nr, injected: e.injected != 0, errorCode: e.has_error_code != 0 ? e.error_code : nil,
        payload: raw.exception_has_payload != 0 ? raw.exception_payload : nil)
    }
    if raw.interrupt.injected != 0 { interrupt = (raw.interrupt.nr, raw.interrupt.soft != 0) }
    interruptShadow = raw.interrupt.shadow
    nmiInjected = raw.nmi.injected != 0
    nmiPending = raw.nmi.pending != 0
    nmiMasked = raw.nmi.masked != 0
  }

  public static func == (lhs: VCPUEvents, rhs: VCPUEvents) -> Bool {
    lhs.exception == rhs.exception && lhs.interrupt?.vector == rhs.interrupt?.vector
      && lhs.interrupt?.soft == rhs.interrupt?.soft && lhs.interruptShadow == rhs.interruptShadow
      && lhs.nmiInjected == rhs.nmiInjected && lhs.nmiPending == rhs.nmiPending && lhs.nmiMasked == rhs.nmiMasked
  }

  var rawForSet: kvm_vcpu_events {
    var out = raw
    out.exception = .init()
    out.exception_has_payload = 0
    out.exception_payload = 0
    if let exception {
      out.exception.nr = exception.vector
      out.exception.injected = exception.injected ? 1 : 0
      out.exception.pending = exception.injected ? 0 : 1
      out.exception.has_error_code = exception.errorCode == nil ? 0 : 1
      out.exception.error_code = exception.errorCode ?? 0
      if let payload = exception.payload {
        out.exception_has_payload = 1
        out.exception_payload = payload
      }
    }
    out.interrupt.shadow = interruptShadow
    out.nmi.masked = nmiMasked ? 1 : 0
    out.flags = UInt32(KVM_VCPUEVENT_VALID_SHADOW) | (raw.flags & UInt32(KVM_VCPUEVENT_VALID_PAYLOAD))
    return out
  }
}

extension VCPU {
  /// Sets what KVM intercepts for this vCPU. A setting equal to the one in force is not sent
  /// again unless it single-steps: KVM forces the trap flag only while RIP is where the
  /// setting was made, and an instruction it emulates (or a register write) clears the flag,
  /// so every step needs the setting anew.
  public func setGuestDebug(_ debug: GuestDebug) throws(KVMError) {
    if cache.guestDebug == debug && !debug.options.contains(.singleStep) { return }
    cache.guestDebug = nil
    var raw = debug.raw
    try Syscall.ioctl(fd.rawValue, CKVM_SET_GUEST_DEBUG, on: &raw, "KVM_SET_GUEST_DEBUG")
    cache.guestDebug = debug
  }

  public func debugRegisters() throws(KVMError) -> DebugRegisters {
    var raw = kvm_debugregs()
    try Syscall.ioctl(fd.rawValue, CKVM_GET_DEBUGREGS, on: &raw, "KVM_GET_DEBUGREGS")
    return DebugRegisters(address: (raw.db.0, raw.db.1, raw.db.2, raw.db.3), dr6: raw.dr6, dr7: raw.dr7)
  }

  public func setDebugRegisters(_ registers: DebugRegisters) throws(KVMError) {
    var raw = kvm_debugregs()
    raw.db = registers.address
    raw.dr6 = registers.dr6
    raw.dr7 = registers.dr7
    try Syscall.ioctl(fd.rawValue, CKVM_SET_DEBUGREGS, on: &raw, "KVM_SET_DEBUGREGS")
  }

  public func events() throws(KVMError) -> VCPUEvents {
    var raw = kvm_vcpu_events()
    try Syscall.ioctl(fd.rawValue, CKVM_GET_VCPU_EVENTS, on: &raw, "KVM_GET_VCPU_EVENTS")
    return VCPUEvents(raw)
  }

  public func setEvents(_ events: VCPUEvents) throws(KVMError) {
    cache.forgetRegisters()  // the special registers' pending-interrupt bitmap, for one
    var raw = events.rawForSet
    try Syscall.ioctl(fd.rawValue, CKVM_SET_VCPU_EVENTS, on: &raw, "KVM_SET_VCPU_EVENTS")
  }

  /// Makes the next KVM_RUN return at once, after finishing any I/O or MMIO the last exit left
  /// pending: the instruction completes, nothing after it runs (KVM API, "immediate_exit").
  public func requestImmediateExit() {
    // SAFETY: immediate_exit is a byte of this vCPU's kvm_run, written by its own thread.
    unsafe shared.pointee.immediate_exit = 1
  }

  /// Withdraws `requestImmediateExit()` when KVM returned with another exit first (it can
  /// report the step trap of the completed instruction instead), so the next KVM_RUN runs.
  public func cancelImmediateExit() {
    // SAFETY: immediate_exit is a byte of this vCPU's kvm_run, written by its own thread.
    unsafe shared.pointee.immediate_exit = 0
  }
}
