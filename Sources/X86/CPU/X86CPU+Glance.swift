/// Single values of the state, read in place: `state` hands out the whole `X86State` as a
/// copy, which a debugger looking at one field after every instruction cannot afford.
extension X86CPU {
  /// CS.base + RIP: the linear address of the next instruction, as a stepper reports it.
  public var linearPC: UInt64 { core.state.segments[Int(SegmentName.cs.rawValue)].base &+ core.state.rip }

  /// The CPU is in HLT (or shutdown), waiting for an interrupt.
  public var isHalted: Bool { core.state.halted }

  /// RFLAGS.IF.
  public var interruptFlag: Bool { core.state.flagBits & RFlagsBit.interruptEnable != 0 }
}

extension X86CPU {
  /// `step()` and then `linearPC`, in one access to the CPU: a stepper wants both after every
  /// instruction, and each access to the core costs an exclusivity check.
  public func stepLocated() -> (result: StepResult, linearPC: UInt64) { core.stepLocated() }
}

extension X86Core {
  mutating func stepLocated() -> (result: StepResult, linearPC: UInt64) {
    let result = step()
    return (result, state.segments[Int(SegmentName.cs.rawValue)].base &+ state.rip)
  }
}
