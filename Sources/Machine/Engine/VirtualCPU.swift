import KVM

/// Which engine runs a machine's vCPUs.
public enum EngineKind: String, Sendable, CaseIterable {
  /// Linux KVM: the host CPU runs the guest.
  case kvm
  /// Hyperstep's own x86-64 interpreter (`Sources/X86`).
  case interpreter

  /// The name the CLI uses (QEMU's spelling: `--accel kvm|emu`).
  public var acceleratorName: String { self == .kvm ? "kvm" : "emu" }
}

/// What the user asked for with `--accel`: an engine, or `auto` (KVM when /dev/kvm works).
public enum AcceleratorChoice: String, Sendable, CaseIterable {
  case kvm, emu, auto
}

/// One vCPU as everything above the engines sees it: its architectural state, read and
/// written as values, whichever engine runs it.
///
/// The state types are the register values the KVM module defines (`Registers`,
/// `SpecialRegisters`, `FPURegisters`, `DebugRegisters`): plain Swift values with no KVM
/// behaviour, which both engines convert to and from. Running and stepping are not here:
/// each engine has its own run loop in Machine and its own stepping in Debugger, because
/// what they must do to run one instruction differs completely (KVM's single-step with its
/// fixes, or one call of the interpreter).
public protocol VirtualCPU: AnyObject, Sendable {
  var id: Int { get }
  var engine: EngineKind { get }
  func registers() throws -> Registers
  func setRegisters(_ registers: Registers) throws
  func specialRegisters() throws -> SpecialRegisters
  func setSpecialRegisters(_ registers: SpecialRegisters) throws
  func fpuRegisters() throws -> FPURegisters
  func setFPURegisters(_ registers: FPURegisters) throws
  func debugRegisters() throws -> DebugRegisters
  func setDebugRegisters(_ registers: DebugRegisters) throws
  /// The values of these MSRs; an MSR the engine does not have is an error.
  func modelSpecificRegisters(_ indices: [UInt32]) throws -> [UInt64]
  func setModelSpecificRegisters(_ values: [(index: UInt32, value: UInt64)]) throws
  /// Makes a run of this vCPU on another thread return soon.
  func kick()
  /// KVM wants a vCPU's ioctls from the thread that runs it; the interpreter does not care.
  func bindToCurrentThread()
}

extension VCPU: VirtualCPU {
  public var engine: EngineKind { .kvm }
}
