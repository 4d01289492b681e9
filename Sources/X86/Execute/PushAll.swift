/// PUSHA/PUSHAD and POPA/POPAD (SDM Vol. 2, PUSHA, POPA): valid outside 64-bit mode only.
extension X86Core {
  /// Pushes AX CX DX BX, the SP from before the instruction, BP SI DI (or their 32-bit forms).
  /// The stack pointer moves only once every store succeeded, so a fault leaves it unchanged.
  mutating func pusha(_ d: DecodedInstruction) throws(X86Exception) {
    let size = d.operandSize
    let width = stackAddressSize
    let mask = sizeMask(width)
    var stackPointer = state.gpr[4] & mask
    for index in 0..<8 {
      stackPointer = (stackPointer &- UInt64(size)) & mask
      try write(SegmentName.ss.rawValue, stackPointer, size: size, state.gpr[index] & sizeMask(size))
    }
    setStackPointer(stackPointer, width)
  }

  /// Pops DI SI BP, skips the saved SP, then BX DX CX AX. Every load happens before any
  /// register changes, so a fault leaves them all as they were.
  mutating func popa(_ d: DecodedInstruction) throws(X86Exception) {
    let size = d.operandSize
    let width = stackAddressSize
    let mask = sizeMask(width)
    var stackPointer = state.gpr[4] & mask
    var values: InlineArray<8, UInt64> = .init(repeating: 0)
    for index in (0..<8).reversed() {
      if index != 4 { values[index] = try read(SegmentName.ss.rawValue, stackPointer, size: size) }
      stackPointer = (stackPointer &+ UInt64(size)) & mask
    }
    for index in 0..<8 where index != 4 { setRegister(UInt8(index), size: size, d, values[index]) }
    setStackPointer(stackPointer, width)
  }
}
