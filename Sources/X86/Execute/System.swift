/// CLI/STI, LAHF/SAHF, HLT, RDTSC, CPUID, IN/OUT.
extension X86Core {
  /// IOPL as a number.
  private var iopl: UInt8 { mutating get { UInt8((state.flagBits & RFlagsBit.ioPrivilegeLevel) >> 12) } }

  /// Protected mode: CPL ≤ IOPL or #GP(0) (the VME/PVI virtual-interrupt variants are not
  /// modelled). STI opens a one-instruction interrupt shadow when it sets IF.
  mutating func setInterruptFlag(_ enable: Bool) throws(X86Exception) {
    if state.cr0 & ControlBit.cr0PE != 0 && privilegeLevel > iopl { throw .generalProtection(0) }
    if enable && state.flagBits & RFlagsBit.interruptEnable == 0 {
      state.interruptShadow = true
      state.stackSegmentShadow = false
    }
    state.flagBits = enable ? state.flagBits | RFlagsBit.interruptEnable : state.flagBits & ~RFlagsBit.interruptEnable
  }

  /// LAHF: AH ← SF:ZF:0:AF:0:PF:1:CF.
  mutating func lahf() {
    let flags = state.rflags & 0xd5 | RFlagsBit.reserved1
    state.gpr[0] = state.gpr[0] & ~0xff00 | flags << 8
  }

  /// SAHF: SF ZF AF PF CF ← AH; OF unchanged.
  mutating func sahf() {
    state.materializeFlags()
    let ah = (state.gpr[0] >> 8) & 0xd5
    state.flagBits = state.flagBits & ~0xd5 | ah
  }

  mutating func hlt() throws(X86Exception) {
    if privilegeLevel != 0 { throw .generalProtection(0) }
    state.halted = true
  }

  /// RDTSC: #GP(0) when CR4.TSD is set outside ring 0. The TSC counts retired instructions.
  mutating func rdtsc() throws(X86Exception) {
    if state.cr4 & ControlBit.cr4TSD != 0 && privilegeLevel != 0 { throw .generalProtection(0) }
    state.gpr[0] = state.tsc & 0xffff_ffff
    state.gpr[2] = state.tsc >> 32
  }

  mutating func cpuid() {
    let leaf = CPUIDModel.query(
      leaf: UInt32(truncatingIfNeeded: state.gpr[0]),
      subleaf: UInt32(truncatingIfNeeded: state.gpr[1]), localAPIC: localAPICID)
    state.gpr[0] = UInt64(leaf.eax)
    state.gpr[3] = UInt64(leaf.ebx)
    state.gpr[1] = UInt64(leaf.ecx)
    state.gpr[2] = UInt64(leaf.edx)
  }

  /// Protected mode with CPL > IOPL: #GP(0) (the TSS I/O permission bitmap is not consulted yet).
  mutating func checkIOPermission() throws(X86Exception) {
    if state.cr0 & ControlBit.cr0PE != 0 && privilegeLevel > iopl { throw .generalProtection(0) }
  }

  private mutating func port(_ d: DecodedInstruction) -> UInt16 {
    UInt16(truncatingIfNeeded: d.has(DecodedInstruction.Flag.portInDX) ? state.gpr[2] : d.immediate)
  }

  mutating func portIn(_ d: DecodedInstruction) throws(X86Exception) {
    try checkIOPermission()
    checkIOBreakpoints(port: port(d), size: Int(d.operandSize))
    bus.willAccess(retiredInstructions: retiredInstructions, state: state)
    let value = bus.portRead(port(d), size: Int(d.operandSize))
    setRegister(0, size: d.operandSize, d, UInt64(value) & sizeMask(d.operandSize))
  }

  mutating func portOut(_ d: DecodedInstruction) throws(X86Exception) {
    try checkIOPermission()
    checkIOBreakpoints(port: port(d), size: Int(d.operandSize))
    let value = UInt32(truncatingIfNeeded: register(0, size: d.operandSize, d))
    bus.willAccess(retiredInstructions: retiredInstructions, state: state)
    if bus.portWrite(port(d), size: Int(d.operandSize), value: value) { ioStopRequested = true }
  }
}
