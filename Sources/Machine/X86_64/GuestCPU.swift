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

  public var codeSize: CodeSize { Self.codeSize(of: special) }

  /// Real mode, or the code segment's L and D bits in protected and long mode.
  public static func codeSize(of special: SpecialRegisters) -> CodeSize {
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
    // An instruction may end before an unmapped page: then only the bytes up to it exist,
    // and the decoder reports an instruction it cannot finish as such.
    if let bytes = try? walker.read(linear: pc, count: 15) { return bytes }
    return (try? walker.read(linear: pc, count: min(15, firstPage))) ?? []
  }

  public func decode(_ memory: GuestRAM) -> DecodedInstruction {
    InstructionDecoder.decode(instructionBytes(memory), size: codeSize)
  }
}
