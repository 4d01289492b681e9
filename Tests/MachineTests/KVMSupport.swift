import KVM
import Testing

/// KVM tests run only where /dev/kvm can be opened; elsewhere Swift Testing prints this
/// reason next to every skipped test, so a run without KVM never passes silently.
let requiresKVM = ConditionTrait.enabled(
  if: Hypervisor.isAvailable,
  "SKIPPED: /dev/kvm is not available here, so this KVM guest test DID NOT RUN")
