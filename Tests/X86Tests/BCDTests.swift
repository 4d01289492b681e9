import GuestMemory
import Testing

@testable import X86

/// DAA DAS AAA AAS AAM AAD, PUSHA/POPA and 16-bit addressing in legacy modes. Expected values
/// are worked by hand from each SDM Vol. 2 entry's "Operation" pseudocode (the host runs only
/// 64-bit code, where these are #UD, so it cannot be the oracle).
struct BCDTests {
  /// 32-bit protected mode without paging, `code` at `Layout.code`.
  func legacy(_ code: [UInt8], setup: (inout X86State) -> Void = { _ in }) throws -> X86Sandbox {
    let s = try X86Sandbox()
    try s.load(code: code, at: Layout.code)
    var state = protectedModeState(cr3: 0, cr4: 0, paging: false)
    setup(&state)
    s.cpu.state = state
    return s
  }

  /// Runs `code` to the end and returns AX and RFLAGS without `undefined`.
  func run(_ code: [UInt8], count: UInt64, undefined: UInt64, setup: (inout X86State) -> Void) throws -> (
    UInt64, UInt64
  ) {
    let s = try legacy(code, setup: setup)
    #expect(s.cpu.run(maxInstructions: count).executed == count)
    return (s.reg(.rax) & 0xffff, s.rflags & ~undefined)
  }

  @Test func daaAfterAdd() throws {
    // SDM Vol. 2, DAA example: ADD AL, BL with 79h + 35h = AEh (flags 000000), then DAA:
    // low nibble Eh > 9 → AL = B4h, AF = 1; old AL AEh > 99h → AL = 14h, CF = 1. SF 0, ZF 0,
    // PF 1 (14h has two bits). 79 + 35 = 114 in BCD.
    let (ax, flags) = try run([0x00, 0xd8, 0x27], count: 2, undefined: F.of) {
      $0[.rax] = 0x79
      $0[.rbx] = 0x35
    }
    #expect(ax == 0x14 && flags == F.fixed | F.cf | F.af | F.pf)
    // 15h + 27h = 3Ch; DAA: Ch > 9 → 42h, AF; 3Ch ≤ 99h and CF = 0 → CF = 0. PF: 42h even.
    let (small, smallFlags) = try run([0x00, 0xd8, 0x27], count: 2, undefined: F.of) {
      $0[.rax] = 0x15
      $0[.rbx] = 0x27
    }
    #expect(small == 0x42 && smallFlags == F.fixed | F.af | F.pf)
  }

  @Test func dasAfterSub() throws {
    // SDM Vol. 2, DAS example: SUB AL, BL with 35h − 47h = EEh (CF 1, AF 1), then DAS: Eh > 9
    // → AL = E8h, CF = 1 (old CF); old AL EEh > 99h → AL = 88h, CF = 1. SF 1, PF 1 (88h).
    let (ax, flags) = try run([0x28, 0xd8, 0x2f], count: 2, undefined: F.of) {
      $0[.rax] = 0x35
      $0[.rbx] = 0x47
    }
    #expect(ax == 0x88 && flags == F.fixed | F.cf | F.af | F.sf | F.pf)
  }

  @Test func aaaAndAas() throws {
    let undefined = F.of | F.sf | F.zf | F.pf
    // 8 + 7 = 0Fh; AAA: Fh > 9 → AX = 0Fh + 106h = 115h, AL AND 0Fh → 0105h, CF = AF = 1.
    let (ax, flags) = try run([0x00, 0xd8, 0x37], count: 2, undefined: undefined) {
      $0[.rax] = 0x08
      $0[.rbx] = 0x07
    }
    #expect(ax == 0x0105 && flags == F.fixed | F.cf | F.af)
    // AX + 106h carries out of AL into AH too: 00FAh → 0200h.
    let (carry, _) = try run([0x37], count: 1, undefined: undefined) { $0[.rax] = 0x00fa }
    #expect(carry == 0x0200)
    // ASCII '5' (35h), AF clear: no adjustment, AL → 05h, CF = AF = 0, AH kept.
    let (plain, plainFlags) = try run([0x37], count: 1, undefined: undefined) { $0[.rax] = 0x0735 }
    #expect(plain == 0x0705 && plainFlags == F.fixed)
    // 13 − 5 unpacked: AH = 1, SUB AL, BL with 3 − 5 = FEh (AF 1); AAS: AX − 6 = 01F8h,
    // AH − 1 → 00F8h, AL AND 0Fh → 0008h, CF = AF = 1.
    let (difference, differenceFlags) = try run([0x28, 0xd8, 0x3f], count: 2, undefined: undefined) {
      $0[.rax] = 0x0103
      $0[.rbx] = 0x05
    }
    #expect(difference == 0x0008 && differenceFlags == F.fixed | F.cf | F.af)
  }

  @Test func aamAndAad() throws {
    let undefined = F.of | F.af | F.cf
    // AAM: 3Fh = 63 → AH = 6, AL = 3; PF (03h: two bits) set.
    let (ax, flags) = try run([0xd4, 0x0a], count: 1, undefined: undefined) { $0[.rax] = 0x3f }
    #expect(ax == 0x0603 && flags == F.fixed | F.pf)
    // AAM 16: 3Fh → AH = 3, AL = Fh.
    let (hex, _) = try run([0xd4, 0x10], count: 1, undefined: undefined) { $0[.rax] = 0x3f }
    #expect(hex == 0x030f)
    // AAD: 06 03 → 63 = 3Fh, AH = 0; PF (3Fh: six bits) set.
    let (binary, binaryFlags) = try run([0xd5, 0x0a], count: 1, undefined: undefined) { $0[.rax] = 0x0603 }
    #expect(binary == 0x003f && binaryFlags == F.fixed | F.pf)
    // AAD keeps only the low byte: 9 + 25 × 10 = 259 → 03h; and 0 + 0 sets ZF.
    let (wrapped, _) = try run([0xd5, 0x0a], count: 1, undefined: undefined) { $0[.rax] = 0x1909 }
    #expect(wrapped == 0x0003)
    let (zero, zeroFlags) = try run([0xd5, 0x0a], count: 1, undefined: undefined) { $0[.rax] = 0 }
    #expect(zero == 0 && zeroFlags == F.fixed | F.zf | F.pf)
  }

  @Test func aamByZeroIsDivideError() throws {
    let s = try legacy([0xd4, 0x00]) { $0[.rax] = 0x1234 }
    #expect(s.cpu.step() == .exception(.divideError))
    #expect(s.cpu.state.rip == Layout.code && s.reg(.rax) == 0x1234)
  }

  @Test func invalidIn64BitMode() throws {
    for code: [UInt8] in [[0x27], [0x2f], [0x37], [0x3f], [0xd4, 0x0a], [0xd5, 0x0a], [0x60], [0x61]] {
      let (_, result) = try stepFault(code)
      #expect(result == .exception(.invalidOpcode), "\(code)")
    }
  }
}

struct PushAllTests {
  func legacy(_ code: [UInt8], setup: (inout X86State) -> Void) throws -> X86Sandbox {
    let s = try X86Sandbox()
    try s.load(code: code, at: Layout.code)
    var state = protectedModeState(cr3: 0, cr4: 0, paging: false)
    setup(&state)
    s.cpu.state = state
    return s
  }

  @Test func pushadThenPopad() throws {
    let s = try legacy([0x60, 0x61]) {
      for index in 0..<8 where index != 4 { $0.gpr[index] = UInt64(index + 1) * 0x1111 }
    }
    #expect(s.cpu.step() == .retired)
    // Order: EAX ECX EDX EBX, the original ESP, EBP ESI EDI (SDM Vol. 2, PUSHA).
    let top = Layout.stackTop
    let expected: [UInt32] = [0x1111, 0x2222, 0x3333, 0x4444, UInt32(top), 0x6666, 0x7777, 0x8888]
    for (slot, value) in expected.enumerated() {
      #expect(try s.load32(top - 4 * UInt64(slot + 1)) == value, "slot \(slot)")
    }
    #expect(s.reg(.rsp) == top - 32)
    var state = s.cpu.state
    for index in 0..<8 where index != 4 { state.gpr[index] = 0 }
    try s.store32(0xdead, top - 20)  // the saved ESP is skipped by POPAD
    s.cpu.state = state
    #expect(s.cpu.step() == .retired)
    for index in 0..<8 where index != 4 { #expect(s.cpu.state.gpr[index] == UInt64(index + 1) * 0x1111) }
    #expect(s.reg(.rsp) == top)
  }

  @Test func sixteenBitPushaWrapsSP() throws {
    // Real mode, SS base 20000h, SP = 8: AX CX DX BX at 6 4 2 0, then SP wraps to FFFEh.
    let s = try X86Sandbox()
    try s.load(code: [0x60], at: 0x7c00)
    var state = X86State()
    state.rip = 0x7c00
    state[.ss] = SegmentRegister(selector: 0x2000, base: 0x2_0000)
    for index in 0..<8 { state.gpr[index] = 0xabcd_0000 | UInt64(index + 1) }
    state[.rsp] = 0xffff_0008
    s.cpu.state = state
    #expect(s.cpu.step() == .retired)
    #expect(try s.load16(0x2_0006) == 1 && s.load16(0x2_0000) == 4)
    #expect(try s.load16(0x2_fffe) == 8 && s.load16(0x2_fff8) == 8)  // the old SP, then DI
    #expect(s.reg(.rsp) == 0xffff_fff8)
  }

  @Test func pushaFaultLeavesESP() throws {
    // 32-bit paging: the pushes reach the read-only page below, #PF(P|W), ESP unchanged.
    let s = try ThirtyTwoBitPagingTests().sandbox([0x60]) { $0[.rsp] = ThirtyTwoBitPagingTests.supervisorOnly + 8 }
    #expect(s.cpu.step() == .exception(.pageFault(PageFaultCode.present | PageFaultCode.write)))
    #expect(s.cpu.state.cr2 == ThirtyTwoBitPagingTests.readOnly + 0xffc)
    #expect(s.reg(.rsp) == ThirtyTwoBitPagingTests.supervisorOnly + 8)
  }
}

/// 16-bit ModRM forms (SDM Vol. 2, table 2-1) in real-mode code: BX/BP base, SI/DI index, SS
/// for the BP forms, offsets wrapping at 64 KiB, and 32-bit forms through 67.
struct SixteenBitAddressingTests {
  @Test func everyForm() throws {
    let ds: UInt64 = 0x1_0000
    let ss: UInt64 = 0x2_0000
    let cases: [([UInt8], UInt64)] = [
      ([0x8b, 0x00], ds + 0x120),  // [bx+si]
      ([0x8b, 0x01], ds + 0x130),  // [bx+di]
      ([0x8b, 0x02], ss + 0x220),  // [bp+si]
      ([0x8b, 0x03], ss + 0x230),  // [bp+di]
      ([0x8b, 0x04], ds + 0x20),  // [si]
      ([0x8b, 0x05], ds + 0x30),  // [di]
      ([0x8b, 0x06, 0x40, 0x00], ds + 0x40),  // [disp16]
      ([0x8b, 0x07], ds + 0x100),  // [bx]
      ([0x8b, 0x46, 0xfe], ss + 0x1fe),  // [bp-2]
      ([0x8b, 0x40, 0xff], ds + 0x11f),  // [bx+si-1]
      ([0x8b, 0x83, 0x00, 0x10], ss + 0x1230),  // [bp+di+1000h]
      ([0x8b, 0x85, 0xf0, 0xff], ds + 0x20),  // [di+FFF0h] wraps to 20h
      ([0x3e, 0x8b, 0x46, 0x00], ds + 0x200),  // ds:[bp]
      ([0x67, 0x8b, 0x04, 0x8b], ds + 0x140),  // [ebx+ecx*4]
    ]
    for (code, linear) in cases {
      let s = try X86Sandbox()
      try s.load(code: code, at: 0x7c00)
      let value = UInt16(truncatingIfNeeded: linear ^ 0x5a5a)
      try s.store16(value, linear)
      var state = X86State()
      state.rip = 0x7c00
      state[.ds] = SegmentRegister(selector: 0x1000, base: ds)
      state[.ss] = SegmentRegister(selector: 0x2000, base: ss)
      state[.rbx] = 0x100
      state[.rsi] = 0x20
      state[.rdi] = 0x30
      state[.rbp] = 0x200
      state[.rcx] = 0x10
      s.cpu.state = state
      #expect(s.cpu.step() == .retired, "\(code)")
      #expect(s.reg(.rax) == UInt64(value), "\(code)")
      #expect(s.cpu.state.rip == 0x7c00 + UInt64(code.count), "\(code)")
    }
  }
}
