import GuestMemory
import Testing

@testable import X86

/// What the differential tester (x86-difftest --forms simd) found about SSE/SSE2 on the host
/// CPU, each checked here against the SDM's rule it refines. Every expected value was worked
/// out by hand from IEEE 754 and then matched by the hardware.
struct SSEDifferentialFindingsTests {
  static let reset: UInt32 = 0x1f80
  static let maxSingle: UInt64 = 0x7f7f_ffff

  func run(_ code: [UInt8], x0: UInt128, x1: UInt128, mxcsr: UInt32, setup: (inout X86State) -> Void = { _ in })
    throws -> (X86Sandbox, StepResult)
  {
    try stepFault(code) {
      $0.fpu.xmm[0] = x0
      $0.fpu.xmm[1] = x1
      $0.fpu.mxcsr = mxcsr
      setup(&$0)
    }
  }

  /// Overflow is decided on the result rounded by the actual mode with unbounded exponent (SDM
  /// Vol. 1, 4.9.1.4): -max + -(half an ulp) overflows to nearest, but rounding up it is -max,
  /// inexact, with no OE.
  @Test func overflowDependsOnTheRoundingMode() throws {
    let addss: [UInt8] = [0xf3, 0x0f, 0x58, 0xc1]
    let minusMax = UInt128(0xff7f_ffff)
    let minusHalfUlp = UInt128(0xf300_0000)  // -2^103, half an ulp of FLT_MAX (2^104)
    let (n, _) = try run(addss, x0: minusMax, x1: minusHalfUlp, mxcsr: Self.reset)
    #expect(n.xmm(0) == 0xff80_0000 && n.cpu.state.fpu.mxcsr == Self.reset | 0x28)  // -∞, OE PE
    let (u, _) = try run(addss, x0: minusMax, x1: minusHalfUlp, mxcsr: Self.reset | 0x4000)
    #expect(u.xmm(0) == minusMax && u.cpu.state.fpu.mxcsr == Self.reset | 0x4000 | 0x20)  // PE only
  }

  /// With OE unmasked no result is stored, and PE says whether the rounding with unbounded
  /// exponent was inexact: max · 2 is exact (OE alone), max · 3 is not (OE and PE).
  @Test func unmaskedOverflowReportsPrecisionOnlyWhenInexact() throws {
    let mulss: [UInt8] = [0xf3, 0x0f, 0x59, 0xc1]
    let unmaskedOverflow = Self.reset & ~0x400
    let (exact, result) = try run(mulss, x0: UInt128(Self.maxSingle), x1: 0x4000_0000, mxcsr: unmaskedOverflow)
    #expect(result == .exception(X86Exception(vector: 19)))
    #expect(exact.cpu.state.fpu.mxcsr == unmaskedOverflow | 0x08 && exact.xmm(0) == UInt128(Self.maxSingle))
    let (inexact, _) = try run(mulss, x0: UInt128(Self.maxSingle), x1: 0x4040_0000, mxcsr: unmaskedOverflow)
    #expect(inexact.cpu.state.fpu.mxcsr == unmaskedOverflow | 0x28)
  }

  /// An invalid operation or a division by zero hides a denormal operand in the same element
  /// (SDM Vol. 1, 4.9.2): √(-denormal) raises IE alone; ∞ / denormal-under-DAZ is ∞ with no ZE.
  @Test func exceptionPriorityWithinAnElement() throws {
    let (s, _) = try run([0xf3, 0x0f, 0x51, 0xc1], x0: 0, x1: 0x8000_0001, mxcsr: Self.reset)
    #expect(s.xmm(0) == 0xffc0_0000 && s.cpu.state.fpu.mxcsr == Self.reset | 0x01)
    let (d, _) = try run([0xf3, 0x0f, 0x5e, 0xc1], x0: 0x7f80_0000, x1: 1, mxcsr: Self.reset | 0x40)
    #expect(d.xmm(0) == 0x7f80_0000 && d.cpu.state.fpu.mxcsr == Self.reset | 0x40)
  }

  /// +0 + +0 is +0 in every rounding mode (only opposite signs give -0 rounding down).
  @Test func sameSignedZerosKeepTheirSign() throws {
    let (s, _) = try run([0x0f, 0x58, 0xc1], x0: 0, x1: 0, mxcsr: Self.reset | 0x2000)
    #expect(s.xmm(0) == 0)
  }

  /// MINPS/MAXPS return the source when an operand is a NaN, as read: under DAZ a denormal
  /// source comes back as zero.
  @Test func minMaxNaNReturnsTheSourceAfterDAZ() throws {
    let (s, _) = try run([0x0f, 0x5d, 0xc1], x0: 0x7f80_0001, x1: 0x0057_071f, mxcsr: Self.reset | 0x40)
    #expect(s.xmm(0) == 0 && s.cpu.state.fpu.mxcsr == Self.reset | 0x40 | 0x01)
  }

  /// √ of a small single (near FLT_MIN) rounds correctly: √(2^-126 · 1.5) to nearest.
  @Test func squareRootOfASmallInput() throws {
    // 1.5 · 2^-126 = 0x00c00000; its root 1.2247448713915890 · 2^-63 = 0x201cc471 (nearest).
    let (s, _) = try run([0xf3, 0x0f, 0x51, 0xc1], x0: 0, x1: 0x00c0_0000, mxcsr: Self.reset)
    #expect(s.xmm(0) == 0x201c_c471)
  }

  /// The aligned forms' #GP(0) comes before the canonical check: a misaligned non-canonical
  /// stack reference is #GP(0), not #SS(0).
  @Test func alignmentFaultBeforeCanonicalFault() throws {
    let (_, result) = try run([0x66, 0x0f, 0x6f, 0x45, 0x01], x0: 0, x1: 0, mxcsr: Self.reset) {
      $0[.rbp] = 0x8000_0000_0000_0000  // movdqa xmm0, [rbp+1]
    }
    #expect(result == .exception(.generalProtection(0)))
    let (_, aligned) = try run([0x66, 0x0f, 0x6f, 0x45, 0x00], x0: 0, x1: 0, mxcsr: Self.reset) {
      $0[.rbp] = 0x8000_0000_0000_0000
    }
    #expect(aligned == .exception(.stackFault(0)))
  }

  /// #AC checks a 16-byte unaligned operand as one access: 8-byte aligned is still misaligned.
  /// FXSAVE's misalignment is #AC only below 4-byte alignment, #GP(0) otherwise (host CPU).
  @Test func alignmentCheckOnVectorAndFXSAVE() throws {
    let userWithAC: (inout X86State) -> Void = {
      $0[.cs] = .flatCode64(selector: 0x33, dpl: 3)
      $0[.ss] = .flatData(selector: 0x2b, dpl: 3)
      $0.cr0 |= ControlBit.cr0AM
      $0.rflags |= RFlagsBit.alignmentCheck
    }
    let (_, movdqu) = try run([0xf3, 0x0f, 0x6f, 0x00], x0: 0, x1: 0, mxcsr: Self.reset) {
      userWithAC(&$0)
      $0[.rax] = Layout.data + 8
    }
    #expect(movdqu == .exception(X86Exception(vector: 17, errorCode: 0)))
    let (_, fourAligned) = try run([0x0f, 0xae, 0x00], x0: 0, x1: 0, mxcsr: Self.reset) {
      userWithAC(&$0)
      $0[.rax] = Layout.data + 4
    }
    #expect(fourAligned == .exception(.generalProtection(0)))
    let (_, twoAligned) = try run([0x0f, 0xae, 0x00], x0: 0, x1: 0, mxcsr: Self.reset) {
      userWithAC(&$0)
      $0[.rax] = Layout.data + 2
    }
    #expect(twoAligned == .exception(X86Exception(vector: 17, errorCode: 0)))
  }
}
