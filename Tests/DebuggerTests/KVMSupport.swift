import KVM
import Testing

let requiresKVM = ConditionTrait.enabled(
  if: Hypervisor.isAvailable,
  "SKIPPED: /dev/kvm is not available here, so this KVM stepping test DID NOT RUN")
