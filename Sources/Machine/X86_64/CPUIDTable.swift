import KVM

/// The CPUID a vCPU sees: what KVM supports, with this vCPU's APIC ID filled in.
enum CPUIDTable {
  static func forVCPU(_ id: Int, supported: [CPUIDEntry]) -> [CPUIDEntry] {
    supported.map { entry in
      var entry = entry
      switch entry.function {
      case 1:
        // EBX[31:24]: initial APIC ID.
        entry.ebx = (entry.ebx & 0x00ff_ffff) | UInt32(id) << 24
      case 0xb, 0x1f:
        // EDX: x2APIC ID of the current logical processor.
        entry.edx = UInt32(id)
      default:
        break
      }
      return entry
    }
  }
}
