/// FNSTENV/FLDENV and FNSAVE/FRSTOR in the 32-bit protected-mode layout (SDM Vol. 1, 8.1.10,
/// figure 8-9): FCW, FSW, the full tag word, FIP, FOP:FCS, FDP, FDS as seven doublewords
/// (selectors written 0, since they are not tracked; the reserved upper halves of the 16-bit
/// fields written as 1s, as Intel processors do), then for FNSAVE ST0-ST7 as ten bytes
/// each. The 16-bit layouts (66 prefix) are not implemented: they use the 32-bit one.
extension X86Core {
  mutating func storeEnvironment(_ d: DecodedInstruction, offset: UInt64) throws(X86Exception) {
    try probeWrite(d, offset: offset, size: 28)
    let mask = sizeMask(d.addressSize)
    let fpu = state.fpu
    try write(d.segment, offset, size: 4, UInt64(fpu.fcw) | 0xffff_0000)
    try write(d.segment, (offset &+ 4) & mask, size: 4, UInt64(fpu.fsw) | 0xffff_0000)
    try write(d.segment, (offset &+ 8) & mask, size: 4, UInt64(fullTagWord()) | 0xffff_0000)
    try write(d.segment, (offset &+ 12) & mask, size: 4, fpu.lastInstructionPointer & 0xffff_ffff)
    try write(d.segment, (offset &+ 16) & mask, size: 4, UInt64(fpu.lastOpcode & 0x7ff) << 16)
    try write(d.segment, (offset &+ 20) & mask, size: 4, fpu.lastDataPointer & 0xffff_ffff)
    try write(d.segment, (offset &+ 24) & mask, size: 4, 0xffff_0000)
    // FNSTENV then masks every exception (SDM Vol. 2, FSTENV).
    state.fpu.fcw |= 0x3f
    updateErrorSummary()
  }

  mutating func loadEnvironment(_ d: DecodedInstruction, offset: UInt64) throws(X86Exception) {
    let mask = sizeMask(d.addressSize)
    let fcw = try read(d.segment, offset, size: 2)
    let fsw = try read(d.segment, (offset &+ 4) & mask, size: 2)
    let tags = try read(d.segment, (offset &+ 8) & mask, size: 2)
    let ip = try read(d.segment, (offset &+ 12) & mask, size: 4)
    let opcode = try read(d.segment, (offset &+ 18) & mask, size: 2)
    let dp = try read(d.segment, (offset &+ 20) & mask, size: 4)
    state.fpu.fcw = UInt16(truncatingIfNeeded: fcw) & 0x1f3f | 0x40
    state.fpu.fsw = UInt16(truncatingIfNeeded: fsw)
    var abridged: UInt8 = 0
    for physical in 0..<8 where (tags >> UInt64(physical * 2)) & 3 != 3 { abridged |= 1 << UInt8(physical) }
    state.fpu.ftw = abridged
    state.fpu.lastInstructionPointer = ip
    state.fpu.lastOpcode = UInt16(truncatingIfNeeded: opcode) & 0x7ff
    state.fpu.lastDataPointer = dp
  }

  mutating func saveState(_ d: DecodedInstruction, offset: UInt64) throws(X86Exception) {
    try probeWrite(d, offset: offset, size: 108)
    let mask = sizeMask(d.addressSize)
    for index in 0..<8 {
      let register = state.fpu.st[x87Physical(index)]
      let slot = (offset &+ 28 &+ UInt64(index * 10)) & mask
      try write(d.segment, slot, size: 8, register.significand)
      try write(d.segment, (slot &+ 8) & mask, size: 2, UInt64(register.signExponent))
    }
    try storeEnvironment(d, offset: offset)
    // FNSAVE then initialises the FPU as FNINIT does.
    state.fpu.fcw = 0x037f
    state.fpu.fsw = 0
    state.fpu.ftw = 0
    state.fpu.lastOpcode = 0
    state.fpu.lastInstructionPointer = 0
    state.fpu.lastDataPointer = 0
  }

  mutating func restoreState(_ d: DecodedInstruction, offset: UInt64) throws(X86Exception) {
    let mask = sizeMask(d.addressSize)
    var registers = InlineArray<8, X87Register>(repeating: X87Register())
    for index in 0..<8 {
      let slot = (offset &+ 28 &+ UInt64(index * 10)) & mask
      let significand = try read(d.segment, slot, size: 8)
      let signExponent = UInt16(truncatingIfNeeded: try read(d.segment, (slot &+ 8) & mask, size: 2))
      registers[index] = X87Register(significand: significand, signExponent: signExponent)
    }
    try loadEnvironment(d, offset: offset)
    for index in 0..<8 { state.fpu.st[x87Physical(index)] = registers[index] }
  }
}
