import GuestMemory
import KVM

/// A view of one vCPU's architectural state that the run loop and the debugger share:
/// code size, linear addresses, instruction fetch through the guest's page tables.
public struct GuestCPU {
  public var registers: Registers
  public var special: SpecialRegisters

  public init(registers: Registers, special: SpecialRegisters) {
    self.registers = registers
    self.special = special
  }

  public var codeSize: CodeSize {
    if special.cr0 & 1 == 0 { return .bits16 }
    if special.cs.longMode && special.efer & (1 << 10) != 0 { return .bits64 }
    return special.cs.defaultSize32 ? .bits32 : .bits16
  }

  /// CS base + RIP: where the next instruction is fetched from.
  public var linearPC: UInt64 { special.cs.base &+ registers.rip }

  public func walker(_ memory: GuestRAM) -> PageWalker {
    PageWalker(
      memory: memory, mode: PagingMode(cr0: special.cr0, cr3: special.cr3, cr4: special.cr4, efer: special.efer))
  }

  /// Up to 15 instruction bytes at the PC (fewer if the rest is unmapped).
  public func instructionBytes(_ memory: GuestRAM) -> [UInt8] {
    let walker = walker(memory)
    let pc = linearPC
    let firstPage = Int(0x1000 - (pc & 0xfff))
    if let bytes = try? walker.read(linear: pc, count: 15) { return bytes }
    return (try? walker.read(linear: pc, count: min(15, firstPage))) ?? []
  }

  public func decode(_ memory: GuestRAM) -> DecodedInstruction {
    InstructionDecoder.decode(instructionBytes(memory), size: codeSize)
  }
}

extension Machine {
  /// When KVM cannot deliver a software interrupt (it reports an emulation failure at
  /// INT n / INT3 / INTO / INT1), deliver it here instead. Returns the frame, or nil if the
  /// instruction at RIP is not one; throws when the delivery itself is impossible.
  func deliverSoftwareInterrupt(on vcpu: VCPU) throws -> InterruptDelivery.Frame? {
    var cpu = GuestCPU(registers: try vcpu.registers(), special: try vcpu.specialRegisters())
    let decoded = cpu.decode(memory)
    guard case .softwareInterrupt(let vector, let opcode) = decoded.kind else { return nil }
    let next = cpu.registers.rip &+ UInt64(decoded.length)
    if opcode == .into && cpu.registers.rflags & (1 << 11) == 0 {
      cpu.registers.rip = next  // INTO without overflow does nothing
      try vcpu.setRegisters(cpu.registers)
      return InterruptDelivery.Frame(address: 0, flagsAddress: 0, handler: cpu.special.cs.base + next)
    }
    let frame = try InterruptDelivery.deliver(
      vector: vector, returnAddress: next, flags: cpu.registers.rflags, software: opcode != .int1,
      registers: &cpu.registers, special: &cpu.special, memory: memory)
    try vcpu.setSpecialRegisters(cpu.special)
    try vcpu.setRegisters(cpu.registers)
    return frame
  }
}
