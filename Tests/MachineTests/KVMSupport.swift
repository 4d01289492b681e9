import KVM
import Machine
import TestGuests
import Testing

/// KVM tests run only where /dev/kvm can be opened; elsewhere Swift Testing prints this
/// reason next to every skipped test, so a run without KVM never passes silently.
let requiresKVM = ConditionTrait.enabled(
  if: Hypervisor.isAvailable,
  "SKIPPED: /dev/kvm is not available here, so this KVM guest test DID NOT RUN")

/// The engines each guest test runs on (see `TestEngine`).
enum Engines {
  static let all = TestEngine.available
}

extension TestEngine {
  var choice: AcceleratorChoice { self == .kvm ? .kvm : .emu }
}

/// Says loudly, where /dev/kvm is missing, that the KVM cases of the parameterized tests did not run.
@Suite struct KVMEngineAvailability {
  @Test(requiresKVM) func kvmCasesRun() {
    #expect(TestEngine.available.contains(.kvm))
  }
}
