import Testing

@testable import X86

/// The system and legacy instructions this work added: bytes assembled by the toolchain's clang
/// from the Intel-syntax text beside them (`.code32`, `.code16`, `.code64`), so the length and
/// the operation are checked against the assembler, not against the decoder itself.
struct SystemDecodeTests {
  static let forms32: [(String, [UInt8], Operation)] = [
    ("daa", [0x27], .daa), ("das", [0x2f], .das), ("aaa", [0x37], .aaa), ("aas", [0x3f], .aas),
    ("aam", [0xd4, 0x0a], .aam), ("aam 16", [0xd4, 0x10], .aam), ("aad", [0xd5, 0x0a], .aad),
    ("pushad", [0x60], .pusha), ("popad", [0x61], .popa), ("pushaw", [0x66, 0x60], .pusha),
    ("mov eax, cr0", [0x0f, 0x20, 0xc0], .movFromCR), ("mov cr3, ecx", [0x0f, 0x22, 0xd9], .movToCR),
    ("mov cr4, edi", [0x0f, 0x22, 0xe7], .movToCR),
    ("invlpg [ebx+0x1000]", [0x0f, 0x01, 0xbb, 0x00, 0x10, 0x00, 0x00], .invlpg),
    ("invlpg [0x12345678]", [0x0f, 0x01, 0x3d, 0x78, 0x56, 0x34, 0x12], .invlpg),
    ("lmsw word ptr [eax]", [0x0f, 0x01, 0x30], .lmsw), ("smsw word ptr [ebx]", [0x0f, 0x01, 0x23], .smsw),
    ("smsw eax", [0x0f, 0x01, 0xe0], .smsw), ("clts", [0x0f, 0x06], .clts), ("invd", [0x0f, 0x08], .invd),
    ("wbinvd", [0x0f, 0x09], .invd), ("rdmsr", [0x0f, 0x32], .rdmsr), ("wrmsr", [0x0f, 0x30], .wrmsr),
    ("rdtscp", [0x0f, 0x01, 0xf9], .rdtscp), ("stac", [0x0f, 0x01, 0xcb], .stac),
    ("clac", [0x0f, 0x01, 0xca], .clac), ("rdpid eax", [0xf3, 0x0f, 0xc7, 0xf8], .rdpid),
  ]

  @Test("32-bit system forms", arguments: forms32)
  func decode32(text: String, bytes: [UInt8], operation: Operation) {
    let decoded = decodeInstruction(InstructionBytes(bytes + [0x90]), mode: .bits32)
    #expect(Int(decoded.length) == bytes.count && decoded.operation == operation, "\(text)")
  }

  @Test func sixteenAndSixtyFourBitForms() {
    let invlpg = decodeInstruction(InstructionBytes([0x0f, 0x01, 0x78, 0x12]), mode: .bits16)  // invlpg [bx+si+0x12]
    #expect(invlpg.operation == .invlpg && invlpg.length == 4 && invlpg.displacement == 0x12)
    let popa = decodeInstruction(InstructionBytes([0x61]), mode: .bits16)
    #expect(popa.operation == .popa && popa.operandSize == 2)
    // mov cr8, rax; mov r9, cr3; mov cr0, r10; smsw rax
    let cr8 = decodeInstruction(InstructionBytes([0x44, 0x0f, 0x22, 0xc0]), mode: .bits64)
    #expect(cr8.operation == .movToCR && cr8.reg == 8 && cr8.rm == 0 && cr8.operandSize == 8 && cr8.length == 4)
    let cr3 = decodeInstruction(InstructionBytes([0x41, 0x0f, 0x20, 0xd9]), mode: .bits64)
    #expect(cr3.operation == .movFromCR && cr3.reg == 3 && cr3.rm == 9)
    let cr0 = decodeInstruction(InstructionBytes([0x41, 0x0f, 0x22, 0xc2]), mode: .bits64)
    #expect(cr0.operation == .movToCR && cr0.reg == 0 && cr0.rm == 10)
    let smsw = decodeInstruction(InstructionBytes([0x48, 0x0f, 0x01, 0xe0]), mode: .bits64)
    #expect(smsw.operation == .smsw && smsw.operandSize == 8)
  }
}
