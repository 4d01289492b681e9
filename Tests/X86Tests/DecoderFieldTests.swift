import Testing

@testable import X86

/// Operand fields for prefix, REX, ModRM and SIB forms (SDM Vol. 2, 2.1-2.2).
struct DecoderFieldTests {
  func decode(_ bytes: [UInt8], _ mode: CodeMode = .bits64) -> DecodedInstruction {
    decodeInstruction(InstructionBytes(bytes), mode: mode)
  }

  @Test func rexExtendsRegAndRmAndSizes() {
    // adc r8d, dword ptr [r9+r10*8+0x12345678]: REX.RXB = 0x47
    let d = decode([0x47, 0x13, 0x84, 0xd1, 0x78, 0x56, 0x34, 0x12])
    #expect(d.operation == .aluRegRm && d.sub == 2)
    #expect(d.reg == 8 && d.base == 9 && d.index == 10 && d.scale == 3)
    #expect(d.displacement == 0x1234_5678 && d.operandSize == 4 && d.addressSize == 8 && d.isMemory)
  }

  @Test func sibWithoutBaseAndIndexFourMeansNone() {
    // mov eax, [0x1000] encoded with SIB: 8b 04 25 00 10 00 00
    let d = decode([0x8b, 0x04, 0x25, 0x00, 0x10, 0x00, 0x00])
    #expect(d.base == DecodedInstruction.Register.none && d.index == DecodedInstruction.Register.none)
    #expect(d.displacement == 0x1000 && d.length == 7)
  }

  @Test func ripRelativeIn64BitModeAbsoluteIn32() {
    let bytes: [UInt8] = [0x8b, 0x05, 0x10, 0x00, 0x00, 0x00]
    #expect(decode(bytes).base == DecodedInstruction.Register.rip)
    #expect(decode(bytes, .bits32).base == DecodedInstruction.Register.none)
  }

  @Test func r13AndRbpBasesNeedADisplacement() {
    // xor r12, [r13] must be encoded with disp8 0 (mod=01): 4d 33 65 00
    let d = decode([0x4d, 0x33, 0x65, 0x00])
    #expect(d.base == 13 && d.displacement == 0 && d.length == 4)
  }

  @Test func operandSizePrefixAndRexW() {
    #expect(decode([0x66, 0x01, 0xd8]).operandSize == 2)
    #expect(decode([0x66, 0x48, 0x01, 0xd8]).operandSize == 8)  // REX.W beats 66
    #expect(decode([0x01, 0xd8], .bits16).operandSize == 2)
    #expect(decode([0x66, 0x01, 0xd8], .bits16).operandSize == 4)
  }

  @Test func rexBeforeALegacyPrefixIsIgnored() {
    // 48 66 01 d8: the REX is not directly before the opcode, so this is add ax, bx.
    let d = decode([0x48, 0x66, 0x01, 0xd8])
    #expect(d.operandSize == 2 && !d.has(DecodedInstruction.Flag.rex) && d.length == 4)
  }

  @Test func byteRegistersWithAndWithoutRex() {
    // 88 e0: mov al, ah (rm=0, reg=4 = AH); 40 88 e0: mov al, spl
    #expect(decode([0x88, 0xe0]).reg == 4 && !decode([0x88, 0xe0]).has(DecodedInstruction.Flag.rex))
    #expect(decode([0x40, 0x88, 0xe0]).has(DecodedInstruction.Flag.rex))
  }

  @Test func moffsTakesTheAddressSize() {
    let d = decode([0xa1, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11])
    #expect(d.operation == .movRegRm && d.displacement == 0x1122_3344_5566_7788 && d.length == 9)
    let d32 = decode([0x67, 0xa1, 0x44, 0x33, 0x22, 0x11])
    #expect(d32.displacement == 0x1122_3344 && d32.length == 6 && d32.addressSize == 4)
  }

  @Test func immediatesAreSignExtended() {
    #expect(decode([0x48, 0x83, 0xc0, 0x80]).immediate == 0xffff_ffff_ffff_ff80)  // add rax, -128
    #expect(decode([0x48, 0x05, 0x00, 0x00, 0x00, 0x80]).immediate == 0xffff_ffff_8000_0000)
    #expect(decode([0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8]).immediate == 0x0807_0605_0403_0201)
  }

  @Test func segmentOverridesAndStackDefault() {
    #expect(decode([0x64, 0x8b, 0x00]).segment == SegmentName.fs.rawValue)
    #expect(decode([0x8b, 0x45, 0x08]).segment == SegmentName.ss.rawValue)  // [rbp+8]
    #expect(decode([0x8b, 0x04, 0x24]).segment == SegmentName.ss.rawValue)  // [rsp]
    #expect(decode([0x8b, 0x00]).segment == SegmentName.ds.rawValue)
    #expect(decode([0x8b, 0x46, 0x00], .bits16).segment == SegmentName.ss.rawValue)  // [bp]
  }

  @Test func stackOperationsDefaultTo64Bits() {
    #expect(decode([0x50]).operandSize == 8)
    #expect(decode([0x66, 0x50]).operandSize == 2)
    #expect(decode([0x41, 0x5f]).rm == 15)  // pop r15
  }

  @Test func lastRepPrefixWins() {
    #expect(decode([0xf2, 0xf3, 0xa4]).has(DecodedInstruction.Flag.rep))
    #expect(!decode([0xf2, 0xf3, 0xa4]).has(DecodedInstruction.Flag.repne))
  }

  @Test func lockIsOnlyValidOnMemoryReadModifyWrite() {
    #expect(decode([0xf0, 0x01, 0xd8]).operation == .invalid)  // lock add eax, ebx
    #expect(decode([0xf0, 0x8b, 0x00]).operation == .invalid)  // lock mov eax, [rax]
    #expect(decode([0xf0, 0x01, 0x18]).operation == .aluRmReg)  // lock add [rax], ebx
    #expect(decode([0xf0, 0x39, 0x18]).operation == .invalid)  // lock cmp [rax], ebx
  }

  @Test func invalidIn64BitMode() {
    for opcode: UInt8 in [0x06, 0x07, 0x27, 0x37, 0x60, 0x61, 0x62, 0x82, 0x9a, 0xce, 0xd4, 0xd5, 0xea] {
      #expect(decode([opcode, 0, 0, 0, 0, 0, 0]).operation == .invalid, "opcode \(opcode)")
    }
  }

  @Test func fifteenBytesIsTheLimit() {
    // 14 prefixes + nop = 15 bytes: fine; 15 prefixes + nop = 16: #GP.
    let ok = decode(Array(repeating: 0x66, count: 14) + [0x90])
    #expect(ok.operation == .nop && ok.length == 15)
    #expect(decode(Array(repeating: 0x66, count: 15) + [0x90]).operation == .tooLong)
  }

  @Test func runningOutOfBytesIsReported() {
    #expect(decode([0x48, 0xb8, 1, 2, 3]).operation == .truncated)
    #expect(decode([0x0f]).operation == .truncated)
  }

  @Test func groupOpcodesTakeTheirOperationFromModRMReg() {
    #expect(decode([0xf7, 0xd8]).operation == .negRm)
    #expect(decode([0xf7, 0xe3]).operation == .mulRm)
    #expect(decode([0xff, 0xd0]).operation == .callRm && decode([0xff, 0xd0]).operandSize == 8)
    #expect(decode([0xff, 0xd8]).operation == .invalid)  // far call: not yet
    #expect(decode([0x0f, 0xba, 0xe0, 0x01]).operation == .btRmImm)
    #expect(decode([0x0f, 0xba, 0xd8, 0x01]).operation == .invalid)  // /3 is reserved
    #expect(decode([0x0f, 0xc7, 0xc8]).operation == .invalid)  // cmpxchg8b needs memory
  }

  @Test func sixteenBitAddressingForms() {
    // add ax, [bx+si+0x12]
    let d = decode([0x03, 0x40, 0x12], .bits16)
    #expect(d.base == 3 && d.index == 6 && d.displacement == 0x12 && d.addressSize == 2)
    // mov [0x1234], ax via ModRM: 89 06 34 12
    let absolute = decode([0x89, 0x06, 0x34, 0x12], .bits16)
    #expect(absolute.base == DecodedInstruction.Register.none && absolute.displacement == 0x1234)
  }
}
