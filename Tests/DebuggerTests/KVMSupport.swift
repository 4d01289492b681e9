import KVM
import Machine
import TestGuests
import Testing

let requiresKVM = ConditionTrait.enabled(
  if: Hypervisor.isAvailable,
  "SKIPPED: /dev/kvm is not available here, so this KVM stepping test DID NOT RUN")

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
