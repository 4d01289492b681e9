import KVM

/// The stepper's modes as KVM guest-debug settings (KVM_SET_GUEST_DEBUG): single-stepping,
/// running with hardware breakpoints, or idle.
extension Stepper {
  /// Switches to stepping before a step: from a full-speed run or idle, the guest's own TF is
  /// taken from RFLAGS first; while stepping, the handler breakpoints are brought up to date.
  func enterStepping() throws {
    if mode != .stepping {
      // Outside stepping KVM leaves TF alone, so RFLAGS holds the guest's own: after a
      // full-speed run (the guest may have set or cleared it meanwhile) it is the copy to keep.
      guestTrapFlag = try kvm.registers().rflags & RFlags.trap != 0
      try applyDebugState(.stepping)
    } else {
      handlers.refresh(for: special)
    }
  }

  /// Tells KVM what to intercept in `newMode`. While stepping, `admitInterrupts` lifts the
  /// `block` policy (for a wait after HLT), and `handlerBreakpoint` sets DR0 on a handler
  /// (real mode, where no INT3 can be planted: see `faultHandlerBreakpoint`).
  func applyDebugState(_ newMode: Mode, admitInterrupts: Bool = false, handlerBreakpoint: UInt64? = nil) throws {
    var debug = GuestDebug(options: [.softwareBreakpoints])
    switch newMode {
    case .idle:
      handlers.remove()
      // Stopped after running free, KVM's setting can stay until the next step or run
      // replaces it: it intercepts nothing while the vCPU stands still, and it hides nothing
      // of the guest's state. After stepping it must go, as KVM hides the guest's own TF
      // while it single-steps. (Saves an ioctl per breakpoint event.)
      if mode != .stepping {
        mode = newMode
        return
      }
      debug = GuestDebug()
    case .stepping:
      debug.options.insert(.singleStep)
      if policy == .block && !admitInterrupts { debug.options.insert(.blockInterrupts) }
      if let handlerBreakpoint {
        debug.options.insert(.hardwareBreakpoints)
        debug.debugRegisters[0] = handlerBreakpoint
        debug.debugRegisters[7] = 1  // L0, execution
      }
      handlers.refresh(for: special)
    case .running(let breakpoints, let watchHandlers):
      // Full speed: the handler breakpoints would stop every exception, so they come out
      // unless exceptions and interrupts are being watched.
      if watchHandlers { handlers.refresh(for: special) } else { handlers.remove() }
      debugRegisterSharing = DebugRegisterSharing()
      if !breakpoints.isEmpty {
        debug.options.insert(.hardwareBreakpoints)
        let guest = try kvm.debugRegisters()
        debug.debugRegisters = try debugRegisterSharing.share(guest: guest, hostBreakpoints: breakpoints)
      }
    }
    try kvm.setGuestDebug(debug)
    // Switching KVM's single-step off clears TF; put the guest's own back.
    if newMode != .stepping && guestTrapFlag {
      var registers = try kvm.registers()
      registers.rflags |= RFlags.trap
      try kvm.setRegisters(registers)
    }
    mode = newMode
  }
}
