import CKVM

/// KVM capabilities that Hyperstep asks about (`KVM_CHECK_EXTENSION`).
public enum Capability: Sendable, CaseIterable, CustomStringConvertible {
  case userMemory
  case readOnlyMemory
  case setTSSAddress
  case irqchip
  case pit2
  case maxVCPUs
  case recommendedVCPUs
  case guestDebug
  case setGuestDebug2
  case immediateExit
  case vcpuEvents
  case debugRegisters
  case msrFilter
  case userSpaceMSR
  case syncRegisters
  case xsave

  var number: UInt {
    switch self {
    case .userMemory: UInt(KVM_CAP_USER_MEMORY)
    case .readOnlyMemory: UInt(KVM_CAP_READONLY_MEM)
    case .setTSSAddress: UInt(KVM_CAP_SET_TSS_ADDR)
    case .irqchip: UInt(KVM_CAP_IRQCHIP)
    case .pit2: UInt(KVM_CAP_PIT2)
    case .maxVCPUs: UInt(KVM_CAP_MAX_VCPUS)
    case .recommendedVCPUs: UInt(KVM_CAP_NR_VCPUS)
    case .guestDebug: UInt(KVM_CAP_SET_GUEST_DEBUG)
    case .setGuestDebug2: UInt(KVM_CAP_SET_GUEST_DEBUG2)
    case .immediateExit: UInt(KVM_CAP_IMMEDIATE_EXIT)
    case .vcpuEvents: UInt(KVM_CAP_VCPU_EVENTS)
    case .debugRegisters: UInt(KVM_CAP_DEBUGREGS)
    case .msrFilter: UInt(KVM_CAP_X86_MSR_FILTER)
    case .userSpaceMSR: UInt(KVM_CAP_X86_USER_SPACE_MSR)
    case .syncRegisters: UInt(KVM_CAP_SYNC_REGS)
    case .xsave: UInt(KVM_CAP_XSAVE)
    }
  }

  public var description: String {
    switch self {
    case .userMemory: "KVM_CAP_USER_MEMORY"
    case .readOnlyMemory: "KVM_CAP_READONLY_MEM"
    case .setTSSAddress: "KVM_CAP_SET_TSS_ADDR"
    case .irqchip: "KVM_CAP_IRQCHIP"
    case .pit2: "KVM_CAP_PIT2"
    case .maxVCPUs: "KVM_CAP_MAX_VCPUS"
    case .recommendedVCPUs: "KVM_CAP_NR_VCPUS"
    case .guestDebug: "KVM_CAP_SET_GUEST_DEBUG"
    case .setGuestDebug2: "KVM_CAP_SET_GUEST_DEBUG2"
    case .immediateExit: "KVM_CAP_IMMEDIATE_EXIT"
    case .vcpuEvents: "KVM_CAP_VCPU_EVENTS"
    case .debugRegisters: "KVM_CAP_DEBUGREGS"
    case .msrFilter: "KVM_CAP_X86_MSR_FILTER"
    case .userSpaceMSR: "KVM_CAP_X86_USER_SPACE_MSR"
    case .syncRegisters: "KVM_CAP_SYNC_REGS"
    case .xsave: "KVM_CAP_XSAVE"
    }
  }
}
