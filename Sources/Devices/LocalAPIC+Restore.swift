extension LocalAPIC {
  /// Takes the registers another model of this APIC had (an engine switch carries KVM's
  /// in-kernel APIC here), as `register(offset)` reads them from its register page, at this
  /// APIC's current time (`now`, which must be at least the timer's period, 2^39 ns at most,
  /// so that a count already under way started at a representable time). The timer goes on
  /// from the current count (0x390): the next expiry is that many divided bus clocks away.
  /// Read-only and computed registers (version, APR, PPR) are not taken.
  public func restore(register: (UInt32) -> UInt32) {
    id = UInt8(truncatingIfNeeded: register(Register.id) >> 24)
    taskPriority = register(Register.taskPriority) & 0xff
    logicalDestination = register(Register.logicalDestination) & 0xff00_0000
    destinationFormat = register(Register.destinationFormat) | 0x0fff_ffff
    spuriousVector = register(Register.spuriousVector) & 0x3ff
    for index in 0..<8 {
      let offset = UInt32(index) << 4
      inService.setRegister(index, register(Register.inService + offset))
      triggerMode.setRegister(index, register(Register.triggerMode + offset))
      interruptRequest.setRegister(index, register(Register.interruptRequest + offset))
    }
    errorStatus = register(Register.errorStatus)
    errorsSinceWrite = 0
    commandLow = register(Register.interruptCommandLow) & 0x000c_cfff
    commandHigh = register(Register.interruptCommandHigh) & 0xff00_0000
    // The LVT bits this model keeps are those a write sets (delivery status and remote IRR
    // are not modelled: this APIC delivers at once).
    lvtTimer = register(Register.lvtTimer) & 0x0007_00ff
    lvtThermal = register(Register.lvtThermal) & 0x0001_07ff
    lvtPerformance = register(Register.lvtPerformance) & 0x0001_07ff
    lvtLINT0 = register(Register.lvtLINT0) & 0x0001_a7ff
    lvtLINT1 = register(Register.lvtLINT1) & 0x0001_a7ff
    lvtError = register(Register.lvtError) & 0x0001_00ff
    timerInitialCount = register(Register.timerInitialCount)
    timerDivide = register(Register.timerDivide) & 0x0b
    timerExpiry = nil
    timerStart = now
    guard timerMode != 2, timerInitialCount != 0 else { return }
    let current = register(Register.timerCurrentCount)
    if current == 0 && timerMode == 0 {
      timerStart = now - min(now, timerPeriod)  // a one-shot count that has run out
      return
    }
    // A periodic count reads 0 at the instant it reloads: a whole period lies ahead.
    let remaining = current == 0 ? timerInitialCount : min(current, timerInitialCount)
    timerStart = now - min(now, UInt64(timerInitialCount - remaining) * timerDivisor)
    rescheduleTimer(restart: true)
  }
}

extension VectorSet {
  /// Sets register `index` (0-7) of the 8 × 32-bit view of ISR, TMR or IRR.
  mutating func setRegister(_ index: Int, _ value: UInt32) {
    let shift = UInt64(index & 1) * 32
    let word = self.word(index >> 1) & ~(0xffff_ffff << shift) | UInt64(value) << shift
    setWord(index >> 1, word)
  }
}
