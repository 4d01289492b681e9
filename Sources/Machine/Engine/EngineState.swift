import KVM
import X86

/// Everything of a vCPU that moves when it changes engines: the register files both engines
/// keep (`Registers`, `SpecialRegisters` with the hidden parts of the segment registers,
/// CR0-CR4/CR8, EFER and the APIC base; `FPURegisters`, the x87 and SSE state FXSAVE holds;
/// `DebugRegisters`), the MSRs in `transferredMSRs`, the interrupt shadow and NMI blocking. Guest RAM is shared and never
/// copied; devices are the machine's, reached by both.
///
/// Read from one `VirtualCPU` and written to another, it is the whole architectural state
/// both engines model, field for field (X86StateConversion.swift): an instruction run on
/// either engine from it sees the same machine.
public struct EngineState: Equatable, Sendable {
  public var registers: Registers
  public var special: SpecialRegisters
  public var fpu: FPURegisters
  public var debug: DebugRegisters
  /// `transferredMSRs`' values, in that order.
  public var msrs: [UInt64]
  /// The interrupt shadow the next instruction runs in: 0 none, 1 after STI, 2 after MOV SS
  /// or POP SS (which also holds a #DB back: SDM Vol. 3, 6.8.3), as KVM numbers them
  /// (KVM_X86_SHADOW_INT_STI/MOV_SS).
  public var interruptShadow: UInt8 = 0
  /// NMIs blocked until the next IRET (one is being handled).
  public var nmiBlocked = false

  /// The MSRs outside the register files that the guest can set and both engines keep:
  /// the SYSENTER and SYSCALL sets, KERNEL_GS_BASE, PAT, TSC_AUX and the TSC (FS and GS
  /// bases travel in their segment registers, EFER and APIC_BASE in `SpecialRegisters`).
  public static let transferredMSRs: [UInt32] = [
    MSRIndex.sysenterCS, MSRIndex.sysenterESP, MSRIndex.sysenterEIP, MSRIndex.star, MSRIndex.lstar,
    MSRIndex.cstar, MSRIndex.sfmask, MSRIndex.kernelGSBase, MSRIndex.pat, MSRIndex.tscAux, MSRIndex.tsc,
  ]

  public init(registers: Registers, special: SpecialRegisters, fpu: FPURegisters, debug: DebugRegisters, msrs: [UInt64])
  {
    self.registers = registers
    self.special = special
    self.fpu = fpu
    self.debug = debug
    self.msrs = msrs
  }

  /// The state `cpu` holds now. The interrupt shadow and NMI blocking are outside KVM's
  /// register files: they come from KVM_GET_VCPU_EVENTS, or from the interpreter's state.
  public init(reading cpu: any VirtualCPU) throws {
    self.init(
      registers: try cpu.registers(), special: try cpu.specialRegisters(), fpu: try cpu.fpuRegisters(),
      debug: try cpu.debugRegisters(), msrs: try cpu.modelSpecificRegisters(Self.transferredMSRs))
    if let kvm = cpu as? VCPU {
      let events = try kvm.events()
      interruptShadow = events.interruptShadow & 3
      nmiBlocked = events.nmiMasked
    } else if let interpreter = cpu as? InterpreterVCPU {
      let state = interpreter.cpu.state
      interruptShadow = Self.shadow(of: state)
      nmiBlocked = state.nmiBlocked
    }
  }

  private static func shadow(of state: X86State) -> UInt8 {
    state.interruptShadow ? (state.stackSegmentShadow ? 2 : 1) : 0
  }

  /// Gives `cpu` this state. With `since`, the state `cpu` already holds, only the parts that
  /// differ are written (KVM recomputes its TSC offset on every TSC write, for one).
  public func write(to cpu: any VirtualCPU, since old: EngineState? = nil) throws {
    if old?.special != special { try cpu.setSpecialRegisters(special) }
    if old?.fpu != fpu { try cpu.setFPURegisters(fpu) }
    if old?.debug != debug { try cpu.setDebugRegisters(debug) }
    let changed = zip(Self.transferredMSRs, msrs).enumerated().filter { old?.msrs[$0.offset] != $0.element.1 }
    if !changed.isEmpty { try cpu.setModelSpecificRegisters(changed.map { ($0.element.0, $0.element.1) }) }
    // Last: on KVM, setting the special registers can recompute RFLAGS-dependent state.
    if old?.registers != registers { try cpu.setRegisters(registers) }
    if let kvm = cpu as? VCPU, old?.interruptShadow != interruptShadow || old?.nmiBlocked != nmiBlocked {
      var events = try kvm.events()
      events.interruptShadow = interruptShadow
      events.nmiMasked = nmiBlocked
      try kvm.setEvents(events)
    } else if let interpreter = cpu as? InterpreterVCPU {
      interpreter.cpu.state.interruptShadow = interruptShadow != 0
      interpreter.cpu.state.stackSegmentShadow = interruptShadow == 2
      interpreter.cpu.state.nmiBlocked = nmiBlocked
    }
  }

  /// The interpreter's state for this one (the halted state is the caller's to set: KVM keeps
  /// it in its MP state, which a machine without KVM's interrupt controllers never uses).
  public var x86State: X86State {
    var state = X86State()
    state.interruptShadow = interruptShadow != 0
    state.stackSegmentShadow = interruptShadow == 2
    state.nmiBlocked = nmiBlocked
    state.apply(special)  // first: the segment registers, then RFLAGS and the rest
    state.apply(registers)
    state.apply(fpu)
    state.apply(debug)
    for (index, value) in zip(Self.transferredMSRs, msrs) { _ = state.setModelSpecificRegister(index, value) }
    return state
  }

  /// This state as the interpreter's `state` left it.
  public init(_ state: X86State) {
    self.init(
      registers: state.registers, special: state.specialRegisters, fpu: state.fpuRegisters,
      debug: state.debugRegisters,
      msrs: Self.transferredMSRs.map { state.modelSpecificRegister($0) ?? 0 })
    interruptShadow = Self.shadow(of: state)
    nmiBlocked = state.nmiBlocked
  }
}
