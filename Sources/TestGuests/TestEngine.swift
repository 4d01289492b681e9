import KVM

/// The engines a guest test runs on: every test of a feature above the engines is
/// parameterized over these, not copied per engine.
public enum TestEngine: String, CaseIterable, Sendable, CustomStringConvertible {
  case kvm
  /// Hyperstep's own x86-64 interpreter (`--accel emu`).
  case emu

  /// The interpreter everywhere; KVM where /dev/kvm opens. (Each test target also has a
  /// test that requires KVM, so a run without it says loudly that the KVM cases did not run.)
  public static let available: [TestEngine] = Hypervisor.isAvailable ? [.kvm, .emu] : [.emu]

  /// The `--accel` value that selects this engine.
  public var accelerator: String { rawValue }
  public var description: String { rawValue }
}
