import KVM
import Machine

/// Moving the stepped vCPU of a KVM machine between KVM and the interpreter at an instruction
/// boundary (`Machine.moveToInterpreter`, `moveToKVM`): everything after the switch (steps,
/// runs, traces) takes the other engine's paths, from the same state.
extension Stepper {
  /// The engine running this stepper's vCPU now.
  public var engine: EngineKind { interpreter == nil ? .kvm : .interpreter }

  /// Moves the vCPU to `target` (nothing when it is there already). The guest's own TF and
  /// the INT3 bytes the KVM paths plant go back to the guest first; the host's software
  /// breakpoints become addresses the interpreter compares with the PC, and bytes again on the
  /// way back; memory watches (the interpreter's) are dropped on the way back. Throws,
  /// changing nothing, when the machine cannot switch (`Machine.engineSwitchRefusal(allVCPUsTogether:)`).
  public func switchEngine(to target: EngineKind) throws {
    guard target != engine else { return }
    // A vCPU of a machine whose in-kernel chips move only with every vCPU moves here too: the
    // caller moves the others (`IntrospectionSession.switchEngine`), and a vCPU left on KVM
    // meanwhile cannot run (`Machine.kernelChipsAway`).
    if let refusal = machine.engineSwitchRefusal(allVCPUsTogether: true) {
      throw DebuggerError("cannot switch engines: \(refusal)")
    }
    let index = vcpu.id
    if target == .interpreter {
      kvm.bindToCurrentThread()
      try releaseForOtherEngine()
      let twin: InterpreterVCPU
      do {
        twin = try machine.moveToInterpreter(index)
      } catch {
        try reclaimFromOtherEngine()  // refused: the vCPU stays on KVM, stepped as before
        throw error
      }
      // KVM's memory watches (the twin had them as KVM's assist) mean nothing to the
      // interpreter engine: whoever set them sets them again.
      kvmMemoryWatches = []
      kvmWatchPieces = []
      writeStopPages = []
      twin.setMemoryWatches([])
      try breakpoints.setPlantsBytes(false, memory: machine.memory)
      interpreter = twin
      vcpu = twin
      specialIsStale = true
    } else {
      // The twin's memory watches mean nothing to KVM: whoever set them sets them again.
      interpreter?.setMemoryWatches([])
      try machine.moveToKVM(index)
      interpreter = nil
      vcpu = kvm
      kvm.bindToCurrentThread()
      try breakpoints.setPlantsBytes(true, memory: machine.memory)
      try reclaimFromOtherEngine()
    }
    knownPC = nil
    halted = false
    waitingForInterrupt = false
  }
}
