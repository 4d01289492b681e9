import GuestMemory
import Testing

@testable import X86

/// The x87 FPU. Expected register images are worked out by hand from the 80-bit format (SDM
/// Vol. 1, 4.2.2 and 8.2): value = significand · 2^(exponent - 16383 - 63), with the integer
/// bit explicit. Stack, tag and exception rules: SDM Vol. 1, 8.1-8.5; #MF: 8.6.
struct X87Tests {
  static let ie: UInt16 = 0x1, ze: UInt16 = 0x4, pe: UInt16 = 0x20, sf: UInt16 = 0x40, es: UInt16 = 0x80
  static let c0: UInt16 = 0x100, c1: UInt16 = 0x200, c2: UInt16 = 0x400, c3: UInt16 = 0x4000, busy: UInt16 = 0x8000
  static let indefinite = X87Register(significand: 0xc000_0000_0000_0000, signExponent: 0xffff)

  /// Runs `count` instructions, each expected to retire.
  func run(_ code: [UInt8], count: Int, setup: (inout X86State) -> Void = { _ in }) throws -> X86Sandbox {
    let s = try makeSandbox(code) {
      $0[.rax] = Layout.data
      setup(&$0)
    }
    for _ in 0..<count { #expect(s.cpu.step() == .retired) }
    return s
  }

  /// ST(i) as stored.
  func st(_ s: X86Sandbox, _ i: Int) -> X87Register {
    let top = Int((s.cpu.state.fpu.fsw >> 11) & 7)
    return s.cpu.state.fpu.st[(top + i) & 7]
  }

  func top(_ s: X86Sandbox) -> Int { Int((s.cpu.state.fpu.fsw >> 11) & 7) }

  @Test func constantsAndAddition() throws {
    // fld1; fldpi; faddp st1, st0. FLDPI gives c90fdaa22168c235 · 2^-62; adding 2^62 units and
    // renormalising by one bit leaves a tie (the dropped bit is 1) that rounds to the even
    // 8487ed5110b4611a, with PE.
    let s = try run([0xd9, 0xe8, 0xd9, 0xeb, 0xde, 0xc1], count: 3)
    #expect(st(s, 0) == X87Register(significand: 0x8487_ed51_10b4_611a, signExponent: 0x4001))
    #expect(top(s) == 7 && s.cpu.state.fpu.ftw == 0x80)
    #expect(s.cpu.state.fpu.fsw & 0x3f == Self.pe)
  }

  @Test func constantsFollowRoundingControl() throws {
    // log2(e) = b8aa3b295c17f0bb be87...: nearest rounds up to ...bc, down keeps ...bb.
    let nearest = try run([0xd9, 0xea], count: 1)
    #expect(st(nearest, 0).significand == 0xb8aa_3b29_5c17_f0bc)
    let down = try run([0xd9, 0xea], count: 1) { $0.fpu.fcw = 0x077f }
    #expect(st(down, 0).significand == 0xb8aa_3b29_5c17_f0bb)
  }

  @Test func loadAndStoreReals() throws {
    // fld qword [rax] (1.5); fstp dword [rax+8]: 1.5 = c000... · 2^0 as extended, 3fc00000 as single.
    let s = try makeSandbox([0xdd, 0x00, 0xd9, 0x58, 0x08]) { $0[.rax] = Layout.data }
    try s.store64(0x3ff8_0000_0000_0000, Layout.data)
    #expect(s.cpu.step() == .retired)
    #expect(st(s, 0) == X87Register(significand: 0xc000_0000_0000_0000, signExponent: 0x3fff))
    #expect(s.cpu.step() == .retired)
    #expect(try s.load32(Layout.data + 8) == 0x3fc0_0000)
    #expect(top(s) == 0 && s.cpu.state.fpu.ftw == 0)
    // fldpi; fstp tbyte [rax]: the raw 80 bits.
    let t = try run([0xd9, 0xeb, 0xdb, 0x38], count: 2)
    #expect(try t.load64(Layout.data) == 0xc90f_daa2_2168_c235 && t.load16(Layout.data + 8) == 0x4000)
    // fldpi; fstp qword [rax]: pi rounded to double, 400921fb54442d18.
    let d = try run([0xd9, 0xeb, 0xdd, 0x18], count: 2)
    #expect(try d.load64(Layout.data) == 0x4009_21fb_5444_2d18)
  }

  @Test func integerLoadsAndStores() throws {
    // fild dword [rax] (-7); fistp word [rax+8].
    let s = try makeSandbox([0xdb, 0x00, 0xdf, 0x58, 0x08]) { $0[.rax] = Layout.data }
    try s.store32(0xffff_fff9, Layout.data)
    #expect(s.cpu.step() == .retired && s.cpu.step() == .retired)
    #expect(try s.load16(Layout.data + 8) == 0xfff9)
    // fild qword of 2^63 - 1: exact, significand ffff...fffe at exponent 62.
    let q = try makeSandbox([0xdf, 0x28]) { $0[.rax] = Layout.data }
    try q.store64(0x7fff_ffff_ffff_ffff, Layout.data)
    #expect(q.cpu.step() == .retired)
    #expect(st(q, 0) == X87Register(significand: 0xffff_ffff_ffff_fffe, signExponent: 0x3fff + 62))
    // fld qword 2.5; fistp dword: nearest-even 2, or 3 rounding up; 1e10 is out of range.
    func fistp(_ value: UInt64, fcw: UInt16) throws -> (UInt32, UInt16) {
      let s = try makeSandbox([0xdd, 0x00, 0xdb, 0x58, 0x08]) {
        $0[.rax] = Layout.data
        $0.fpu.fcw = fcw
      }
      try s.store64(value, Layout.data)
      #expect(s.cpu.step() == .retired && s.cpu.step() == .retired)
      return (try s.load32(Layout.data + 8), s.cpu.state.fpu.fsw)
    }
    #expect(try fistp(0x4004_0000_0000_0000, fcw: 0x037f) == (2, Self.pe))
    #expect(try fistp(0x4004_0000_0000_0000, fcw: 0x0b7f) == (3, Self.pe))
    #expect(try fistp(0x4202_a05f_2000_0000, fcw: 0x037f) == (0x8000_0000, Self.ie))  // 1e10
  }

  @Test func divideByZeroMaskedAndUnmasked() throws {
    // fld1; fldz; fdivp st1, st0 (ST1 / ST0 = 1/0): +∞ with ZE, one register left.
    let s = try run([0xd9, 0xe8, 0xd9, 0xee, 0xde, 0xf9], count: 3)
    #expect(st(s, 0) == X87Register(significand: 0x8000_0000_0000_0000, signExponent: 0x7fff))
    #expect(s.cpu.state.fpu.fsw & 0xff == Self.ze && top(s) == 7)
    // ZM clear: ZE, ES and B set, nothing stored or popped; the next FWAIT raises #MF (16).
    let u = try run([0xd9, 0xe8, 0xd9, 0xee, 0xde, 0xf9, 0x9b], count: 3) { $0.fpu.fcw = 0x037b }
    #expect(u.cpu.state.fpu.fsw & 0xff == Self.ze | Self.es && u.cpu.state.fpu.fsw & Self.busy != 0)
    #expect(top(u) == 6 && st(u, 1) == X87Register(significand: 0x8000_0000_0000_0000, signExponent: 0x3fff))
    #expect(u.cpu.step() == .exception(X86Exception(vector: 16)))
    // FNSTSW AX does not wait; FNCLEX clears the exception.
    let n = try run([0xd9, 0xe8, 0xd9, 0xee, 0xde, 0xf9, 0xdf, 0xe0, 0xdb, 0xe2, 0x9b], count: 6) {
      $0.fpu.fcw = 0x037b
    }
    #expect(n.reg(.rax) & 0xff == UInt64(Self.ze | Self.es))
  }

  @Test func stackOverflowAndUnderflow() throws {
    // Every register full: fld1 overflows: IE, SF, C1 = 1, the indefinite pushed (IM masked).
    let o = try run([0xd9, 0xe8], count: 1) { $0.fpu.ftw = 0xff }
    #expect(o.cpu.state.fpu.fsw & (0xff | Self.c1) == Self.ie | Self.sf | Self.c1)
    #expect(top(o) == 7 && st(o, 0) == Self.indefinite)
    // Empty: fadd st0, st1 underflows: IE, SF, C1 = 0, ST0 the indefinite.
    let u = try run([0xd8, 0xc1], count: 1)
    #expect(u.cpu.state.fpu.fsw & (0xff | Self.c1) == Self.ie | Self.sf && st(u, 0) == Self.indefinite)
  }

  @Test func comparesIntoEFLAGSAndConditionCodes() throws {
    // fld1 (ST1 after the next push); fild of 2... use fld1, fld1, fadd st0, st1 → ST0 = 2, ST1 = 1.
    // fcomip st0, st1: 2 > 1, so ZF PF CF all clear; popped once.
    let s = try run([0xd9, 0xe8, 0xd9, 0xe8, 0xd8, 0xc1, 0xdf, 0xf1], count: 4) { $0.rflags = 0x8d5 }
    #expect(s.rflags == F.fixed && top(s) == 7)
    // fld1; fldz; fcom st1 (0 < 1): C0; fnstsw ax.
    let c = try run([0xd9, 0xe8, 0xd9, 0xee, 0xd8, 0xd1, 0xdf, 0xe0], count: 4)
    #expect(c.reg(.rax) & UInt64(Self.c0 | Self.c2 | Self.c3) == UInt64(Self.c0))
    // A NaN: fldz; fldz; fdiv st0, st1 (0/0 → indefinite, IE); fucomi st0, st1: unordered.
    let n = try run([0xd9, 0xee, 0xd9, 0xee, 0xd8, 0xf1, 0xdb, 0xe9], count: 4)
    #expect(n.rflags == F.fixed | F.zf | F.pf | F.cf && n.cpu.state.fpu.fsw & Self.ie != 0)
  }

  @Test func signSquareRootAndRounding() throws {
    // fld1; fadd st0, st0 (2); fsqrt: √2 = b504f333f9de6484 597d... → ...6484 to nearest, PE.
    let s = try run([0xd9, 0xe8, 0xd8, 0xc0, 0xd9, 0xfa], count: 3)
    #expect(st(s, 0) == X87Register(significand: 0xb504_f333_f9de_6484, signExponent: 0x3fff))
    #expect(s.cpu.state.fpu.fsw & Self.pe != 0)
    // fld1; fchs; fabs; fchs: -1.
    let c = try run([0xd9, 0xe8, 0xd9, 0xe0, 0xd9, 0xe1, 0xd9, 0xe0], count: 4)
    #expect(st(c, 0) == X87Register(significand: 0x8000_0000_0000_0000, signExponent: 0xbfff))
    // fld qword 2.5; frndint: 2 (nearest even), PE.
    let r = try makeSandbox([0xdd, 0x00, 0xd9, 0xfc]) { $0[.rax] = Layout.data }
    try r.store64(0x4004_0000_0000_0000, Layout.data)
    #expect(r.cpu.step() == .retired && r.cpu.step() == .retired)
    #expect(st(r, 0) == X87Register(significand: 0x8000_0000_0000_0000, signExponent: 0x4000))
  }

  @Test func exchangeMoveAndClassify() throws {
    // fld1; fldz; fxch st1: ST0 = 1, ST1 = 0.
    let x = try run([0xd9, 0xe8, 0xd9, 0xee, 0xd9, 0xc9], count: 3)
    #expect(st(x, 0).signExponent == 0x3fff && st(x, 1) == X87Register())
    // fcmovb st0, st1 with CF set copies.
    let m = try run([0xd9, 0xe8, 0xd9, 0xee, 0xda, 0xc1], count: 3) { $0.rflags = 0x3 }
    #expect(st(m, 0).signExponent == 0x3fff)
    // fxam: empty → C3 C0; -0 → C3 and C1 (sign).
    let e = try run([0xd9, 0xe5], count: 1)
    #expect(e.cpu.state.fpu.fsw & (Self.c0 | Self.c2 | Self.c3) == Self.c3 | Self.c0)
    let z = try run([0xd9, 0xee, 0xd9, 0xe0, 0xd9, 0xe5], count: 3)
    #expect(z.cpu.state.fpu.fsw & (Self.c0 | Self.c1 | Self.c2 | Self.c3) == Self.c3 | Self.c1)
  }

  @Test func partialRemainder() throws {
    // fild 3; fild 7; fprem: 7 = 2·3 + 1, so ST0 = 1, C2 clear, quotient bits C0 C3 C1 = 0 1 0.
    let s = try makeSandbox([0xdb, 0x00, 0xdb, 0x40, 0x04, 0xd9, 0xf8]) { $0[.rax] = Layout.data }
    try s.store32(3, Layout.data)
    try s.store32(7, Layout.data + 4)
    for _ in 0..<3 { #expect(s.cpu.step() == .retired) }
    #expect(st(s, 0) == X87Register(significand: 0x8000_0000_0000_0000, signExponent: 0x3fff))
    #expect(s.cpu.state.fpu.fsw & (Self.c0 | Self.c1 | Self.c2 | Self.c3) == Self.c3)
  }

  @Test func controlWordAndInit() throws {
    // fldcw [rax] with 0: bit 6 reads back as 1 (fnstcw [rax+2]).
    let s = try run([0xd9, 0x28, 0xd9, 0x78, 0x02], count: 2)
    #expect(try s.load16(Layout.data + 2) == 0x0040)
    // fninit after work: FCW 037f, FSW 0, all empty.
    let i = try run([0xd9, 0xe8, 0xdb, 0xe3], count: 2) { $0.fpu.fcw = 0 }
    #expect(i.cpu.state.fpu.fcw == 0x037f && i.cpu.state.fpu.fsw == 0 && i.cpu.state.fpu.ftw == 0)
  }

  @Test func saveAndRestore() throws {
    // fld1; fldz; fnsave [rax]: tag word (full) has R7 = valid (00), R6 = zero (01), others empty.
    let s = try run([0xd9, 0xe8, 0xd9, 0xee, 0xdd, 0x30], count: 3)
    #expect(try s.load16(Layout.data + 8) == 0b0001_1111_1111_1111)
    #expect(try s.load16(Layout.data + 4) == 6 << 11)  // FSW with TOP = 6
    // ST0 (0) at 28, ST1 (1.0) at 38.
    #expect(try s.load64(Layout.data + 38) == 0x8000_0000_0000_0000 && s.load16(Layout.data + 46) == 0x3fff)
    // FNSAVE reinitialised the FPU; FRSTOR [rax] brings the two registers back.
    #expect(s.cpu.state.fpu.ftw == 0)
    try s.load(code: [0xdd, 0x20], at: Layout.code)
    s.cpu.state.rip = Layout.code
    #expect(s.cpu.step() == .retired)
    #expect(top(s) == 6 && s.cpu.state.fpu.ftw == 0xc0 && st(s, 1).signExponent == 0x3fff)
  }

  @Test func deviceNotAvailable() throws {
    // CR0.TS (or EM): x87 instructions are #NM; FWAIT only when MP is set too.
    let (_, ts) = try stepFault([0xd9, 0xe8]) { $0.cr0 |= 1 << 3 }
    #expect(ts == .exception(X86Exception(vector: 7)))
    try stepOne([0x9b]) { $0.cr0 |= 1 << 3 }
    let (_, wait) = try stepFault([0x9b]) { $0.cr0 |= 1 << 3 | 1 << 1 }
    #expect(wait == .exception(X86Exception(vector: 7)))
  }
}
