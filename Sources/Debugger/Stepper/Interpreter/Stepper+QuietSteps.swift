import Machine
import X86

/// `stepPlain` on the interpreter while the platform is quiet: plain instructions stepped in
/// one access to the CPU, with the bookkeeping of a step done once for all of them.
extension Stepper {
  /// How a run of quiet steps ended.
  enum QuietStepsEnd {
    /// Every step was taken, to the limit, the end of the quiet time or a device access: go on.
    case steppedOn
    /// `take` answered `.last`.
    case lastTaken
    /// `take` declined this plain step.
    case declined(Stop)
    /// The stop after an instruction that did more than retire plainly (it may yet be a plain
    /// step: the instruction after a MOV SS, stepped with it).
    case stopped(Stop)
  }

  /// Steps plain instructions (see `stepPlain`) while `take` wants them, the platform stays
  /// quiet and no more than `limit`. The platform must be quiet and the CPU not halted: then
  /// a step is `stepForStepper` and the bookkeeping of `interpreterStop(afterStepping:)`,
  /// which for a plain retirement is a count (`countRetired`) and the stop's PC, kept here
  /// for the last one only.
  func interpreterQuietSteps(_ vcpu: InterpreterVCPU, limit: Int, _ take: (UInt64) -> PlainStepAnswer) throws
    -> (taken: Int, end: QuietStepsEnd)
  {
    guard let quiet = quietPlatform else { return (0, .steppedOn) }
    // `countRetired` asks afresh after `steps` instructions (at least one).
    let budget = Int(clamping: max(quiet.steps, 1))
    var taken = 0
    var lastPC: UInt64 = 0
    var answer = PlainStepAnswer.next
    var unusual: X86CPU.Stepped?
    let stepped = vcpu.cpu.stepForStepper(repeatIterations: true, limit: min(limit, budget)) { stepped in
      guard case .retired = stepped.result, !stepped.inStackSegmentShadow, !stepped.watchHit else {
        unusual = stepped
        return false
      }
      lastPC = stepped.linearPC
      answer = take(stepped.linearPC)
      guard case .next = answer else { return false }
      taken += 1
      // A device access: the next step asks the platform first (`platformIsQuiet`).
      return vcpu.deviceAccesses == quiet.accesses
    }
    let plain = unusual == nil ? stepped : stepped - 1
    if plain > 0 {
      quietPlatform = quiet.steps > UInt64(plain) ? (quiet.steps - UInt64(plain), quiet.accesses) : nil
      _ = interpreterStepStop(vcpu, pc: lastPC)
    }
    if let unusual { return (taken, .stopped(try interpreterStop(afterStepping: unusual, vcpu))) }
    switch answer {
    case .next: return (taken, .steppedOn)
    case .last: return (taken + 1, .lastTaken)
    case .decline: return (taken, .declined(Stop(reason: .step, pc: lastPC, vcpu: vcpu.id)))
    }
  }
}
