import GuestMemory
import Testing

@testable import X86

/// 32-bit protected mode and real mode without paging: default sizes from CS.D, 16-bit
/// ModRM forms, segment bases (real mode: selector × 16) and 16-bit offset wrap-around.
struct LegacyModeTests {
  func legacySandbox(_ code: [UInt8], at address: UInt64, setup: (inout X86State) -> Void) throws -> X86Sandbox {
    let s = try X86Sandbox()
    try s.load(code: code, at: address)
    var state = X86State()
    setup(&state)
    s.cpu.state = state
    return s
  }

  @Test func protectedMode32() throws {
    // inc eax; dec di; mov ax, word ptr [bx+si]; push eax; hlt (bytes from clang, .code32)
    let code: [UInt8] = [0x40, 0x66, 0x4f, 0x67, 0x66, 0x8b, 0x00, 0x50, 0xf4]
    let s = try legacySandbox(code, at: Layout.code) {
      $0.cr0 = ControlBit.cr0PE | 0x10
      $0[.cs] = SegmentRegister(selector: 0x08, limit: 0xffff_ffff, type: 0xb, defaultBig: true, granularity: true)
      for segment in [SegmentName.ds, .es, .ss] { $0[segment] = .flatData() }
      $0.rip = Layout.code
      $0[.rax] = 0xffff_ffff
      $0[.rdi] = 0x1_0000
      $0[.rbx] = 0x10
      $0[.rsi] = 0x20
      $0[.rsp] = Layout.stackTop
    }
    #expect(s.cpu.state.codeMode == .bits32)
    try s.store16(0xbeef, 0x30)
    let (executed, stop) = s.cpu.run(maxInstructions: 10)
    #expect(executed == 5 && stop == .halted)
    #expect(s.reg(.rax) == 0xbeef && s.reg(.rdi) == 0x1_ffff)
    #expect(try s.reg(.rsp) == Layout.stackTop - 4 && s.load32(Layout.stackTop - 4) == 0xbeef)
  }

  @Test func realModeSegmentsAndWrapAround() throws {
    // mov ax, word ptr [0x1234]; add ax, word ptr [bx+si+0x12]; mov cx, word ptr [bx+di]; hlt
    let code: [UInt8] = [0xa1, 0x34, 0x12, 0x03, 0x40, 0x12, 0x8b, 0x09, 0xf4]
    let s = try legacySandbox(code, at: 0x1_0100) {
      $0[.cs] = SegmentRegister(selector: 0x1000, base: 0x1_0000, type: 0xb)
      $0[.ds] = SegmentRegister(selector: 0x2000, base: 0x2_0000)
      $0.rip = 0x100
      $0[.rbx] = 0x100
      $0[.rsi] = 0x10
      $0[.rdi] = 0xff01  // BX + DI = 0x10001: wraps to offset 1
    }
    #expect(s.cpu.state.codeMode == .bits16 && s.cpu.state.cpl == 0)
    try s.store16(0x1000, 0x2_1234)
    try s.store16(0x0234, 0x2_0122)
    try s.store16(0x5a5a, 0x2_0001)
    let (executed, stop) = s.cpu.run(maxInstructions: 10)
    #expect(executed == 4 && stop == .halted)
    #expect(s.reg(.rax) == 0x1234 && s.reg(.rcx) == 0x5a5a && s.cpu.state.rip == 0x109)
  }
}
