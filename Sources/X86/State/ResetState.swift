extension X86State {
  /// The state after power-up or RESET (SDM Vol. 3, 9.1.1, table 9-1): real mode, CS
  /// selector F000h with base FFFF0000h, IP FFF0h (the reset vector 16 bytes below 4 GiB),
  /// data segments at 0 with 64 KiB limits, EDX holding the processor signature, and the rest
  /// as `X86State()` already has it (CR0 60000010h, EFLAGS 2, DR6/DR7, x87/SSE defaults). An
  /// application processor keeps this state until its start-up IPI.
  public static func powerOn() -> X86State {
    var state = X86State()
    let data = SegmentRegister(selector: 0, base: 0, limit: 0xffff, type: 3)
    for segment in SegmentName.allCases { state[segment] = data }
    state[.cs] = SegmentRegister(selector: 0xf000, base: 0xffff_0000, limit: 0xffff, type: 0xb)
    state.rip = 0xfff0
    state[.rdx] = UInt64(CPUIDModel.query(leaf: 1, subleaf: 0).eax)  // the signature CPUID.1:EAX reports
    state.gdtr = DescriptorTableRegister(base: 0, limit: 0xffff)
    state.idtr = DescriptorTableRegister(base: 0, limit: 0xffff)
    return state
  }
}
