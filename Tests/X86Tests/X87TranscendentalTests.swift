import GuestMemory
import Testing

@testable import X86

/// The x87 transcendentals. Expected values come from identities and known constants, not
/// from the implementation: the SDM allows one unit in the last place (Vol. 1, 8.3.10), so
/// irrational results are compared within 2 units of the 64-bit significand.
struct X87TranscendentalTests {
  let x87 = X87Tests()

  /// `value` as the 80-bit register the CPU holds (the stack set up by hand: TOP = 7 - n).
  func sandbox(_ code: [UInt8], stack: [Float80]) throws -> X86Sandbox {
    try makeSandbox(code) { state in
      let top = (8 - stack.count) & 7
      state.fpu.fsw = UInt16(top) << 11
      for (i, value) in stack.enumerated() {
        state.fpu.st[(top + i) & 7] = X87Register(value)
        state.fpu.ftw |= 1 << UInt8((top + i) & 7)
      }
    }
  }

  func value(_ s: X86Sandbox, _ i: Int) -> Float80 { x87.st(s, i).float80 }

  func close(_ a: Float80, _ b: Float80, ulps: Float80 = 2) -> Bool { (a - b).magnitude <= ulps * b.ulp }

  @Test func sineCosineAndTangentAtZeroAreExact() throws {
    // fsin; fcos; fptan on 0: 0, 1 and 0 then a pushed 1.0, with no PE (exact results).
    let sine = try sandbox([0xd9, 0xfe], stack: [0])
    #expect(sine.cpu.step() == .retired && value(sine, 0) == 0 && sine.cpu.state.fpu.fsw & X87Tests.pe == 0)
    let cosine = try sandbox([0xd9, 0xff], stack: [0])
    #expect(cosine.cpu.step() == .retired && value(cosine, 0) == 1 && cosine.cpu.state.fpu.fsw & X87Tests.pe == 0)
    let tangent = try sandbox([0xd9, 0xf2], stack: [0])
    #expect(tangent.cpu.step() == .retired)
    #expect(value(tangent, 0) == 1 && value(tangent, 1) == 0)  // FPTAN pushes 1.0 over tan 0
  }

  @Test func sineAndCosineKeepTheirIdentity() throws {
    // fsincos on 0.5: ST0 = cos, ST1 = sin; sin² + cos² = 1, and sin(0.5) is 0.4794255386042030002...
    let s = try sandbox([0xd9, 0xfb], stack: [0.5])
    #expect(s.cpu.step() == .retired)
    let cosine = value(s, 0)
    let sine = value(s, 1)
    #expect(close(sine * sine + cosine * cosine, 1, ulps: 4))
    #expect(close(sine, 0.479425538604203000273287935215571388))
    #expect(s.cpu.state.fpu.fsw & X87Tests.pe != 0)
  }

  @Test func argumentsBeyondTwoToThe63SetC2AndStay() throws {
    // SDM Vol. 2, FSIN: |x| ≥ 2^63 sets C2 and leaves ST0 unchanged, with no exception.
    let s = try sandbox([0xd9, 0xfe], stack: [0x1p63])
    #expect(s.cpu.step() == .retired)
    #expect(value(s, 0) == 0x1p63 && s.cpu.state.fpu.fsw & X87Tests.c2 != 0 && s.cpu.state.fpu.fsw & 0x3f == 0)
  }

  @Test func arctangentGivesTheQuadrant() throws {
    // fpatan: ST1 ← arctan(ST1 / ST0), pop. (1, 1) is π/4; (1, -1) is 3π/4 (SDM table 3-29).
    let s = try sandbox([0xd9, 0xf3], stack: [1, 1])
    #expect(s.cpu.step() == .retired)
    #expect(close(value(s, 0), Float80.pi / 4))
    #expect(x87.top(s) == 7)  // one popped: one register left
    let q2 = try sandbox([0xd9, 0xf3], stack: [-1, 1])
    #expect(q2.cpu.step() == .retired)
    #expect(close(value(q2, 0), 3 * Float80.pi / 4))
  }

  @Test func twoToTheXMinusOne() throws {
    // f2xm1: 2^1 - 1 = 1 and 2^-1 - 1 = -0.5 exactly; 2^0.5 - 1 = √2 - 1 = 0.41421356237309504880...
    for (x, expected) in [(Float80(1), Float80(1)), (-1, -0.5)] {
      let s = try sandbox([0xd9, 0xf0], stack: [x])
      #expect(s.cpu.step() == .retired && value(s, 0) == expected)
    }
    let half = try sandbox([0xd9, 0xf0], stack: [0.5])
    #expect(half.cpu.step() == .retired)
    #expect(close(value(half, 0), 0.414213562373095048801688724209698079))
  }

  @Test func logarithms() throws {
    // fyl2x with ST0 = 8, ST1 = 3: 3 · log2 8 = 9 exactly, popped into ST0.
    let s = try sandbox([0xd9, 0xf1], stack: [8, 3])
    #expect(s.cpu.step() == .retired)
    #expect(value(s, 0) == 9 && s.cpu.state.fpu.fsw & 0x3f == 0)
    // A negative ST0 is an invalid operation: IE, and (masked) the indefinite.
    let negative = try sandbox([0xd9, 0xf1], stack: [-2, 1])
    #expect(negative.cpu.step() == .retired)
    #expect(x87.st(negative, 0) == X87Tests.indefinite && negative.cpu.state.fpu.fsw & X87Tests.ie != 0)
    // log2(0) = -∞: ZE, and y · -∞ with y = 2 is -∞.
    let zero = try sandbox([0xd9, 0xf1], stack: [0, 2])
    #expect(zero.cpu.step() == .retired)
    #expect(value(zero, 0) == -.infinity && zero.cpu.state.fpu.fsw & X87Tests.ze != 0)
    // fyl2xp1 with ST0 = 0.25, ST1 = 1: log2(1.25) = 0.32192809488736234787...
    let plusOne = try sandbox([0xd9, 0xf9], stack: [0.25, 1])
    #expect(plusOne.cpu.step() == .retired)
    #expect(close(value(plusOne, 0), 0.321928094887362347870319429489390176))
  }

  @Test func anEmptyRegisterIsAStackUnderflow() throws {
    // fsin on an empty ST0: IE and SF with C1 = 0, and the indefinite (masked).
    let s = try sandbox([0xd9, 0xfe], stack: [])
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.state.fpu.fsw & (X87Tests.ie | X87Tests.sf) == X87Tests.ie | X87Tests.sf)
    #expect(x87.st(s, 0) == X87Tests.indefinite)
  }
}
