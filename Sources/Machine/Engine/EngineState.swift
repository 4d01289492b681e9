import KVM
import X86

/// Everything of a vCPU that moves when it changes engines: the register files both engines
/// keep (`Registers`, `SpecialRegisters` with the hidden parts of the segment registers,
/// CR0-CR4/CR8, EFER and the APIC base; `FPURegisters`, the x87 and SSE state FXSAVE holds;
/// `DebugRegisters`) and the MSRs in `transferredMSRs`. Guest RAM is shared and never
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

  /// The state `cpu` holds now.
  public init(reading cpu: any VirtualCPU) throws {
    self.init(
      registers: try cpu.registers(), special: try cpu.specialRegisters(), fpu: try cpu.fpuRegisters(),
      debug: try cpu.debugRegisters(), msrs: try cpu.modelSpecificRegisters(Self.transferredMSRs))
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
  }

  /// The interpreter's state for this one (the interrupt shadow and the halted state are the
  /// caller's to set: they are not in KVM's register files).
  public var x86State: X86State {
    var state = X86State()
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
  }
}
