import GuestMemory
import Testing

@testable import X86

/// FXSAVE/FXRSTOR: the 512-byte layout of SDM Vol. 1, 10.5.1 (tables 10-2 and 10-3),
/// alignment (#GP(0)), CR0.TS/EM (#NM) and MXCSR reserved bits on restore (#GP(0)).
struct FXSAVETests {
  func state(_ s: inout X86State) {
    s[.rax] = Layout.data
    s.fpu.fcw = 0x027f
    // TOP = 6 (bits 13:11), so ST0 is physical register 6 and ST2 physical register 0.
    s.fpu.fsw = 6 << 11 | 0x0001
    s.fpu.ftw = 0b0100_0001
    s.fpu.lastOpcode = 0x1d9
    s.fpu.lastInstructionPointer = 0x1234_5678_9abc
    s.fpu.lastDataPointer = 0x0fed_cba9_8765
    s.fpu.mxcsr = 0x1fa0
    s.fpu.st[6] = X87Register(significand: 0x8000_0000_0000_0000, signExponent: 0x3fff)  // 1.0
    s.fpu.st[0] = X87Register(significand: 0xc000_0000_0000_0000, signExponent: 0xc000)  // -3.0
    for index in 0..<16 { s.fpu.xmm[index] = v128(UInt64(index) << 56 | 0xaa, UInt64(index)) }
  }

  @Test func fxsave64Layout() throws {
    let s = try stepOne([0x48, 0x0f, 0xae, 0x00], setup: state)  // fxsave64 [rax]
    let base = Layout.data
    #expect(try s.load16(base) == 0x027f)
    #expect(try s.load16(base + 2) == 0x3001)
    #expect(try s.load16(base + 4) & 0xff == 0b0100_0001)
    #expect(try s.load16(base + 6) == 0x1d9)
    #expect(try s.load64(base + 8) == 0x1234_5678_9abc)
    #expect(try s.load64(base + 16) == 0x0fed_cba9_8765)
    #expect(try s.load32(base + 24) == 0x1fa0)
    #expect(try s.load32(base + 28) == 0xffff)  // MXCSR_MASK: DAZ and every defined bit
    // ST0 at 32, ST2 at 64.
    #expect(try s.load64(base + 32) == 0x8000_0000_0000_0000 && s.load16(base + 40) == 0x3fff)
    #expect(try s.load64(base + 64) == 0xc000_0000_0000_0000 && s.load16(base + 72) == 0xc000)
    // XMM0 at 160, XMM15 at 400.
    #expect(try s.load64(base + 160) == 0 && s.load64(base + 168) == 0xaa)
    #expect(try s.load64(base + 400) == 15 && s.load64(base + 408) == 15 << 56 | 0xaa)
  }

  @Test func fxsave32FormTruncatesPointers() throws {
    let s = try stepOne([0x0f, 0xae, 0x00], setup: state)  // fxsave [rax]
    // 32-bit offset, then the (untracked, zero) selector.
    #expect(try s.load64(Layout.data + 8) == 0x5678_9abc)
    #expect(try s.load64(Layout.data + 16) == 0xcba9_8765)
  }

  @Test func roundTrip() throws {
    let s = try stepOne([0x48, 0x0f, 0xae, 0x00], setup: state)
    let saved = s.cpu.state.fpu
    var cleared = s.cpu.state
    cleared.fpu = FloatingPointState()
    cleared.rip = Layout.code
    try s.load(code: [0x48, 0x0f, 0xae, 0x08], at: Layout.code)  // fxrstor64 [rax]
    s.cpu.state = cleared
    #expect(s.cpu.step() == .retired)
    #expect(s.cpu.state.fpu == saved)
  }

  @Test func faults() throws {
    // Misaligned: #GP(0).
    let (_, misaligned) = try stepFault([0x0f, 0xae, 0x00]) { $0[.rax] = Layout.data + 8 }
    #expect(misaligned == .exception(.generalProtection(0)))
    // CR0.TS or CR0.EM: #NM.
    let (_, ts) = try stepFault([0x0f, 0xae, 0x00]) {
      $0[.rax] = Layout.data
      $0.cr0 |= 1 << 3
    }
    #expect(ts == .exception(X86Exception(vector: 7)))
    let (_, em) = try stepFault([0x0f, 0xae, 0x08]) {
      $0[.rax] = Layout.data
      $0.cr0 |= 1 << 2
    }
    #expect(em == .exception(X86Exception(vector: 7)))
    // FXRSTOR of an image whose MXCSR has a reserved bit: #GP(0), nothing restored.
    let s = try makeSandbox([0x0f, 0xae, 0x08]) { $0[.rax] = Layout.data }
    try s.store32(0x0001_1f80, Layout.data + 24)
    try s.store16(0x1234, Layout.data)
    #expect(s.cpu.step() == .exception(.generalProtection(0)))
    #expect(s.cpu.state.fpu.fcw == 0x037f)
  }

  @Test func fencesAndFlush() throws {
    try stepOne([0x0f, 0xae, 0xe8])  // lfence
    try stepOne([0x0f, 0xae, 0xf0])  // mfence
    try stepOne([0x0f, 0xae, 0xf8])  // sfence
    try stepOne([0x0f, 0xae, 0x38]) { $0[.rax] = Layout.data }  // clflush [rax]
    // clflush of a non-canonical address: #GP(0).
    let (_, result) = try stepFault([0x0f, 0xae, 0x38]) { $0[.rax] = 0x8000_0000_0000_0000 }
    #expect(result == .exception(.generalProtection(0)))
  }
}
