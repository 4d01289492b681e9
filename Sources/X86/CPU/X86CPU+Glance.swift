/// Single values of the state, read in place: `state` hands out the whole `X86State` as a
/// copy, which a debugger looking at one field after every instruction cannot afford.
extension X86CPU {
  /// CS.base + RIP: the linear address of the next instruction, as a stepper reports it.
  public var linearPC: UInt64 { core.state.segments[Int(SegmentName.cs.rawValue)].base &+ core.state.rip }

  /// The CPU is in HLT (or shutdown), waiting for an interrupt.
  public var isHalted: Bool { core.state.halted }

  /// RFLAGS.IF.
  public var interruptFlag: Bool { core.state.flagBits & RFlagsBit.interruptEnable != 0 }

  /// CR0, CR3, CR4 and EFER: what a page walk of the CPU's address space needs.
  public var pagingRegisters: (cr0: UInt64, cr3: UInt64, cr4: UInt64, efer: UInt64) {
    (core.state.cr0, core.state.cr3, core.state.cr4, core.state.efer)
  }
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
    return stepped(result)
  }

  /// What `stepForStepper` says of the instruction that just ended with `result`.
  @inline(__always)
  func stepped(_ result: StepResult) -> X86CPU.Stepped {
    X86CPU.Stepped(
      result: result, linearPC: state.segments[Int(SegmentName.cs.rawValue)].base &+ state.rip,
      inStackSegmentShadow: state.interruptShadow && state.stackSegmentShadow, watchHit: !debug.hits.isEmpty)
  }
}

extension X86CPU {
  /// `stepForStepper` again and again in one access to the CPU, for a tracer's run of plain
  /// steps: each instruction's `Stepped` goes to `next`, which says whether to step on; at
  /// most `limit` instructions. Returns how many were stepped (the last one's `Stepped` was
  /// the last given to `next`). `next` must leave this CPU alone: the access is still open
  /// while it runs (touching the CPU there traps, by the exclusivity check).
  public func stepForStepper(repeatIterations: Bool, limit: Int, while next: (Stepped) -> Bool) -> Int {
    core.stepForStepper(repeatIterations: repeatIterations, limit: limit, while: next)
  }
}

extension X86Core {
  mutating func stepForStepper(repeatIterations: Bool, limit: Int, while next: (X86CPU.Stepped) -> Bool) -> Int {
    stepsRepeatIterations = repeatIterations
    defer { stepsRepeatIterations = false }
    var count = 0
    while count < limit {
      let result = step()
      count += 1
      if !next(stepped(result)) { break }
    }
    return count
  }
}
