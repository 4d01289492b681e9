import GuestMemory
import Testing

@testable import X86

/// SSE/SSE2 floating point. Expected values are IEEE 754 constants worked out by hand (the
/// bit patterns are the standard encodings of 1/3, √2, DBL_MAX...), and the MXCSR behaviour
/// follows SDM Vol. 1, 10.2.3 (MXCSR), 4.8.3/4.9 (rounding, exceptions, tininess after
/// rounding), 11.5 (SIMD exceptions), table 4-7 (NaN operands), Vol. 3, 6.15 (#XM).
struct SSEFloatTests {
  // MXCSR: the reset value and its fields.
  static let reset: UInt32 = 0x1f80
  static let ie: UInt32 = 1, de: UInt32 = 2, ze: UInt32 = 4, oe: UInt32 = 8, ue: UInt32 = 0x10, pe: UInt32 = 0x20
  static let down: UInt32 = 0x2000, up: UInt32 = 0x4000, towardZero: UInt32 = 0x6000
  static let daz: UInt32 = 0x40, ftz: UInt32 = 0x8000

  // Single precision.
  static let one32: UInt64 = 0x3f80_0000, three32: UInt64 = 0x4040_0000
  // Double precision.
  static let one: UInt64 = 0x3ff0_0000_0000_0000, two: UInt64 = 0x4000_0000_0000_0000
  static let half: UInt64 = 0x3fe0_0000_0000_0000
  static let maxDouble: UInt64 = 0x7fef_ffff_ffff_ffff, infinity: UInt64 = 0x7ff0_0000_0000_0000
  static let minNormal: UInt64 = 0x0010_0000_0000_0000
  static let indefinite: UInt64 = 0xfff8_0000_0000_0000
  static let quietNaN: UInt64 = 0x7ff8_0000_0000_0005, signalingNaN: UInt64 = 0x7ff0_0000_0000_0001

  func run(_ code: [UInt8], x0: UInt128, x1: UInt128, mxcsr: UInt32 = reset, setup: (inout X86State) -> Void = { _ in })
    throws -> X86Sandbox
  {
    try stepOne(code) {
      $0.fpu.xmm[0] = x0
      $0.fpu.xmm[1] = x1
      $0.fpu.mxcsr = mxcsr
      setup(&$0)
    }
  }

  static let divss: [UInt8] = [0xf3, 0x0f, 0x5e, 0xc1]
  static let divsd: [UInt8] = [0xf2, 0x0f, 0x5e, 0xc1]
  static let mulsd: [UInt8] = [0xf2, 0x0f, 0x59, 0xc1]
  static let sqrtsd: [UInt8] = [0xf2, 0x0f, 0x51, 0xc1]
  static let addsd: [UInt8] = [0xf2, 0x0f, 0x58, 0xc1]

  @Test func oneThirdInEveryRoundingMode() throws {
    // 1/3 = 0x3eaaaaaa|aaa...: nearest and up give ...ab, down and toward zero ...aa; PE set;
    // the destination's other lanes stay.
    let x0 = v128(0x1111_2222_3333_4444, 0x5555_6666_0000_0000 | Self.one32)
    for (mode, expected) in [
      (0, 0x3eaa_aaab), (Self.up, 0x3eaa_aaab), (Self.down, 0x3eaa_aaaa), (Self.towardZero, 0x3eaa_aaaa),
    ] {
      let s = try run(Self.divss, x0: x0, x1: UInt128(Self.three32), mxcsr: Self.reset | mode)
      #expect(s.xmm(0) == v128(0x1111_2222_3333_4444, 0x5555_6666_0000_0000 | UInt64(expected)))
      #expect(s.cpu.state.fpu.mxcsr == Self.reset | mode | Self.pe)
    }
    // -1/3 packed in lane 1: up rounds toward zero (...aa), down away (...ab).
    let divps: [UInt8] = [0x0f, 0x5e, 0xc1]
    let minusOne = v128(0, 0xbf80_0000 << 32 | Self.one32)
    let threes = v128(Self.three32 << 32 | Self.three32, Self.three32 << 32 | Self.three32)  // 0/3 = 0 above
    #expect(
      try run(divps, x0: minusOne, x1: threes, mxcsr: Self.reset | Self.up).xmm(0) == v128(0, 0xbeaa_aaaa_3eaa_aaab))
    #expect(
      try run(divps, x0: minusOne, x1: threes, mxcsr: Self.reset | Self.down).xmm(0) == v128(0, 0xbeaa_aaab_3eaa_aaaa))
  }

  @Test func squareRootOfTwo() throws {
    // √2 = 1.41421356237309504880...; the nearest double 0x3ff6a09e667f3bcd lies above it.
    let s = try run(Self.sqrtsd, x0: 0, x1: UInt128(Self.two))
    #expect(s.xmm(0) == 0x3ff6_a09e_667f_3bcd && s.cpu.state.fpu.mxcsr == Self.reset | Self.pe)
    let z = try run(Self.sqrtsd, x0: 0, x1: UInt128(Self.two), mxcsr: Self.reset | Self.towardZero)
    #expect(z.xmm(0) == 0x3ff6_a09e_667f_3bcc)
    // √4 = 2 exactly: no PE.
    let e = try run(Self.sqrtsd, x0: 0, x1: UInt128(0x4010_0000_0000_0000))
    #expect(e.xmm(0) == UInt128(Self.two) && e.cpu.state.fpu.mxcsr == Self.reset)
    // √-1: invalid, the QNaN indefinite.
    let n = try run(Self.sqrtsd, x0: 0, x1: UInt128(0xbff0_0000_0000_0000))
    #expect(n.xmm(0) == UInt128(Self.indefinite) && n.cpu.state.fpu.mxcsr == Self.reset | Self.ie)
  }

  @Test func overflowByRoundingMode() throws {
    // DBL_MAX · 2 (table 4-10): nearest gives +∞, toward zero DBL_MAX; OE and PE either way.
    let s = try run(Self.mulsd, x0: UInt128(Self.maxDouble), x1: UInt128(Self.two))
    #expect(s.xmm(0) == UInt128(Self.infinity) && s.cpu.state.fpu.mxcsr == Self.reset | Self.oe | Self.pe)
    let z = try run(Self.mulsd, x0: UInt128(Self.maxDouble), x1: UInt128(Self.two), mxcsr: Self.reset | Self.towardZero)
    #expect(
      z.xmm(0) == UInt128(Self.maxDouble) && z.cpu.state.fpu.mxcsr == Self.reset | Self.towardZero | Self.oe | Self.pe)
  }

  @Test func underflowIsTininessAfterRounding() throws {
    // 2^-1022 · (1 - 2^-53) = 2^-1022 - 2^-1075: with an unbounded exponent this is exact and
    // below 2^-1022 (tiny); on the subnormal grid it is a tie that rounds to even, 2^-1022.
    let factor: UInt64 = 0x3fef_ffff_ffff_ffff
    let s = try run(Self.mulsd, x0: UInt128(Self.minNormal), x1: UInt128(factor))
    #expect(s.xmm(0) == UInt128(Self.minNormal) && s.cpu.state.fpu.mxcsr == Self.reset | Self.ue | Self.pe)
    let z = try run(Self.mulsd, x0: UInt128(Self.minNormal), x1: UInt128(factor), mxcsr: Self.reset | Self.towardZero)
    #expect(z.xmm(0) == 0x000f_ffff_ffff_ffff)
    // 2^-1022 · 0.5 = 2^-1023 is an exact subnormal: masked underflow reports nothing...
    let e = try run(Self.mulsd, x0: UInt128(Self.minNormal), x1: UInt128(Self.half))
    #expect(e.xmm(0) == 0x0008_0000_0000_0000 && e.cpu.state.fpu.mxcsr == Self.reset)
    // ...and FTZ makes it +0 with UE and PE (SDM Vol. 1, 10.2.3.3).
    let f = try run(Self.mulsd, x0: UInt128(Self.minNormal), x1: UInt128(Self.half), mxcsr: Self.reset | Self.ftz)
    #expect(f.xmm(0) == 0 && f.cpu.state.fpu.mxcsr == Self.reset | Self.ftz | Self.ue | Self.pe)
  }

  @Test func divideByZeroMaskedAndUnmasked() throws {
    let s = try run(Self.divsd, x0: UInt128(Self.one), x1: 0)
    #expect(s.xmm(0) == UInt128(Self.infinity) && s.cpu.state.fpu.mxcsr == Self.reset | Self.ze)
    // 0/0 is invalid, not a division by zero.
    let n = try run(Self.divsd, x0: 0, x1: 0)
    #expect(n.xmm(0) == UInt128(Self.indefinite) && n.cpu.state.fpu.mxcsr == Self.reset | Self.ie)
    // ZM clear: #XM (vector 19), destination untouched, ZE set, RIP at the instruction.
    let unmasked = Self.reset & ~0x200
    let (f, result) = try stepFault(Self.divsd) {
      $0.fpu.xmm[0] = UInt128(Self.one)
      $0.fpu.mxcsr = unmasked
    }
    #expect(result == .exception(X86Exception(vector: 19)))
    #expect(
      f.xmm(0) == UInt128(Self.one) && f.cpu.state.fpu.mxcsr == unmasked | Self.ze && f.cpu.state.rip == Layout.code)
    // Without CR4.OSXMMEXCPT the same condition is #UD.
    let (_, ud) = try stepFault(Self.divsd) {
      $0.fpu.xmm[0] = UInt128(Self.one)
      $0.fpu.mxcsr = unmasked
      $0.cr4 &= ~(1 << 10)
    }
    #expect(ud == .exception(.invalidOpcode))
  }

  @Test func nanOperands() throws {
    // Table 4-7: a NaN destination wins (quieted); an SNaN anywhere raises IE.
    let both = try run(Self.addsd, x0: UInt128(Self.quietNaN), x1: UInt128(Self.signalingNaN))
    #expect(both.xmm(0) == UInt128(Self.quietNaN) && both.cpu.state.fpu.mxcsr == Self.reset | Self.ie)
    let source = try run(Self.addsd, x0: UInt128(Self.one), x1: UInt128(Self.signalingNaN))
    #expect(source.xmm(0) == 0x7ff8_0000_0000_0001)
    // MINSD returns the source when either operand is a NaN, with IE even for a QNaN.
    let minimum = try run([0xf2, 0x0f, 0x5d, 0xc1], x0: UInt128(Self.quietNaN), x1: UInt128(Self.two))
    #expect(minimum.xmm(0) == UInt128(Self.two) && minimum.cpu.state.fpu.mxcsr == Self.reset | Self.ie)
    // x + (-x) is +0, but -0 when rounding down (IEEE 754, 6.3).
    let minusOne: UInt64 = 0xbff0_0000_0000_0000
    #expect(try run(Self.addsd, x0: UInt128(Self.one), x1: UInt128(minusOne)).xmm(0) == 0)
    #expect(
      try run(Self.addsd, x0: UInt128(Self.one), x1: UInt128(minusOne), mxcsr: Self.reset | Self.down).xmm(0)
        == 0x8000_0000_0000_0000)
  }

  @Test func denormalOperands() throws {
    // The smallest denormal + 0: DE without DAZ (result the denormal), +0 and no flag with DAZ.
    let s = try run(Self.addsd, x0: 1, x1: 0)
    #expect(s.xmm(0) == 1 && s.cpu.state.fpu.mxcsr == Self.reset | Self.de)
    let d = try run(Self.addsd, x0: 1, x1: 0, mxcsr: Self.reset | Self.daz)
    #expect(d.xmm(0) == 0 && d.cpu.state.fpu.mxcsr == Self.reset | Self.daz)
  }

  @Test func orderedCompares() throws {
    let ucomisd: [UInt8] = [0x66, 0x0f, 0x2e, 0xc1]
    let comisd: [UInt8] = [0x66, 0x0f, 0x2f, 0xc1]
    let statusSet: (inout X86State) -> Void = { $0.rflags = 0x8d5 }  // CF PF AF ZF SF OF set
    // 1 < 2: CF only; OF SF AF cleared.
    let less = try run(ucomisd, x0: UInt128(Self.one), x1: UInt128(Self.two), setup: statusSet)
    #expect(less.rflags == F.fixed | F.cf)
    let greater = try run(ucomisd, x0: UInt128(Self.two), x1: UInt128(Self.one), setup: statusSet)
    #expect(greater.rflags == F.fixed)
    let equal = try run(comisd, x0: UInt128(Self.two), x1: UInt128(Self.two))
    #expect(equal.rflags == F.fixed | F.zf)
    // Unordered: ZF PF CF; UCOMISD is quiet on a QNaN, COMISD signals IE.
    let quiet = try run(ucomisd, x0: UInt128(Self.quietNaN), x1: UInt128(Self.one))
    #expect(quiet.rflags == F.fixed | F.zf | F.pf | F.cf && quiet.cpu.state.fpu.mxcsr == Self.reset)
    let signalling = try run(comisd, x0: UInt128(Self.quietNaN), x1: UInt128(Self.one))
    #expect(signalling.cpu.state.fpu.mxcsr == Self.reset | Self.ie)
    // cmpltps: [1, 2, NaN, 3] < [2, 2, 1, NaN] = [T, F, F, F], IE from the NaNs.
    let nan32: UInt64 = 0x7fc0_0000
    let x = v128(0x4040_0000 << 32 | nan32, 0x4000_0000 << 32 | Self.one32)
    let y = v128(nan32 << 32 | Self.one32, 0x4000_0000 << 32 | 0x4000_0000)
    let c = try run([0x0f, 0xc2, 0xc1, 0x01], x0: x, x1: y)
    #expect(c.xmm(0) == v128(0, 0x0000_0000_ffff_ffff) && c.cpu.state.fpu.mxcsr == Self.reset | Self.ie)
    // cmpunordps on the same: lanes 2 and 3; quiet NaNs raise nothing.
    let u = try run([0x0f, 0xc2, 0xc1, 0x03], x0: x, x1: y)
    #expect(u.xmm(0) == v128(~0, 0) && u.cpu.state.fpu.mxcsr == Self.reset)
  }

  @Test func integerConversions() throws {
    // cvtsi2sd xmm0, rax with 2^53 + 1: nearest (even) 2^53, up 2^53 + 2; PE.
    let cvtsi2sd: [UInt8] = [0xf2, 0x48, 0x0f, 0x2a, 0xc0]
    let big: (inout X86State) -> Void = { $0[.rax] = 9_007_199_254_740_993 }
    let n = try run(cvtsi2sd, x0: 0, x1: 0, setup: big)
    #expect(n.xmm(0) == 0x4340_0000_0000_0000 && n.cpu.state.fpu.mxcsr == Self.reset | Self.pe)
    #expect(try run(cvtsi2sd, x0: 0, x1: 0, mxcsr: Self.reset | Self.up, setup: big).xmm(0) == 0x4340_0000_0000_0001)
    // cvttsd2si rax, xmm0: out of range is the integer indefinite with IE; -2.75 truncates to -2.
    let cvttsd2si: [UInt8] = [0xf2, 0x48, 0x0f, 0x2c, 0xc0]
    let huge = try run(cvttsd2si, x0: 0x4415_af1d_78b5_8c40, x1: 0)  // 1e20
    #expect(huge.reg(.rax) == 0x8000_0000_0000_0000 && huge.cpu.state.fpu.mxcsr == Self.reset | Self.ie)
    let negative = try run(cvttsd2si, x0: 0xc006_0000_0000_0000, x1: 0)
    #expect(negative.reg(.rax) == 0xffff_ffff_ffff_fffe && negative.cpu.state.fpu.mxcsr == Self.reset | Self.pe)
    // cvtsd2si eax, xmm0 rounds by MXCSR: 2.5 → 2, 3.5 → 4 (to even); -2.5 rounding down → -3.
    let cvtsd2si: [UInt8] = [0xf2, 0x0f, 0x2d, 0xc0]
    #expect(try run(cvtsd2si, x0: 0x4004_0000_0000_0000, x1: 0).reg(.rax) == 2)
    #expect(try run(cvtsd2si, x0: 0x400c_0000_0000_0000, x1: 0).reg(.rax) == 4)
    #expect(try run(cvtsd2si, x0: 0xc004_0000_0000_0000, x1: 0, mxcsr: Self.reset | Self.down).reg(.rax) == 0xffff_fffd)
    // cvtdq2ps [1, -1, 2^24 + 1, 0] (2^24 + 1 rounds to 2^24, PE).
    let ints = v128(0x0000_0000_0100_0001, 0xffff_ffff_0000_0001)
    let f = try run([0x0f, 0x5b, 0xc1], x0: 0, x1: ints)
    #expect(
      f.xmm(0) == v128(0x0000_0000_4b80_0000, 0xbf80_0000_3f80_0000) && f.cpu.state.fpu.mxcsr == Self.reset | Self.pe)
    // cvttps2dq [1.5, -1.5, 3e9, NaN] = [1, -1, indefinite, indefinite], IE.
    let floats = v128(0x7fc0_0000_4f32_d05e, 0xbfc0_0000_3fc0_0000)
    let t = try run([0xf3, 0x0f, 0x5b, 0xc1], x0: 0, x1: floats)
    #expect(t.xmm(0) == v128(0x8000_0000_8000_0000, 0xffff_ffff_0000_0001))
    #expect(t.cpu.state.fpu.mxcsr == Self.reset | Self.ie | Self.pe)
  }

  @Test func precisionConversions() throws {
    // cvtss2sd 1.5 = 0x3ff8...; an SNaN becomes the QNaN with its payload moved up, IE.
    #expect(try run([0xf3, 0x0f, 0x5a, 0xc1], x0: 0, x1: 0x3fc0_0000).xmm(0) == 0x3ff8_0000_0000_0000)
    let snan = try run([0xf3, 0x0f, 0x5a, 0xc1], x0: 0, x1: 0x7f80_0001)
    #expect(snan.xmm(0) == 0x7ff8_0000_2000_0000 && snan.cpu.state.fpu.mxcsr == Self.reset | Self.ie)
    // cvtsd2ss of the double nearest 1/3: the single nearest 1/3, PE. DBL_MAX overflows.
    let third = try run([0xf2, 0x0f, 0x5a, 0xc1], x0: 0, x1: 0x3fd5_5555_5555_5555)
    #expect(third.xmm(0) == 0x3eaa_aaab && third.cpu.state.fpu.mxcsr == Self.reset | Self.pe)
    let over = try run([0xf2, 0x0f, 0x5a, 0xc1], x0: 0, x1: UInt128(Self.maxDouble))
    #expect(over.xmm(0) == 0x7f80_0000 && over.cpu.state.fpu.mxcsr == Self.reset | Self.oe | Self.pe)
    // 2^-149 (the smallest single denormal) exactly: UE not reported (exact), value kept.
    let tiny = try run([0xf2, 0x0f, 0x5a, 0xc1], x0: 0, x1: 0x36a0_0000_0000_0000)
    #expect(tiny.xmm(0) == 1 && tiny.cpu.state.fpu.mxcsr == Self.reset)
  }

  @Test func packedArithmeticAndReciprocal() throws {
    // addps [1, 2, 3, 4] + [1, 1, 1, 1] = [2, 3, 4, 5].
    let x = v128(0x4080_0000_4040_0000, 0x4000_0000_3f80_0000)
    let ones = v128(0x3f80_0000_3f80_0000, 0x3f80_0000_3f80_0000)
    #expect(try run([0x0f, 0x58, 0xc1], x0: x, x1: ones).xmm(0) == v128(0x40a0_0000_4080_0000, 0x4040_0000_4000_0000))
    // subpd [2, 1] - [1, 1] = [1, 0].
    #expect(
      try run([0x66, 0x0f, 0x5c, 0xc1], x0: v128(Self.two, Self.one), x1: v128(Self.one, Self.one)).xmm(0)
        == v128(Self.one, 0))
    // rcpss 4 = 0.25 (exact in this model); rsqrtps of -1 is the indefinite, of +0 is +∞.
    #expect(try run([0xf3, 0x0f, 0x53, 0xc1], x0: 0, x1: 0x4080_0000).xmm(0) == 0x3e80_0000)
    let r = try run([0x0f, 0x52, 0xc1], x0: 0, x1: v128(0, 0xbf80_0000))
    #expect(r.xmm(0) == v128(0x7f80_0000_7f80_0000, 0x7f80_0000_ffc0_0000))
  }

  @Test func mxcsrLoadAndStore() throws {
    // ldmxcsr [rax]; reserved bits (16-31) are #GP(0).
    let s = try makeSandbox([0x0f, 0xae, 0x10]) { $0[.rax] = Layout.data }
    try s.store32(0x7f80 | 0x40, Layout.data)
    #expect(s.cpu.step() == .retired && s.cpu.state.fpu.mxcsr == 0x7fc0)
    let bad = try makeSandbox([0x0f, 0xae, 0x10]) { $0[.rax] = Layout.data }
    try bad.store32(0x1_1f80, Layout.data)
    #expect(bad.cpu.step() == .exception(.generalProtection(0)) && bad.cpu.state.fpu.mxcsr == Self.reset)
    // stmxcsr [rax+4].
    let t = try run([0x0f, 0xae, 0x58, 0x04], x0: 0, x1: 0, mxcsr: 0x1fa3) { $0[.rax] = Layout.data }
    #expect(try t.load32(Layout.data + 4) == 0x1fa3)
  }
}
