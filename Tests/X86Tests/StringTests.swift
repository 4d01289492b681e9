import Testing

@testable import X86

/// MOVS/CMPS/SCAS/LODS/STOS with REP/REPE/REPNE and DF (SDM Vol. 2, REP prefix pseudocode).
struct StringTests {
  @Test func repMovsbCopies() throws {
    let s = try makeSandbox([0xf3, 0xa4]) {
      $0[.rsi] = Layout.data
      $0[.rdi] = Layout.data + 0x100
      $0[.rcx] = 5
    }
    try s.write(Array("hello".utf8), at: Layout.data)
    #expect(s.cpu.step() == .retired)
    #expect(try s.read(at: Layout.data + 0x100, count: 5) == Array("hello".utf8))
    #expect(s.reg(.rcx) == 0 && s.reg(.rsi) == Layout.data + 5 && s.reg(.rdi) == Layout.data + 0x105)
  }

  @Test func movsqBackwardsWithDF() throws {
    let s = try makeSandbox([0x48, 0xa5]) {
      $0[.rsi] = Layout.data
      $0[.rdi] = Layout.data + 0x100
      $0.rflags = F.fixed | F.df
    }
    try s.store64(0x0102_0304_0506_0708, Layout.data)
    #expect(s.cpu.step() == .retired)
    #expect(try s.load64(Layout.data + 0x100) == 0x0102_0304_0506_0708)
    #expect(s.reg(.rsi) == Layout.data - 8 && s.reg(.rdi) == Layout.data + 0xf8)
  }

  @Test func repWithZeroCountDoesNothing() throws {
    let s = try stepOne([0xf3, 0x48, 0xab]) {
      $0[.rdi] = Layout.data
      $0[.rax] = ~0
    }
    #expect(s.reg(.rdi) == Layout.data)
    #expect(try s.load64(Layout.data) == 0)
  }

  @Test func repStosFills() throws {
    let s = try stepOne([0xf3, 0xab]) {
      $0[.rdi] = Layout.data
      $0[.rcx] = 3
      $0[.rax] = 0xabcd_ef01
    }
    #expect(try s.load64(Layout.data) == 0xabcd_ef01_abcd_ef01 && (try s.load32(Layout.data + 8)) == 0xabcd_ef01)
    #expect(s.reg(.rdi) == Layout.data + 12 && s.reg(.rcx) == 0)
  }

  @Test func repneScasbIsStrlen() throws {
    // The classic strlen: RCX = -1, AL = 0, repne scasb; the NUL is the 6th byte.
    let s = try makeSandbox([0xf2, 0xae]) {
      $0[.rdi] = Layout.data
      $0[.rcx] = ~0
    }
    try s.write(Array("hello\0".utf8), at: Layout.data)
    #expect(s.cpu.step() == .retired)
    #expect(s.reg(.rcx) == UInt64(bitPattern: -7) && s.reg(.rdi) == Layout.data + 6 && s.rflags & F.zf != 0)
  }

  @Test func repeCmpsbStopsAtTheFirstDifference() throws {
    let s = try makeSandbox([0xf3, 0xa6]) {
      $0[.rsi] = Layout.data
      $0[.rdi] = Layout.data + 0x100
      $0[.rcx] = 10
    }
    try s.write(Array("abcd".utf8), at: Layout.data)
    try s.write(Array("abxd".utf8), at: Layout.data + 0x100)
    #expect(s.cpu.step() == .retired)
    // Three comparisons ran; 'c' - 'x' borrows: CF, SF; ZF clear
    #expect(s.reg(.rcx) == 7 && s.reg(.rsi) == Layout.data + 3 && s.rflags & (F.zf | F.cf | F.sf) == F.cf | F.sf)
  }

  @Test func lodsAndAddressSizeOverride() throws {
    // lodsw with 67: ESI wraps at 32 bits and RSI's upper half is cleared
    let s = try makeSandbox([0x67, 0x66, 0xad]) { $0[.rsi] = 0xffff_ffff_0000_0000 | Layout.data }
    try s.store16(0x1234, Layout.data)
    #expect(s.cpu.step() == .retired)
    #expect(s.reg(.rax) & 0xffff == 0x1234 && s.reg(.rsi) == Layout.data + 2)
  }
}
