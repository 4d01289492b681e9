import GuestMemory
import Testing

@testable import X86

/// Builds a 128-bit value from its two quadwords (high first, as the SDM draws registers).
func v128(_ high: UInt64, _ low: UInt64) -> UInt128 { UInt128(high) << 64 | UInt128(low) }

extension X86Sandbox {
  func xmm(_ index: Int) -> UInt128 { cpu.state.fpu.xmm[index] }
}

/// SSE2 data movement and integer SIMD. Expected values follow each instruction's operation
/// section in SDM Vol. 2 (computed by hand here); the fault rules come from SDM Vol. 1, 11.4.1
/// (alignment), Vol. 3 table 2-2 / 13.1 (CR0.EM, CR0.TS, CR4.OSFXSR).
struct SSEIntegerTests {
  static let a = v128(0x8877_6655_4433_2211, 0x0011_2233_4455_6677)
  static let b = v128(0x0102_0304_0506_0708, 0xfffe_fdfc_8000_7fff)

  func run(_ code: [UInt8], x0: UInt128 = a, x1: UInt128 = b, setup: (inout X86State) -> Void = { _ in }) throws
    -> X86Sandbox
  {
    try stepOne(code) {
      $0.fpu.xmm[0] = x0
      $0.fpu.xmm[1] = x1
      setup(&$0)
    }
  }

  @Test func movdqaLoadAndStore() throws {
    // movdqa xmm0, [rax]; movdqa [rax+16], xmm1 (66 0F 6F /r, 66 0F 7F /r)
    let s = try run([0x66, 0x0f, 0x6f, 0x00]) { $0[.rax] = Layout.data }
    #expect(s.xmm(0) == 0)
    try s.store64(0x1122_3344_5566_7788, Layout.data)
    try s.store64(0x99aa_bbcc_ddee_ff00, Layout.data + 8)
    s.cpu.state.rip = Layout.code
    #expect(s.cpu.step() == .retired)
    #expect(s.xmm(0) == v128(0x99aa_bbcc_ddee_ff00, 0x1122_3344_5566_7788))
    let t = try run([0x66, 0x0f, 0x7f, 0x48, 0x10]) { $0[.rax] = Layout.data }
    #expect(try t.load64(Layout.data + 16) == 0xfffe_fdfc_8000_7fff)
    #expect(try t.load64(Layout.data + 24) == 0x0102_0304_0506_0708)
  }

  @Test func misalignedAlignedFormsFaultButUnalignedFormsDoNot() throws {
    // movaps xmm0, [rax] with rax 8 mod 16: #GP(0), xmm0 untouched.
    let (s, result) = try stepFault([0x0f, 0x28, 0x00]) {
      $0[.rax] = Layout.data + 8
      $0.fpu.xmm[0] = Self.a
    }
    #expect(result == .exception(.generalProtection(0)))
    #expect(s.xmm(0) == Self.a && s.cpu.state.rip == Layout.code)
    // paddb xmm0, [rax+1]: legacy-SSE m128 operands must be aligned too.
    let (_, paddb) = try stepFault([0x66, 0x0f, 0xfc, 0x40, 0x01]) { $0[.rax] = Layout.data }
    #expect(paddb == .exception(.generalProtection(0)))
    // movups / movdqu at an odd address are fine.
    let u = try run([0x0f, 0x11, 0x48, 0x03]) { $0[.rax] = Layout.data }
    #expect(try u.load64(Layout.data + 3) == 0xfffe_fdfc_8000_7fff)
    u.cpu.state.rip = Layout.code
    try u.load(code: [0xf3, 0x0f, 0x6f, 0x40, 0x03], at: Layout.code)  // movdqu xmm0, [rax+3]
    #expect(u.cpu.step() == .retired)
    #expect(u.xmm(0) == Self.b)
  }

  @Test func controlRegisterGates() throws {
    let pxor: [UInt8] = [0x66, 0x0f, 0xef, 0xc1]
    // CR0.TS: #NM (vector 7).
    let (_, ts) = try stepFault(pxor) { $0.cr0 |= 1 << 3 }
    #expect(ts == .exception(X86Exception(vector: 7)))
    // CR0.EM: #UD; CR4.OSFXSR clear: #UD.
    let (_, em) = try stepFault(pxor) { $0.cr0 |= 1 << 2 }
    #expect(em == .exception(.invalidOpcode))
    let (_, osfxsr) = try stepFault(pxor) { $0.cr4 &= ~(1 << 9) }
    #expect(osfxsr == .exception(.invalidOpcode))
    // MMX form (no 66): not implemented nor advertised, #UD. LOCK: #UD.
    let (_, mmx) = try stepFault([0x0f, 0xfc, 0xc1])
    #expect(mmx == .exception(.invalidOpcode))
    let (_, locked) = try stepFault([0xf0, 0x66, 0x0f, 0xef, 0xc1])
    #expect(locked == .exception(.invalidOpcode))
  }

  @Test func logic() throws {
    #expect(try run([0x66, 0x0f, 0xef, 0xc1]).xmm(0) == Self.a ^ Self.b)  // pxor
    #expect(try run([0x66, 0x0f, 0xdb, 0xc1]).xmm(0) == Self.a & Self.b)  // pand
    #expect(try run([0x66, 0x0f, 0xdf, 0xc1]).xmm(0) == ~Self.a & Self.b)  // pandn
    #expect(try run([0x0f, 0x56, 0xc1]).xmm(0) == Self.a | Self.b)  // orps
    #expect(try run([0x66, 0x0f, 0x57, 0xc0]).xmm(0) == 0)  // xorpd xmm0, xmm0
  }

  @Test func addSubtractWrapAndSaturate() throws {
    let x = v128(0x7f80_ff01_0000_0000, 0x7fff_8000_ffff_0001)
    let y = v128(0x0180_0101_0000_0000, 0x0001_ffff_0001_ffff)
    // paddb: per byte modulo 256.
    #expect(
      try run([0x66, 0x0f, 0xfc, 0xc1], x0: x, x1: y).xmm(0) == v128(0x8000_0002_0000_0000, 0x7f00_7fff_ff00_ff00))
    // paddsw: signed saturation: 7fff+0001 = 7fff, 8000+ffff = 8000, ffff+0001 = 0, 0001+ffff = 0.
    #expect(try run([0x66, 0x0f, 0xed, 0xc1], x0: x, x1: y).xmm(0).low64 == 0x7fff_8000_0000_0000)
    // paddusb: unsigned saturation per byte: 7f+01 = 80, 80+80 = ff, ff+01 = ff, 01+01 = 02.
    #expect(try run([0x66, 0x0f, 0xdc, 0xc1], x0: x, x1: y).xmm(0).high64 == 0x80ff_ff02_0000_0000)
    // psubusw: 0x0001 - 0xffff saturates to 0; 0xffff - 0x0001 = 0xfffe.
    #expect(try run([0x66, 0x0f, 0xd9, 0xc1], x0: x, x1: y).xmm(0).low64 == 0x7ffe_0000_fffe_0000)
    // psubq: 0 - 1 wraps.
    #expect(try run([0x66, 0x0f, 0xfb, 0xc1], x0: 0, x1: v128(1, 2)).xmm(0) == v128(~0, ~1))
  }

  @Test func compareAndMask() throws {
    let x = v128(0x0000_0000_0000_0000, 0x0102_0304_8000_00ff)
    let y = v128(0x0000_0000_0000_0001, 0x0102_0300_0000_00ff)
    // pcmpeqb then pmovmskb eax, xmm0.
    let s = try run([0x66, 0x0f, 0x74, 0xc1], x0: x, x1: y)
    #expect(s.xmm(0) == v128(0xffff_ffff_ffff_ff00, 0xffff_ff00_00ff_ffff))
    let m = try run([0x66, 0x0f, 0xd7, 0xc0], x0: s.xmm(0)) { $0[.rax] = ~0 }
    #expect(m.reg(.rax) == 0b1111_1110_1110_0111)
    // pcmpgtd is signed: 0x80000000 (negative) > 0 is false, 0x000000ff > 0x000000ff false.
    let g = try run([0x66, 0x0f, 0x66, 0xc1], x0: v128(0, 0x0000_0001_8000_0000), x1: v128(0, 0xffff_ffff_0000_0000))
    #expect(g.xmm(0) == v128(0, 0xffff_ffff_0000_0000))
    // movmskps eax, xmm1: sign bits of the four dwords of b: 01020304 05060708 fffefdfc 80007fff.
    #expect(try run([0x0f, 0x50, 0xc1]).reg(.rax) == 0b0011)
    #expect(try run([0x66, 0x0f, 0x50, 0xc1]).reg(.rax) == 0b01)
  }

  @Test func shuffles() throws {
    let x = v128(0x3333_3333_2222_2222, 0x1111_1111_0000_0000)
    // pshufd xmm0, xmm1, 0x1b: reverse the dwords.
    #expect(
      try run([0x66, 0x0f, 0x70, 0xc1, 0x1b], x1: x).xmm(0) == v128(0x0000_0000_1111_1111, 0x2222_2222_3333_3333))
    // pshuflw xmm0, xmm1, 0x00: word 0 four times, high quadword copied.
    let w = v128(0xaaaa_bbbb_cccc_dddd, 0x4444_3333_2222_1111)
    #expect(
      try run([0xf2, 0x0f, 0x70, 0xc1, 0x00], x1: w).xmm(0) == v128(0xaaaa_bbbb_cccc_dddd, 0x1111_1111_1111_1111))
    // pshufhw xmm0, xmm1, 0xe4: identity.
    #expect(try run([0xf3, 0x0f, 0x70, 0xc1, 0xe4], x1: w).xmm(0) == w)
    // shufps xmm0, xmm1, 0x4e: dest dwords 2,3 then source dwords 0,1.
    #expect(
      try run([0x0f, 0xc6, 0xc1, 0x4e], x0: x, x1: w).xmm(0) == v128(0x4444_3333_2222_1111, 0x3333_3333_2222_2222))
    // shufpd xmm0, xmm1, 1: high of dest, low of source.
    #expect(
      try run([0x66, 0x0f, 0xc6, 0xc1, 0x01], x0: x, x1: w).xmm(0) == v128(0x4444_3333_2222_1111, 0x3333_3333_2222_2222)
    )
  }

  @Test func unpackAndPack() throws {
    let x = v128(0x0f0e_0d0c_0b0a_0908, 0x0706_0504_0302_0100)
    let y = v128(0x1f1e_1d1c_1b1a_1918, 0x1716_1514_1312_1110)
    // punpcklbw: bytes of the low halves interleaved, destination first.
    #expect(
      try run([0x66, 0x0f, 0x60, 0xc1], x0: x, x1: y).xmm(0) == v128(0x1707_1606_1505_1404, 0x1303_1202_1101_1000))
    // punpckhqdq
    #expect(
      try run([0x66, 0x0f, 0x6d, 0xc1], x0: x, x1: y).xmm(0) == v128(0x1f1e_1d1c_1b1a_1918, 0x0f0e_0d0c_0b0a_0908))
    // unpcklps
    #expect(try run([0x0f, 0x14, 0xc1], x0: x, x1: y).xmm(0) == v128(0x1716_1514_0706_0504, 0x1312_1110_0302_0100))
    // packsswb: words 0x0100 (256) → 7f, 0xff80 (-128) → 80, 0x8000 → 80, 0x007f → 7f.
    let words = v128(0x0000_0000_0000_0000, 0x0100_ff80_8000_007f)
    #expect(try run([0x66, 0x0f, 0x63, 0xc1], x0: words, x1: 0).xmm(0) == v128(0, 0x7f80_807f))
    // packuswb: 256 → ff, -128 → 00, -32768 → 00, 127 → 7f.
    #expect(try run([0x66, 0x0f, 0x67, 0xc1], x0: words, x1: 0).xmm(0) == v128(0, 0xff00_007f))
    // packssdw: 0x00010000 → 7fff, 0xffff0000 → 8000.
    #expect(
      try run([0x66, 0x0f, 0x6b, 0xc1], x0: v128(0, 0x0001_0000_ffff_0000), x1: 0).xmm(0) == v128(0, 0x7fff_8000))
  }

  @Test func shifts() throws {
    let x = v128(0x8000_0000_0000_0001, 0x8001_4000_0000_ffff)
    // psraw xmm0, 3 (66 0F 71 /4 ib): 8001 → f000, 4000 → 0800, ffff → ffff.
    #expect(try run([0x66, 0x0f, 0x71, 0xe0, 0x03], x0: x).xmm(0).low64 == 0xf000_0800_0000_ffff)
    // psrlq xmm0, 63, psllq xmm0, 64 (all zero).
    #expect(try run([0x66, 0x0f, 0x73, 0xd0, 0x3f], x0: x).xmm(0) == v128(1, 1))
    #expect(try run([0x66, 0x0f, 0x73, 0xf0, 0x40], x0: x).xmm(0) == 0)
    // psrldq xmm0, 4 / pslldq xmm0, 20 (bytes; more than 15 clears).
    #expect(try run([0x66, 0x0f, 0x73, 0xd8, 0x04], x0: x).xmm(0) == x >> 32)
    #expect(try run([0x66, 0x0f, 0x73, 0xf8, 0x14], x0: x).xmm(0) == 0)
    // psrad xmm0, xmm1 with a count of 40: every dword becomes its sign.
    #expect(
      try run([0x66, 0x0f, 0xe2, 0xc1], x0: x, x1: 40).xmm(0) == v128(0xffff_ffff_0000_0000, 0xffff_ffff_0000_0000))
    // pslld xmm0, xmm1 with count 4.
    #expect(
      try run([0x66, 0x0f, 0xf2, 0xc1], x0: x, x1: 4).xmm(0) == v128(0x0000_0000_0000_0010, 0x0014_0000_000f_fff0))
    // Group 12 /3 is not a thing for words: #UD.
    let (_, bad) = try stepFault([0x66, 0x0f, 0x71, 0xd8, 0x01])
    #expect(bad == .exception(.invalidOpcode))
  }

  @Test func multiplies() throws {
    // pmullw / pmulhw / pmulhuw on 0xffff × 0x0002 and 0x4000 × 0x0004.
    let x = v128(0, 0xffff_4000)
    let y = v128(0, 0x0002_0004)
    #expect(try run([0x66, 0x0f, 0xd5, 0xc1], x0: x, x1: y).xmm(0) == v128(0, 0xfffe_0000))
    #expect(try run([0x66, 0x0f, 0xe5, 0xc1], x0: x, x1: y).xmm(0) == v128(0, 0xffff_0001))
    #expect(try run([0x66, 0x0f, 0xe4, 0xc1], x0: x, x1: y).xmm(0) == v128(0, 0x0001_0001))
    // pmuludq: even dwords, 0xffffffff² = 0xfffffffe00000001.
    let p = try run([0x66, 0x0f, 0xf4, 0xc1], x0: v128(2, 0xffff_ffff), x1: v128(3, 0x1_ffff_ffff))
    #expect(p.xmm(0) == v128(6, 0xffff_fffe_0000_0001))
    // pmaddwd: 0x8000·0x8000 + 0x8000·0x8000 = 2^31, wrapping to 0x80000000.
    #expect(
      try run([0x66, 0x0f, 0xf5, 0xc1], x0: v128(0, 0x8000_8000), x1: v128(0, 0x8000_8000)).xmm(0)
        == v128(0, 0x8000_0000))
    // psadbw: |0-255|·8 = 2040 in the low quadword; the high one 0.
    #expect(try run([0x66, 0x0f, 0xf6, 0xc1], x0: v128(0, 0), x1: v128(0, ~0)).xmm(0) == v128(0, 2040))
    // pavgb: (1 + 2 + 1) >> 1 = 2; (255 + 255 + 1) >> 1 = 255.
    #expect(try run([0x66, 0x0f, 0xe0, 0xc1], x0: v128(0, 0xff01), x1: v128(0, 0xff02)).xmm(0) == v128(0, 0xff02))
    // pminub / pmaxsw.
    #expect(try run([0x66, 0x0f, 0xda, 0xc1], x0: v128(0, 0x80_01), x1: v128(0, 0x7f_02)).xmm(0) == v128(0, 0x7f01))
    #expect(
      try run([0x66, 0x0f, 0xee, 0xc1], x0: v128(0, 0x8000_0001), x1: v128(0, 0x7fff_0002)).xmm(0)
        == v128(0, 0x7fff_0002))
  }

  @Test func generalRegisterMoves() throws {
    // movd xmm0, eax zero-extends into the whole register.
    #expect(try run([0x66, 0x0f, 0x6e, 0xc0]) { $0[.rax] = 0x1234_5678_9abc_def0 }.xmm(0) == 0x9abc_def0)
    // movq rax, xmm1 (66 REX.W 0F 7E) and movd eax, xmm1 (upper half of RAX cleared).
    #expect(try run([0x66, 0x48, 0x0f, 0x7e, 0xc8]).reg(.rax) == 0xfffe_fdfc_8000_7fff)
    #expect(try run([0x66, 0x0f, 0x7e, 0xc8]) { $0[.rax] = ~0 }.reg(.rax) == 0x8000_7fff)
    // movq xmm0, xmm1 (F3 0F 7E) and movq xmm0, xmm1 via 66 0F D6 (xmm1 ← xmm0 here): upper cleared.
    #expect(try run([0xf3, 0x0f, 0x7e, 0xc1]).xmm(0) == 0xfffe_fdfc_8000_7fff)
    #expect(try run([0x66, 0x0f, 0xd6, 0xc1]).xmm(1) == 0x0011_2233_4455_6677)
    // pinsrw xmm0, eax, 7 then pextrw ecx, xmm0, 7.
    let s = try run([0x66, 0x0f, 0xc4, 0xc0, 0x07]) { $0[.rax] = 0xdead_beef }
    #expect(s.xmm(0) == v128(0xbeef_6655_4433_2211, 0x0011_2233_4455_6677))
    #expect(try run([0x66, 0x0f, 0xc5, 0xc8, 0x02]) { $0[.rcx] = ~0 }.reg(.rcx) == 0x2233)
  }

  @Test func scalarAndHalfMoves() throws {
    // movss xmm0, xmm1 merges the low dword; movss xmm0, [rax] zeroes the rest.
    #expect(try run([0xf3, 0x0f, 0x10, 0xc1]).xmm(0) == v128(0x8877_6655_4433_2211, 0x0011_2233_8000_7fff))
    let m = try run([0xf3, 0x0f, 0x10, 0x00]) { $0[.rax] = Layout.data }
    #expect(m.xmm(0) == 0)
    // movsd [rax], xmm1 stores 8 bytes.
    #expect(try run([0xf2, 0x0f, 0x11, 0x08]) { $0[.rax] = Layout.data }.load64(Layout.data) == 0xfffe_fdfc_8000_7fff)
    // movhlps xmm0, xmm1 / movlhps xmm0, xmm1.
    #expect(try run([0x0f, 0x12, 0xc1]).xmm(0) == v128(0x8877_6655_4433_2211, 0x0102_0304_0506_0708))
    #expect(try run([0x0f, 0x16, 0xc1]).xmm(0) == v128(0xfffe_fdfc_8000_7fff, 0x0011_2233_4455_6677))
    // movhps [rax], xmm1 stores the high quadword; movlpd xmm0, xmm1 (register form) is #UD.
    #expect(try run([0x0f, 0x17, 0x08]) { $0[.rax] = Layout.data }.load64(Layout.data) == 0x0102_0304_0506_0708)
    let (_, bad) = try stepFault([0x66, 0x0f, 0x12, 0xc1])
    #expect(bad == .exception(.invalidOpcode))
  }

  @Test func nonTemporalStoresAndMaskedMove() throws {
    let n = try run([0x48, 0x0f, 0xc3, 0x08]) {  // movnti [rax], rcx
      $0[.rax] = Layout.data
      $0[.rcx] = 0x0123_4567_89ab_cdef
    }
    #expect(try n.load64(Layout.data) == 0x0123_4567_89ab_cdef)
    let t = try run([0x66, 0x0f, 0xe7, 0x08]) { $0[.rax] = Layout.data }  // movntdq [rax], xmm1
    #expect(try t.load64(Layout.data + 8) == 0x0102_0304_0506_0708)
    // maskmovdqu xmm0, xmm1: bytes whose mask byte has bit 7 set, at [rdi].
    let mask = v128(0, 0x80ff_007f_0080_0000)
    let s = try run([0x66, 0x0f, 0xf7, 0xc1], x1: mask) { $0[.rdi] = Layout.data }
    #expect(try s.load64(Layout.data) == 0x0011_0000_0055_0000)
  }
}

extension UInt128 {
  var low64: UInt64 { UInt64(truncatingIfNeeded: self) }
  var high64: UInt64 { UInt64(truncatingIfNeeded: self >> 64) }
}
