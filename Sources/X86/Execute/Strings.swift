/// MOVS CMPS SCAS LODS STOS with REP / REPE / REPNE (SDM Vol. 2, "REP/REPE/REPZ/REPNE/REPNZ").
///
/// The source is seg:rSI (DS unless overridden), the destination ES:rDI (never overridden);
/// rSI, rDI and rCX are as wide as the address size; DF picks the direction. A repeated
/// instruction runs all its iterations in one step; a fault part-way leaves the registers
/// as they stand after the iterations that completed, and RIP at the instruction, so it
/// resumes where it stopped, as on hardware. A single-step trap, data breakpoint or watch hit
/// stops it after the current iteration in the same way (`debugStopsRepeat`, DebugExceptions.swift).
extension X86Core {
  @inline(__always)
  private mutating func stringStep(_ d: DecodedInstruction) -> UInt64 {
    directionFlag ? 0 &- UInt64(d.operandSize) : UInt64(d.operandSize)
  }

  @inline(__always)
  private mutating func advance(_ register: Int, by delta: UInt64, _ d: DecodedInstruction) {
    setRegister(UInt8(register), size: d.addressSize, d, (state.gpr[register] &+ delta) & sizeMask(d.addressSize))
  }

  private mutating func repeats(_ d: DecodedInstruction) -> Bool {
    d.flags & (DecodedInstruction.Flag.rep | DecodedInstruction.Flag.repne) != 0
  }

  private mutating func count(_ d: DecodedInstruction) -> UInt64 { state.gpr[1] & sizeMask(d.addressSize) }

  private mutating func decrementCount(_ d: DecodedInstruction) {
    setRegister(1, size: d.addressSize, d, (state.gpr[1] &- 1) & sizeMask(d.addressSize))
  }

  mutating func movs(_ d: DecodedInstruction) throws(X86Exception) {
    let delta = stringStep(d)
    let repeated = repeats(d)
    while !repeated || count(d) != 0 {
      let value = try read(d.segment, state.gpr[6] & sizeMask(d.addressSize), size: d.operandSize)
      try write(SegmentName.es.rawValue, state.gpr[7] & sizeMask(d.addressSize), size: d.operandSize, value)
      advance(6, by: delta, d)
      advance(7, by: delta, d)
      if !repeated { return }
      decrementCount(d)
      if count(d) != 0 && debugStopsRepeat(d) { return }
    }
  }

  mutating func stos(_ d: DecodedInstruction) throws(X86Exception) {
    let delta = stringStep(d)
    let repeated = repeats(d)
    let value = register(0, size: d.operandSize, d)
    while !repeated || count(d) != 0 {
      try write(SegmentName.es.rawValue, state.gpr[7] & sizeMask(d.addressSize), size: d.operandSize, value)
      advance(7, by: delta, d)
      if !repeated { return }
      decrementCount(d)
      if count(d) != 0 && debugStopsRepeat(d) { return }
    }
  }

  mutating func lods(_ d: DecodedInstruction) throws(X86Exception) {
    let delta = stringStep(d)
    let repeated = repeats(d)
    while !repeated || count(d) != 0 {
      let value = try read(d.segment, state.gpr[6] & sizeMask(d.addressSize), size: d.operandSize)
      setRegister(0, size: d.operandSize, d, value)
      advance(6, by: delta, d)
      if !repeated { return }
      decrementCount(d)
      if count(d) != 0 && debugStopsRepeat(d) { return }
    }
  }

  /// CMPS: flags as CMP [rSI], [rDI]. REPE stops when ZF=0, REPNE when ZF=1.
  mutating func cmps(_ d: DecodedInstruction) throws(X86Exception) {
    let delta = stringStep(d)
    let repeated = repeats(d)
    let untilEqual = d.has(DecodedInstruction.Flag.repne)
    while !repeated || count(d) != 0 {
      let source = try read(d.segment, state.gpr[6] & sizeMask(d.addressSize), size: d.operandSize)
      let destination = try read(
        SegmentName.es.rawValue, state.gpr[7] & sizeMask(d.addressSize), size: d.operandSize)
      _ = alu(7, source, destination, size: d.operandSize)
      advance(6, by: delta, d)
      advance(7, by: delta, d)
      if !repeated { return }
      decrementCount(d)
      if zeroFlag == untilEqual { return }
      if count(d) != 0 && debugStopsRepeat(d) { return }
    }
  }

  /// SCAS: flags as CMP rAX, [rDI].
  mutating func scas(_ d: DecodedInstruction) throws(X86Exception) {
    let delta = stringStep(d)
    let repeated = repeats(d)
    let untilEqual = d.has(DecodedInstruction.Flag.repne)
    let accumulator = register(0, size: d.operandSize, d)
    while !repeated || count(d) != 0 {
      let value = try read(SegmentName.es.rawValue, state.gpr[7] & sizeMask(d.addressSize), size: d.operandSize)
      _ = alu(7, accumulator, value, size: d.operandSize)
      advance(7, by: delta, d)
      if !repeated { return }
      decrementCount(d)
      if zeroFlag == untilEqual { return }
      if count(d) != 0 && debugStopsRepeat(d) { return }
    }
  }

  /// INS: a value from port DX to ES:rDI. The I/O permission check comes first (CPL > IOPL
  /// is #GP(0) before anything is read); the port is read before the store, so a fault on
  /// the destination has read the port once, as the instruction's read precedes its write.
  mutating func ins(_ d: DecodedInstruction) throws(X86Exception) {
    try checkIOPermission()
    let delta = stringStep(d)
    let repeated = repeats(d)
    let port = UInt16(truncatingIfNeeded: state.gpr[2])
    while !repeated || count(d) != 0 {
      checkIOBreakpoints(port: port, size: Int(d.operandSize))
      bus.willAccess(retiredInstructions: retiredInstructions, state: state)
      let value = bus.portRead(port, size: Int(d.operandSize))
      try write(SegmentName.es.rawValue, state.gpr[7] & sizeMask(d.addressSize), size: d.operandSize, UInt64(value))
      advance(7, by: delta, d)
      if !repeated { return }
      decrementCount(d)
      if count(d) != 0 && debugStopsRepeat(d) { return }
    }
  }

  /// OUTS: a value from seg:rSI (DS unless overridden) to port DX, after the same check.
  mutating func outs(_ d: DecodedInstruction) throws(X86Exception) {
    try checkIOPermission()
    let delta = stringStep(d)
    let repeated = repeats(d)
    let port = UInt16(truncatingIfNeeded: state.gpr[2])
    while !repeated || count(d) != 0 {
      let value = try read(d.segment, state.gpr[6] & sizeMask(d.addressSize), size: d.operandSize)
      checkIOBreakpoints(port: port, size: Int(d.operandSize))
      bus.willAccess(retiredInstructions: retiredInstructions, state: state)
      if bus.portWrite(port, size: Int(d.operandSize), value: UInt32(truncatingIfNeeded: value)) {
        ioStopRequested = true
      }
      advance(6, by: delta, d)
      if !repeated { return }
      decrementCount(d)
      if count(d) != 0 && debugStopsRepeat(d) { return }
    }
  }
}
