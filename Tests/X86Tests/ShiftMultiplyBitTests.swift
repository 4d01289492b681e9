import Testing

@testable import X86

/// Shifts, rotates, MUL/IMUL/DIV/IDIV (with #DE), bit tests and scans, BSWAP. Expected values
/// by hand from the SDM's pseudocode for each instruction; undefined flags masked with
/// `UndefinedFlags`, the table the differential tester uses.
struct ShiftMultiplyBitTests {
  /// RFLAGS with the flags the SDM leaves undefined for the instruction at RIP (before stepping) masked.
  func definedFlags(_ s: X86Sandbox, _ code: [UInt8], cl: UInt8 = 0) -> UInt64 {
    s.rflags & ~UndefinedFlags.mask(for: decodeInstruction(InstructionBytes(code), mode: .bits64), cl: cl)
  }

  @Test func shlByOneSetsCarryAndOverflow() throws {
    // shl eax, 1 with 0x80000001 → 2; CF=1 (bit out), OF = MSB(result) ^ CF = 1
    let code: [UInt8] = [0xd1, 0xe0]
    let s = try stepOne(code) { $0[.rax] = 0x8000_0001 }
    #expect(s.reg(.rax) == 2)
    #expect(definedFlags(s, code) == F.fixed | F.cf | F.of)
  }

  @Test func shrByImmediate() throws {
    // shr esi, 31 with 0x80000000 → 1; CF = bit 30 = 0; OF undefined (count ≠ 1)
    let code: [UInt8] = [0xc1, 0xee, 0x1f]
    let s = try stepOne(code) { $0[.rsi] = 0x8000_0000 }
    #expect(s.reg(.rsi) == 1)
    #expect(definedFlags(s, code) == F.fixed)
  }

  @Test func sarKeepsSign() throws {
    // sar rax, 1 with 0x8000000000000001 → 0xc000...0; CF=1, OF=0, SF, PF
    let code: [UInt8] = [0x48, 0xd1, 0xf8]
    let s = try stepOne(code) { $0[.rax] = 0x8000_0000_0000_0001 }
    #expect(s.reg(.rax) == 0xc000_0000_0000_0000)
    #expect(definedFlags(s, code) == F.fixed | F.cf | F.sf | F.pf)
  }

  @Test func shiftByZeroChangesNothing() throws {
    // shl r8, cl with CL = 64: masked to 0, flags and operand untouched
    let s = try stepOne([0x49, 0xd3, 0xe0]) {
      $0[.r8] = 5
      $0[.rcx] = 64
      $0.rflags = F.fixed | F.zf | F.of
    }
    #expect(s.reg(.r8) == 5 && s.rflags == F.fixed | F.zf | F.of)
  }

  @Test func shiftByZeroStillZeroExtendsA32BitRegister() throws {
    // shr eax, cl with CL = 0: no flag changes, but EAX is written, so RAX's upper half clears
    // (SDM Vol. 1, 3.4.1.1: 32-bit results are zero-extended; observed on the host CPU too).
    let s = try stepOne([0xd3, 0xe8]) {
      $0[.rax] = 0x551a_6955_c5b5_ff89
      $0.rflags = F.fixed | F.cf | F.zf
    }
    #expect(s.reg(.rax) == 0xc5b5_ff89 && s.rflags == F.fixed | F.cf | F.zf)
  }

  @Test func rolTouchesOnlyCarryAndOverflow() throws {
    // rol eax, 1 with 0x80000000 → 1; CF = LSB = 1; OF = MSB ^ CF = 1; ZF kept
    let s = try stepOne([0xd1, 0xc0]) {
      $0[.rax] = 0x8000_0000
      $0.rflags = F.fixed | F.zf
    }
    #expect(s.reg(.rax) == 1 && s.rflags == F.fixed | F.zf | F.cf | F.of)
  }

  @Test func rcrThroughCarryInMemory() throws {
    // rcr word ptr [rax], 1 with 0x0001 and CF=1 → 0x8000; CF=1; OF = MSB(old) ^ CF(old) = 1
    let s = try makeSandbox([0x66, 0xd1, 0x18]) {
      $0[.rax] = Layout.data
      $0.rflags = F.fixed | F.cf
    }
    try s.store16(1, Layout.data)
    #expect(s.cpu.step() == .retired)
    #expect(try s.load16(Layout.data) == 0x8000 && s.rflags == F.fixed | F.cf | F.of)
  }

  @Test func rclByteCountIsModuloNine() throws {
    // rcl al, 9 (c0 d0 09): 9 mod 9 = 0 → AL and CF unchanged
    let s = try stepOne([0xc0, 0xd0, 0x09]) {
      $0[.rax] = 0x5a
      $0.rflags = F.fixed | F.cf
    }
    #expect(s.reg(.rax) == 0x5a && s.rflags & F.cf != 0)
  }

  @Test func shldAndShrd() throws {
    // shld eax, ebx, 4: 0x12345678 / 0x9abcdef0 → 0x23456789, CF = bit 28 of EAX = 1
    let shld: [UInt8] = [0x0f, 0xa4, 0xd8, 0x04]
    let s = try stepOne(shld) {
      $0[.rax] = 0x1234_5678
      $0[.rbx] = 0x9abc_def0
    }
    #expect(s.reg(.rax) == 0x2345_6789)
    #expect(definedFlags(s, shld) == F.fixed | F.cf)  // 0x89 has three 1 bits: PF=0
    // shrd r10w, r11w, 1: 0x0001 / 0x0001 → 0x8000; CF=1, OF=1 (sign changed), SF, PF
    let shrd: [UInt8] = [0x66, 0x45, 0x0f, 0xac, 0xda, 0x01]
    let t = try stepOne(shrd) {
      $0[.r10] = 1
      $0[.r11] = 1
    }
    #expect(t.reg(.r10) == 0x8000)
    #expect(definedFlags(t, shrd) == F.fixed | F.cf | F.of | F.sf | F.pf)
  }

  @Test func mulFullWidth() throws {
    // mul rbx: 0xffff...ff * 2 = 1:fffffffffffffffe; CF=OF=1
    let code: [UInt8] = [0x48, 0xf7, 0xe3]
    let s = try stepOne(code) {
      $0[.rax] = ~0
      $0[.rbx] = 2
    }
    #expect(s.reg(.rax) == 0xffff_ffff_ffff_fffe && s.reg(.rdx) == 1)
    #expect(definedFlags(s, code) == F.fixed | F.cf | F.of)
  }

  @Test func mulByteWritesAX() throws {
    // mul cl: 0x80 * 2 = 0x100 → AX = 0x0100; CF=OF=1 (AH nonzero)
    let s = try stepOne([0xf6, 0xe1]) {
      $0[.rax] = 0xffff_0080
      $0[.rcx] = 2
    }
    #expect(s.reg(.rax) == 0xffff_0100 && s.rflags & (F.cf | F.of) == F.cf | F.of)
  }

  @Test func imulThreeOperandOverflow() throws {
    // imul ecx, edx, -2: 0x40000000 * -2 = -0x80000000 fits: ECX = 0x80000000, CF=OF=0
    let fits = try stepOne([0x6b, 0xca, 0xfe]) { $0[.rdx] = 0x4000_0000 }
    #expect(fits.reg(.rcx) == 0x8000_0000 && fits.rflags & (F.cf | F.of) == 0)
    // 0x40000001 * -2 = -0x80000002 does not: ECX = 0x7ffffffe, CF=OF=1
    let overflows = try stepOne([0x6b, 0xca, 0xfe]) { $0[.rdx] = 0x4000_0001 }
    #expect(overflows.reg(.rcx) == 0x7fff_fffe && overflows.rflags & (F.cf | F.of) == F.cf | F.of)
  }

  @Test func imulOneOperandSigned() throws {
    // imul r9 (49 f7 e9): -3 * 5 = -15 → RDX:RAX = -1:-15, fits: CF=OF=0
    let s = try stepOne([0x49, 0xf7, 0xe9]) {
      $0[.rax] = UInt64(bitPattern: -3)
      $0[.r9] = 5
    }
    #expect(s.reg(.rax) == UInt64(bitPattern: -15) && s.reg(.rdx) == ~0 && s.rflags & (F.cf | F.of) == 0)
  }

  @Test func divByteAndItsDivideErrors() throws {
    // div cl: AX = 257, CL = 2 → AL = 128, AH = 1
    let s = try stepOne([0xf6, 0xf1]) {
      $0[.rax] = 0x0101
      $0[.rcx] = 2
    }
    #expect(s.reg(.rax) == 0x0180)
    // AX = 0x200 / 2 = 0x100 does not fit in AL: #DE, RIP and RAX unchanged
    let (overflow, result) = try stepFault([0xf6, 0xf1]) {
      $0[.rax] = 0x0200
      $0[.rcx] = 2
    }
    #expect(result == .exception(.divideError))
    #expect(overflow.cpu.state.rip == Layout.code && overflow.reg(.rax) == 0x200)
    let (_, byZero) = try stepFault([0x48, 0xf7, 0xf3]) { $0[.rax] = 1 }  // div rbx, RBX = 0
    #expect(byZero == .exception(X86Exception(vector: 0)))
  }

  @Test func idivSignedAndOverflow() throws {
    // idiv ecx: EDX:EAX = -7, ECX = 2 → quotient -3, remainder -1 (sign of the dividend)
    let s = try stepOne([0xf7, 0xf9]) {
      $0[.rax] = 0xffff_fff9
      $0[.rdx] = 0xffff_ffff
      $0[.rcx] = 2
    }
    #expect(s.reg(.rax) == 0xffff_fffd && s.reg(.rdx) == 0xffff_ffff)
    // idiv rcx: -2^63 / -1 = 2^63 does not fit: #DE
    let (_, result) = try stepFault([0x48, 0xf7, 0xf9]) {
      $0[.rax] = 1 << 63
      $0[.rdx] = ~0
      $0[.rcx] = ~0
    }
    #expect(result == .exception(.divideError))
  }

  @Test func bitTestForms() throws {
    // bt eax, ebx: offset 36 mod 32 = 4; EAX bit 4 set → CF=1
    #expect(
      try stepOne([0x0f, 0xa3, 0xd8]) {
        $0[.rax] = 0x10
        $0[.rbx] = 36
      }.rflags & F.cf != 0)
    // bts qword ptr [rsi], rax with RAX = 65: the qword at +8, bit 1
    let s = try stepOne([0x48, 0x0f, 0xab, 0x06]) {
      $0[.rsi] = Layout.data
      $0[.rax] = 65
    }
    #expect(try s.load64(Layout.data + 8) == 2 && s.rflags & F.cf == 0)
    // bts with RAX = -1: the qword at -8, bit 63
    let negative = try stepOne([0x48, 0x0f, 0xab, 0x06]) {
      $0[.rsi] = Layout.data
      $0[.rax] = ~0
    }
    #expect(try negative.load64(Layout.data - 8) == 1 << 63)
    // btr dword ptr [rsi+4], 31: immediate offsets stay within the operand
    let reset = try makeSandbox([0x0f, 0xba, 0x76, 0x04, 0x1f]) { $0[.rsi] = Layout.data }
    try reset.store32(0x8000_0001, Layout.data + 4)
    #expect(reset.cpu.step() == .retired)
    #expect(try reset.load32(Layout.data + 4) == 1 && reset.rflags & F.cf != 0)
    // btc r15, 63
    #expect(try stepOne([0x49, 0x0f, 0xba, 0xff, 0x3f]).reg(.r15) == 1 << 63)
  }

  @Test func bitScans() throws {
    let forward = try stepOne([0x48, 0x0f, 0xbc, 0xc3]) { $0[.rbx] = 0x80 }  // bsf rax, rbx
    #expect(forward.reg(.rax) == 7 && forward.rflags & F.zf == 0)
    let reverse = try stepOne([0x0f, 0xbd, 0xca]) { $0[.rdx] = 0x8001 }  // bsr ecx, edx
    #expect(reverse.reg(.rcx) == 15)
    let zero = try stepOne([0x0f, 0xbd, 0xca]) {
      $0[.rcx] = 0x1234_5678_9abc
      $0[.rdx] = 0
    }
    #expect(zero.reg(.rcx) == 0x1234_5678_9abc && zero.rflags & F.zf != 0)
  }

  @Test func byteSwaps() throws {
    #expect(try stepOne([0x0f, 0xc8]) { $0[.rax] = 0xffff_ffff_1234_5678 }.reg(.rax) == 0x7856_3412)
    #expect(try stepOne([0x49, 0x0f, 0xcd]) { $0[.r13] = 0x0102_0304_0506_0708 }.reg(.r13) == 0x0807_0605_0403_0201)
  }

  @Test func undefinedFlagsTable() {
    func mask(_ bytes: [UInt8], cl: UInt8 = 0) -> UInt64 {
      UndefinedFlags.mask(for: decodeInstruction(InstructionBytes(bytes), mode: .bits64), cl: cl)
    }
    #expect(mask([0x48, 0x01, 0xd8]) == 0)  // add: all defined
    #expect(mask([0x31, 0xc0]) == F.af)  // xor
    #expect(mask([0xd1, 0xe0]) == F.af)  // shl by 1: OF defined
    #expect(mask([0xc1, 0xe0, 0x02]) == F.af | F.of)  // shl by 2
    #expect(mask([0xd3, 0xe0], cl: 0) == 0)  // shl by CL = 0: nothing changes
    #expect(mask([0xd1, 0xc0]) == 0)  // rol by 1
    #expect(mask([0xf7, 0xf1]) == F.cf | F.of | F.sf | F.zf | F.af | F.pf)  // div
  }
}
