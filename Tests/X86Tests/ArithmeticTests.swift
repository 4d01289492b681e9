import Testing

@testable import X86

/// ADD/ADC/SUB/SBB/logic/INC/DEC/NEG/CMP/TEST: results and flags worked out by hand from the
/// SDM's definitions (CF carry/borrow out, OF signed overflow, AF carry out of bit 3, PF even
/// parity of the low byte). Where the SDM leaves a flag undefined the comparison masks it.
struct ArithmeticTests {
  @Test func addSignedOverflow() throws {
    // add rax, rbx: 0x7fff...ff + 1 = 0x8000...00: OF SF AF, PF (low byte 0 has even parity)
    let s = try stepOne([0x48, 0x01, 0xd8]) {
      $0[.rax] = 0x7fff_ffff_ffff_ffff
      $0[.rbx] = 1
    }
    #expect(s.reg(.rax) == 0x8000_0000_0000_0000)
    #expect(s.rflags == F.fixed | F.of | F.sf | F.af | F.pf)
  }

  @Test func cmpBelow() throws {
    // cmp rax, rbx with 1, 2: result -1: CF (borrow) SF AF PF; RAX unchanged
    let s = try stepOne([0x48, 0x39, 0xd8]) {
      $0[.rax] = 1
      $0[.rbx] = 2
    }
    #expect(s.reg(.rax) == 1)
    #expect(s.rflags == F.fixed | F.cf | F.pf | F.af | F.sf)
  }

  @Test func adcUsesCarryIn() throws {
    // adc al, 0xff with AL=1, CF=1: 1+255+1 = 0x101 → AL=1, CF, AF; upper RAX bytes kept
    let s = try stepOne([0x14, 0xff]) {
      $0[.rax] = 0x1234_5601
      $0.rflags = F.fixed | F.cf
    }
    #expect(s.reg(.rax) == 0x1234_5601)
    #expect(s.rflags == F.fixed | F.cf | F.af)
  }

  @Test func sbbWithBorrowZeroExtends32BitResult() throws {
    // sbb eax, ecx with 0, 0, CF=1: 0xffffffff, RAX upper half cleared; CF PF AF SF
    let s = try stepOne([0x19, 0xc8]) {
      $0[.rax] = 0xdead_beef_0000_0000
      $0.rflags = F.fixed | F.cf
    }
    #expect(s.reg(.rax) == 0xffff_ffff)
    #expect(s.rflags == F.fixed | F.cf | F.pf | F.af | F.sf)
  }

  @Test func xorClearsAndSetsZeroFlag() throws {
    let s = try stepOne([0x31, 0xc0]) {
      $0[.rax] = ~0
      $0.rflags = F.fixed | F.cf | F.of
    }
    #expect(s.reg(.rax) == 0)
    #expect(s.rflags & ~F.af == F.fixed | F.zf | F.pf)  // AF undefined for XOR
  }

  @Test func highByteRegisterWithoutRex() throws {
    // or ah, bh: 0x12 | 0x34 = 0x36 (four 1 bits: PF)
    let s = try stepOne([0x08, 0xfc]) {
      $0[.rax] = 0x1200
      $0[.rbx] = 0x3400
    }
    #expect(s.reg(.rax) == 0x3600)
    #expect(s.rflags & ~F.af == F.fixed | F.pf)
  }

  @Test func rexMakesRegister4SPL() throws {
    // and spl, r15b
    let s = try stepOne([0x44, 0x20, 0xfc]) {
      $0[.rsp] = 0x1ff
      $0[.r15] = 0x0f
    }
    #expect(s.reg(.rsp) == 0x10f)
  }

  @Test func sixteenBitAddKeepsUpperBits() throws {
    // add ax, 0x1234 with AX=0xedcc: 0x10000 → AX=0, CF ZF AF PF
    let s = try stepOne([0x66, 0x05, 0x34, 0x12]) { $0[.rax] = 0xffff_ffff_ffff_edcc }
    #expect(s.reg(.rax) == 0xffff_ffff_ffff_0000)
    #expect(s.rflags == F.fixed | F.cf | F.zf | F.af | F.pf)
  }

  @Test func addToMemoryWithDisplacement() throws {
    // add qword ptr [rbp-8], -1 with [rbp-8] = 1 → 0: CF ZF AF PF
    let t = try makeSandbox([0x48, 0x83, 0x45, 0xf8, 0xff]) { $0[.rbp] = Layout.data + 8 }
    try t.store64(1, Layout.data)
    #expect(t.cpu.step() == .retired)
    #expect(try t.load64(Layout.data) == 0)
    #expect(t.rflags == F.fixed | F.cf | F.zf | F.af | F.pf)
  }

  @Test func incKeepsCarry() throws {
    // inc al with AL=0xff, CF=1: AL=0, ZF AF PF, CF kept
    let s = try stepOne([0xfe, 0xc0]) {
      $0[.rax] = 0xff
      $0.rflags = F.fixed | F.cf
    }
    #expect(s.reg(.rax) == 0)
    #expect(s.rflags == F.fixed | F.cf | F.zf | F.af | F.pf)
  }

  @Test func decOverflowsAndZeroExtends() throws {
    // dec ecx with ECX=0x80000000: 0x7fffffff, OF AF PF, CF kept clear
    let s = try stepOne([0xff, 0xc9]) { $0[.rcx] = 0xffff_ffff_8000_0000 }
    #expect(s.reg(.rcx) == 0x7fff_ffff)
    #expect(s.rflags == F.fixed | F.of | F.af | F.pf)
  }

  @Test func negOfZeroAndOfMinimum() throws {
    let zero = try stepOne([0x48, 0xf7, 0xd8]) { $0[.rax] = 0 }
    #expect(zero.rflags == F.fixed | F.zf | F.pf)
    // neg of 0x8000...00 is itself: CF (operand nonzero), OF, SF, PF
    let minimum = try stepOne([0x48, 0xf7, 0xd8]) { $0[.rax] = 0x8000_0000_0000_0000 }
    #expect(minimum.reg(.rax) == 0x8000_0000_0000_0000)
    #expect(minimum.rflags == F.fixed | F.cf | F.of | F.sf | F.pf)
  }

  @Test func notChangesNoFlags() throws {
    let s = try stepOne([0x48, 0xf7, 0xd0]) {
      $0[.rax] = 0x0f0f
      $0.rflags = F.fixed | F.cf | F.zf
    }
    #expect(s.reg(.rax) == 0xffff_ffff_ffff_f0f0)
    #expect(s.rflags == F.fixed | F.cf | F.zf)
  }

  @Test func testSetsSignAndClearsCarry() throws {
    // test byte ptr [rsi+1], 0x80 with that byte 0x80: SF, CF=OF=0, PF (one bit: odd → 0)
    let s = try makeSandbox([0xf6, 0x46, 0x01, 0x80]) {
      $0[.rsi] = Layout.data
      $0.rflags = F.fixed | F.cf | F.of
    }
    try s.store16(0x8000, Layout.data)
    #expect(s.cpu.step() == .retired)
    #expect(s.rflags & ~F.af == F.fixed | F.sf)
  }

  @Test func cbwFamilyAndCwdFamily() throws {
    #expect(try stepOne([0x66, 0x98]) { $0[.rax] = 0x80 }.reg(.rax) == 0xff80)  // cbw
    #expect(try stepOne([0x98]) { $0[.rax] = 0xffff_8000 }.reg(.rax) == 0xffff_8000)  // cwde
    #expect(try stepOne([0x48, 0x98]) { $0[.rax] = 0x8000_0000 }.reg(.rax) == 0xffff_ffff_8000_0000)  // cdqe
    #expect(try stepOne([0x48, 0x99]) { $0[.rax] = 1 << 63 }.reg(.rdx) == ~0)  // cqo
    #expect(
      try stepOne([0x99]) {
        $0[.rax] = 0x7fff_ffff
        $0[.rdx] = ~0
      }.reg(.rdx) == 0)  // cdq
  }

  @Test func conditionCodesAfterCompare() throws {
    // cmp eax, ebx (39 d8) then setl cl (0f 9c c1), setb dl (0f 92 c2), seta bl (0f 97 c3)
    // with EAX=-1, EBX=1: signed less (−1 < 1), unsigned above (0xffffffff > 1).
    let s = try makeSandbox([0x39, 0xd8, 0x0f, 0x9c, 0xc1, 0x0f, 0x92, 0xc2, 0x0f, 0x97, 0xc3]) {
      $0[.rax] = 0xffff_ffff
      $0[.rbx] = 1
    }
    #expect(s.cpu.run(maxInstructions: 4).executed == 4)
    #expect(s.reg(.rcx) == 1 && s.reg(.rdx) == 0 && s.reg(.rbx) == 1)
  }
}
