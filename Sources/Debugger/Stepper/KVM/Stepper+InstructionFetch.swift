import GuestMemory
import KVM
import Machine

/// The instruction about to run, decoded so that the stepper knows which of KVM's
/// single-step losses it must make good (HLT, INT n, IRET, POPF, MOV SS, REP, I/O...).
extension Stepper {
  private var codeSize: CodeSize { GuestCPU.codeSize(of: special) }

  /// Decodes the instruction at `pc` through the guest's page tables (one translation per page).
  func decode(at pc: UInt64) -> DecodedInstruction {
    let page = pc & ~0xfff
    let physical: UInt64
    if let cached = codePage, cached.linear == page, cached.generation == specialGeneration {
      physical = cached.physical
    } else {
      // An unmapped PC decodes as a plain instruction: the step then shows the guest's #PF.
      guard let translated = try? walker().translate(page) else { return DecodedInstruction(kind: .other, length: 0) }
      physical = translated.value
      codePage = (page, physical, specialGeneration)
    }
    let offset = pc & 0xfff
    let size = codeSize
    if offset <= 0x1000 - 15, (try? machine.memory.read(at: GuestAddress(physical + offset), into: &fetchBuffer)) != nil
    {
      return InstructionDecoder.decode(fetchBuffer, size: size)
    }
    // Near the end of a page (or of RAM) the instruction may continue on the next page; what
    // cannot be read is left out, as the CPU would fault on it too.
    var bytes = (try? machine.memory.read(at: GuestAddress(physical + offset), count: Int(0x1000 - offset))) ?? []
    bytes += (try? walker().read(linear: page + 0x1000, count: 15 - bytes.count)) ?? []
    return InstructionDecoder.decode(bytes, size: size)
  }
}
