import Testing

@testable import X86

/// MOV forms, MOVZX/MOVSX/MOVSXD, LEA, XCHG, XADD, CMPXCHG, CMPXCHG8B/16B, CMOVcc, SETcc, XLAT.
struct DataTransferTests {
  @Test func movImmediateForms() throws {
    #expect(
      try stepOne([0x48, 0xb8, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]).reg(.rax) == 0x1122_3344_5566_7788)
    // mov ecx, imm32 zero-extends; mov r9b, imm8 merges
    #expect(try stepOne([0xb9, 0xef, 0xcd, 0xab, 0x89]) { $0[.rcx] = ~0 }.reg(.rcx) == 0x89ab_cdef)
    #expect(try stepOne([0x41, 0xb1, 0x42]) { $0[.r9] = ~0 }.reg(.r9) == 0xffff_ffff_ffff_ff42)
    // mov qword ptr [rax], -5 (sign-extended imm32)
    let s = try stepOne([0x48, 0xc7, 0x00, 0xfb, 0xff, 0xff, 0xff]) { $0[.rax] = Layout.data }
    #expect(try s.load64(Layout.data) == UInt64(bitPattern: -5))
  }

  @Test func movWithMoffs() throws {
    // movabs qword ptr [0x200000], rax ; movabs eax, dword ptr [0x200000]
    let store = try stepOne([0x48, 0xa3, 0x00, 0x00, 0x20, 0, 0, 0, 0, 0]) { $0[.rax] = 0x1122_3344_5566_7788 }
    #expect(try store.load64(Layout.data) == 0x1122_3344_5566_7788)
    let load = try makeSandbox([0xa1, 0x04, 0x00, 0x20, 0, 0, 0, 0, 0]) { $0[.rax] = ~0 }
    try load.store64(0x1122_3344_5566_7788, Layout.data)
    #expect(load.cpu.step() == .retired && load.reg(.rax) == 0x1122_3344)
  }

  @Test func extendingMoves() throws {
    // movsx rax, al
    #expect(try stepOne([0x48, 0x0f, 0xbe, 0xc0]) { $0[.rax] = 0x80 }.reg(.rax) == 0xffff_ffff_ffff_ff80)
    let zx = try makeSandbox([0x0f, 0xb6, 0x01]) {
      $0[.rcx] = Layout.data
      $0[.rax] = ~0
    }  // movzx eax, byte [rcx]
    try zx.store16(0x12fe, Layout.data)
    #expect(zx.cpu.step() == .retired && zx.reg(.rax) == 0xfe)
    let sxd = try makeSandbox([0x48, 0x63, 0x43, 0x08]) { $0[.rbx] = Layout.data }  // movsxd rax, [rbx+8]
    try sxd.store32(0x8000_0000, Layout.data + 8)
    #expect(sxd.cpu.step() == .retired && sxd.reg(.rax) == 0xffff_ffff_8000_0000)
    // movzx ecx, ah (0f b6 cc): the high-byte register without REX
    #expect(try stepOne([0x0f, 0xb6, 0xcc]) { $0[.rax] = 0xab00 }.reg(.rcx) == 0xab)
  }

  @Test func leaForms() throws {
    // lea rax, [rip+0x12345678]: next RIP 0x100007 + 0x12345678
    #expect(try stepOne([0x48, 0x8d, 0x05, 0x78, 0x56, 0x34, 0x12]).reg(.rax) == 0x1244_567f)
    // lea ecx, [rax+rbx*8-4]: 64-bit sum truncated to 32 bits
    let s = try stepOne([0x8d, 0x4c, 0xd8, 0xfc]) {
      $0[.rax] = 0x1_0000_0010
      $0[.rbx] = 2
    }
    #expect(s.reg(.rcx) == 0x1c)
    // lea eax, [ebx-1] with 67: address wraps at 32 bits (EBX = 0 → 0xffffffff)
    #expect(try stepOne([0x67, 0x8d, 0x43, 0xff]) { $0[.rbx] = 0x1_0000_0000 }.reg(.rax) == 0xffff_ffff)
  }

  @Test func exchangeAndAdd() throws {
    // xchg r8, rax (49 90)
    let x = try stepOne([0x49, 0x90]) {
      $0[.rax] = 1
      $0[.r8] = 2
    }
    #expect(x.reg(.rax) == 2 && x.reg(.r8) == 1)
    // xadd dword ptr [rsi], eax with [rsi] = 5, EAX = 3 → [rsi] = 8, EAX = 5; flags of 5+3
    let s = try makeSandbox([0x0f, 0xc1, 0x06]) {
      $0[.rsi] = Layout.data
      $0[.rax] = 3
    }
    try s.store32(5, Layout.data)
    #expect(s.cpu.step() == .retired)
    #expect(try s.load32(Layout.data) == 8 && s.reg(.rax) == 5 && s.rflags == F.fixed)
    // xadd eax, eax: TEMP = 2a; SRC ← DEST; DEST ← TEMP → EAX = 2a
    #expect(try stepOne([0x0f, 0xc1, 0xc0]) { $0[.rax] = 0x15 }.reg(.rax) == 0x2a)
  }

  @Test func compareExchange() throws {
    // cmpxchg qword ptr [rdi], rcx: equal → stored, ZF
    let hit = try makeSandbox([0x48, 0x0f, 0xb1, 0x0f]) {
      $0[.rdi] = Layout.data
      $0[.rax] = 5
      $0[.rcx] = 9
    }
    try hit.store64(5, Layout.data)
    #expect(try hit.cpu.step() == .retired && (try hit.load64(Layout.data)) == 9 && hit.rflags & F.zf != 0)
    // not equal → RAX ← memory; flags of 5 - 6: CF SF AF PF
    let miss = try makeSandbox([0x48, 0x0f, 0xb1, 0x0f]) {
      $0[.rdi] = Layout.data
      $0[.rax] = 5
      $0[.rcx] = 9
    }
    try miss.store64(6, Layout.data)
    #expect(try miss.cpu.step() == .retired && (try miss.load64(Layout.data)) == 6 && miss.reg(.rax) == 6)
    #expect(miss.rflags == F.fixed | F.cf | F.sf | F.af | F.pf)
  }

  @Test func cmpxchg16bNeedsAlignment() throws {
    let code: [UInt8] = [0xf0, 0x48, 0x0f, 0xc7, 0x4e, 0x10]  // lock cmpxchg16b [rsi+16]
    let (_, misaligned) = try stepFault(code) { $0[.rsi] = Layout.data + 8 }
    #expect(misaligned == .exception(.generalProtection(0)))
    let s = try makeSandbox(code) {
      $0[.rsi] = Layout.data
      $0[.rax] = 1
      $0[.rdx] = 2
      $0[.rbx] = 0xb
      $0[.rcx] = 0xc
    }
    try s.store64(1, Layout.data + 16)
    try s.store64(2, Layout.data + 24)
    #expect(s.cpu.step() == .retired)
    #expect(try s.load64(Layout.data + 16) == 0xb && (try s.load64(Layout.data + 24)) == 0xc && s.rflags & F.zf != 0)
  }

  @Test func cmpxchg8bMissLoadsEdxEax() throws {
    let s = try makeSandbox([0x0f, 0xc7, 0x0e]) {  // cmpxchg8b [rsi]
      $0[.rsi] = Layout.data
      $0[.rax] = 0xffff_ffff_0000_0000
      $0[.rdx] = 0xffff_ffff_0000_0000
      $0.rflags = F.fixed | F.zf | F.cf
    }
    try s.store64(0x1111_2222_3333_4444, Layout.data)
    #expect(s.cpu.step() == .retired)
    #expect(s.reg(.rax) == 0x3333_4444 && s.reg(.rdx) == 0x1111_2222 && s.rflags == F.fixed | F.cf)
  }

  @Test func cmov32ClearsUpperHalfEvenWhenFalse() throws {
    // cmovb ecx, edx with CF=0: no move, but RCX's upper half is cleared (SDM, CMOVcc)
    let s = try stepOne([0x0f, 0x42, 0xca]) {
      $0[.rcx] = 0xffff_ffff_1234_5678
      $0[.rdx] = 7
    }
    #expect(s.reg(.rcx) == 0x1234_5678)
    #expect(
      try stepOne([0x48, 0x0f, 0x42, 0xca]) {
        $0[.rdx] = 7
        $0.rflags = F.fixed | F.cf
      }.reg(.rcx) == 7)
  }

  @Test func setccAndXlat() throws {
    // setg r10b (41 0f 9f c2): ZF=0, SF=OF → 1
    #expect(try stepOne([0x41, 0x0f, 0x9f, 0xc2]) { $0[.r10] = 0xff00 }.reg(.r10) == 0xff01)
    // xlatb: AL ← [RBX + AL]
    let s = try makeSandbox([0xd7]) {
      $0[.rbx] = Layout.data
      $0[.rax] = 3
    }
    try s.store32(0x4433_2211, Layout.data)
    #expect(s.cpu.step() == .retired && s.reg(.rax) == 0x44)
  }

  @Test func fsOverrideUsesTheBase() throws {
    // mov rax, qword ptr fs:[0x28]
    let s = try makeSandbox([0x64, 0x48, 0x8b, 0x04, 0x25, 0x28, 0x00, 0x00, 0x00]) { $0.fsBase = Layout.data }
    try s.store64(0xfeed, Layout.data + 0x28)
    #expect(s.cpu.step() == .retired && s.reg(.rax) == 0xfeed)
  }

  @Test func movFromSegmentRegister() throws {
    // mov eax, ds (8c d8): zero-extended; mov ax, ds (66 8c d8): low half only;
    // mov rax, fs (48 8c e0); mov word ptr [rsi], ds (8c 1e): two bytes
    #expect(try stepOne([0x8c, 0xd8]) { $0[.rax] = ~0 }.reg(.rax) == 0x10)
    #expect(try stepOne([0x66, 0x8c, 0xd8]) { $0[.rax] = ~0 }.reg(.rax) == 0xffff_ffff_ffff_0010)
    #expect(try stepOne([0x48, 0x8c, 0xe0]) { $0[.fs] = .flatData(selector: 0x2b) }.reg(.rax) == 0x2b)
    let s = try makeSandbox([0x8c, 0x1e]) { $0[.rsi] = Layout.data }
    try s.store32(0xffff_ffff, Layout.data)
    #expect(s.cpu.step() == .retired)
    #expect(try s.load32(Layout.data) == 0xffff_0010)
    let (_, result) = try stepFault([0x8c, 0xf0])  // Sreg 6 does not exist
    #expect(result == .exception(.invalidOpcode))
  }
}
