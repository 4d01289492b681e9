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
  /// What a stepper needs of one instruction, read in the same access to the CPU as the step
  /// (each access to the core costs an exclusivity check, and a traced step is a few of them).
  public struct Stepped {
    public let result: StepResult
    /// `linearPC` after the instruction.
    public let linearPC: UInt64
    /// `inStackSegmentShadow` after it.
    public let inStackSegmentShadow: Bool
    /// `watchHits` is not empty.
    public let watchHit: Bool
  }

  /// `step()` with `stepsRepeatIterations` set to `repeatIterations` for it (and cleared
  /// after, as a stepper leaves it), and what the CPU then says of itself.
  public func stepForStepper(repeatIterations: Bool) -> Stepped {
    core.stepForStepper(repeatIterations: repeatIterations)
  }
}

extension X86Core {
  mutating func stepForStepper(repeatIterations: Bool) -> X86CPU.Stepped {
    stepsRepeatIterations = repeatIterations
    let result = step()
    stepsRepeatIterations = false
    return X86CPU.Stepped(
      result: result, linearPC: state.segments[Int(SegmentName.cs.rawValue)].base &+ state.rip,
      inStackSegmentShadow: state.interruptShadow && state.stackSegmentShadow, watchHit: !debug.hits.isEmpty)
  }
}
