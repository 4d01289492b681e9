import HostCPU
import Testing

/// The oracle against the Intel SDM (vol. 2 instruction pages, vol. 1 3.4.3 for the flags, vol. 3
/// 6.15 for exceptions and error codes). Every expected value is worked out by hand from the
/// manual, never copied from a run.
@Suite struct HostCPUTests {
  typealias GPR = NativeState.GPR
  static let cf: UInt64 = 1 << 0, pf: UInt64 = 1 << 2, af: UInt64 = 1 << 4, zf: UInt64 = 1 << 6
  static let sf: UInt64 = 1 << 7, df: UInt64 = 1 << 10, of: UInt64 = 1 << 11, ac: UInt64 = 1 << 18
  static let entry = NativeLayout.codeEntry
  static let data = NativeLayout.dataBase

  /// A state with every register distinct, so that a wrong register written shows.
  func state(_ changes: [Int: UInt64] = [:], rflags: UInt64 = 0) -> NativeState {
    var gprs = (0..<16).map { UInt64(0x0101_0000_0000_0000) &* UInt64($0 + 1) | UInt64($0) }
    gprs[GPR.rsp] = Self.data + 0x1000
    for (register, value) in changes { gprs[register] = value }
    return NativeState(gprs: gprs, rflags: rflags)
  }

  @Test func addSetsEveryStatusFlagAsTheSDMSays() throws {
    // add rax, rbx (REX.W 01 /r, ModRM 11 011 000). 0x7fff...ffff + 1 = 0x8000...0000: two
    // positives giving a negative sets OF; the result's sign is 1 (SF); no carry out of bit 63
    // (CF=0); 0xf + 0x1 carries out of bit 3 (AF); the low byte 0x00 has an even number of
    // ones (PF); the result is not zero (ZF=0).
    let before = state([GPR.rax: 0x7fff_ffff_ffff_ffff, GPR.rbx: 1])
    let after = try HostCPU.execute([0x48, 0x01, 0xd8], from: before)
    #expect(after.end == .fellThrough)
    #expect(after.state.gprs[GPR.rax] == 0x8000_0000_0000_0000)
    #expect(after.state.rflags == Self.of | Self.sf | Self.af | Self.pf)
    #expect(after.state.rip == Self.entry + 3)
    var expected = before.gprs
    expected[GPR.rax] = 0x8000_0000_0000_0000
    #expect(after.state.gprs == expected)

    // 0xffff...ffff + 1 = 0 with a carry out of bit 63 (CF) and out of bit 3 (AF); zero (ZF),
    // even parity (PF); -1 + 1 cannot overflow (OF=0); sign 0. Incoming flags are replaced.
    let wrap = try HostCPU.execute(
      [0x48, 0x01, 0xd8], from: state([GPR.rax: .max, GPR.rbx: 1], rflags: Self.of | Self.sf))
    #expect(wrap.state.gprs[GPR.rax] == 0)
    #expect(wrap.state.rflags == Self.cf | Self.af | Self.zf | Self.pf)
  }

  @Test func directionAndAlignmentFlagsPassThroughUntouched() throws {
    // nop (90) changes no flag: what goes in comes out, DF and AC included.
    let flags = Self.cf | Self.df | Self.of | Self.ac
    let after = try HostCPU.execute([0x90], from: state(rflags: flags))
    #expect(after.state.rflags == flags)
  }

  @Test func divideByZeroIsVectorZeroAtTheInstruction() throws {
    // div rbx (REX.W F7 /6, ModRM 11 110 011) with rbx = 0: #DE, a fault, so RIP stays on the
    // DIV and no register changes.
    let before = state([GPR.rbx: 0])
    let after = try HostCPU.execute([0x48, 0xf7, 0xf3], from: before)
    #expect(after.end == .exception)
    #expect(after.exception?.vector == 0)
    #expect(after.state.rip == Self.entry)
    #expect(after.state.gprs == before.gprs)
  }

  @Test func signedDivideOverflowIsVectorZeroToo() throws {
    // idiv rbx (REX.W F7 /7) of RDX:RAX = -2^63 by -1: the quotient 2^63 does not fit (#DE).
    let before = state([GPR.rax: 0x8000_0000_0000_0000, GPR.rdx: .max, GPR.rbx: .max])
    let after = try HostCPU.execute([0x48, 0xf7, 0xfb], from: before)
    #expect(after.exception?.vector == 0)
  }

  @Test func ud2IsInvalidOpcode() throws {
    let after = try HostCPU.execute([0x0f, 0x0b], from: state())
    #expect(after.exception == NativeException(vector: 6, signal: after.exception?.signal ?? 0))
    #expect(after.state.rip == Self.entry)
  }

  @Test func storeIntoTheGuardPageIsAPageFaultWithWriteAndUserBits() throws {
    // mov [rbx], rax (REX.W 89 /r, ModRM 00 000 011) with rbx at the first byte after the data
    // window. The page is not present (P=0), the access a write (W, bit 1) from CPL 3 (U/S,
    // bit 2): error code 0b110; CR2 is the address.
    let before = state([GPR.rbx: NativeLayout.dataEnd])
    let after = try HostCPU.execute([0x48, 0x89, 0x03], from: before)
    #expect(after.end == .exception)
    #expect(after.exception?.vector == 14)
    #expect(after.exception?.errorCode == 0b110)
    #expect(after.exception?.faultAddress == NativeLayout.dataEnd)
    #expect(after.state.rip == Self.entry)
    #expect(after.state.dataWindow == before.dataWindow)
  }

  @Test func privilegedAndLockedMisuseFaultAsTheSDMSays() throws {
    // HLT at CPL > 0 is #GP(0) (SDM vol. 2, HLT, protected-mode exceptions).
    let hlt = try HostCPU.execute([0xf4], from: state())
    #expect(hlt.exception?.vector == 13)
    #expect(hlt.exception?.errorCode == 0)
    #expect(hlt.state.rip == Self.entry)
    // LOCK on a register destination is #UD (SDM vol. 2, LOCK): lock add rax, rbx.
    let locked = try HostCPU.execute([0xf0, 0x48, 0x01, 0xd8], from: state())
    #expect(locked.exception?.vector == 6)
  }

  @Test func addressSizePrefixIgnoresTheUpperHalfOfTheBase() throws {
    // 67 makes the address 32-bit: mov rax, [ebx] reads at EBX zero-extended, whatever RBX's
    // upper half holds (SDM vol. 1, 3.3.7).
    var before = state([GPR.rbx: 0xdead_beef_0000_0000 | (Self.data + 0x10)])
    before.store(0x1122_3344_5566_7788, at: Self.data + 0x10)
    let after = try HostCPU.execute([0x67, 0x48, 0x8b, 0x03], from: before)
    #expect(after.end == .fellThrough)
    #expect(after.state.gprs[GPR.rax] == 0x1122_3344_5566_7788)
  }

  @Test func misalignedLoadWithACSetIsAlignmentCheck() throws {
    // mov rax, [rbx] (REX.W 8B /r) from an odd address with AC=1 at CPL 3 (Linux sets CR0.AM):
    // #AC, error code 0.
    let after = try HostCPU.execute([0x48, 0x8b, 0x03], from: state([GPR.rbx: Self.data + 1], rflags: Self.ac))
    #expect(after.exception?.vector == 17)
    #expect(after.exception?.errorCode == 0)
  }

  @Test func pushAndPopMoveRSPByEightAndTheMemory() throws {
    // push rax (50): RSP -= 8, then [RSP] = RAX (little-endian).
    let before = state([GPR.rax: 0x0102_0304_0506_0708])
    let pushed = try HostCPU.execute([0x50], from: before)
    let top = Self.data + 0x1000 - 8
    #expect(pushed.state.gprs[GPR.rsp] == top)
    #expect(Array(pushed.state.dataWindow[0xff8..<0x1000]) == [8, 7, 6, 5, 4, 3, 2, 1])
    #expect(pushed.state.load(top) == 0x0102_0304_0506_0708)

    // pop rbx (5B): RBX = [RSP], then RSP += 8; memory is left as it was.
    var next = pushed.state
    next.rip = Self.entry
    let popped = try HostCPU.execute([0x5b], from: next)
    #expect(popped.state.gprs[GPR.rbx] == 0x0102_0304_0506_0708)
    #expect(popped.state.gprs[GPR.rsp] == Self.data + 0x1000)
    #expect(popped.state.dataWindow == pushed.state.dataWindow)
  }

  @Test func jneGoesToItsTargetOnlyWhenZFIsClear() throws {
    // jne rel8 (75 cb): target = address of the next instruction + sign-extended rel8.
    let forward = try HostCPU.execute([0x75, 0x10], from: state())
    #expect(forward.end == .branchedInCodePage)
    #expect(forward.state.rip == Self.entry + 2 + 0x10)
    let backward = try HostCPU.execute([0x75, 0xf0], from: state())
    #expect(backward.state.rip == Self.entry + 2 - 0x10)
    let notTaken = try HostCPU.execute([0x75, 0x10], from: state(rflags: Self.zf))
    #expect(notTaken.end == .fellThrough)
    #expect(notTaken.state.rip == Self.entry + 2)
  }

  @Test func callPushesTheReturnAddressAndBranchesOutOfThePage() throws {
    // call rel32 (E8 cd) to the data window: the return address (entry + 5) is pushed, and the
    // target, not executable, ends the run with RIP there.
    let target = Self.data + 0x40
    let rel = UInt32(truncatingIfNeeded: target &- (Self.entry + 5))
    let bytes: [UInt8] = [0xe8] + (0..<4).map { UInt8(truncatingIfNeeded: rel >> (8 * $0)) }
    let after = try HostCPU.execute(bytes, from: state())
    #expect(after.end == .branchedOutOfCodePage)
    #expect(after.state.rip == target)
    #expect(after.state.gprs[GPR.rsp] == Self.data + 0x1000 - 8)
    #expect(after.state.load(Self.data + 0x1000 - 8) == Self.entry + 5)
  }

  @Test func repMovsbBackwardsWithDFSet() throws {
    // rep movsb (F3 A4) with DF=1 copies RCX bytes from [RSI] to [RDI], both decrementing.
    var before = state([GPR.rsi: Self.data + 0x13, GPR.rdi: Self.data + 0x103, GPR.rcx: 4], rflags: Self.df)
    before.dataWindow.replaceSubrange(0x10..<0x14, with: [0xa, 0xb, 0xc, 0xd])
    let after = try HostCPU.execute([0xf3, 0xa4], from: before)
    #expect(Array(after.state.dataWindow[0x100..<0x104]) == [0xa, 0xb, 0xc, 0xd])
    #expect(after.state.gprs[GPR.rcx] == 0)
    #expect(after.state.gprs[GPR.rsi] == Self.data + 0x0f)
    #expect(after.state.gprs[GPR.rdi] == Self.data + 0xff)
    #expect(after.state.rflags == Self.df)
  }

  @Test func aBranchToItselfIsStoppedByTheWatchdog() throws {
    // jmp rel8 -2 (EB FE) never ends.
    let after = try HostCPU.execute([0xeb, 0xfe], from: state())
    #expect(after.end == .timedOut)
    #expect(after.state.rip == Self.entry)
  }

  @Test func badInputIsRefusedNotRun() {
    #expect(throws: HostCPUError.badLength(0)) { try HostCPU.execute([], from: state()) }
    #expect(throws: HostCPUError.badLength(16)) {
      try HostCPU.execute(Array(repeating: 0x90, count: 16), from: state())
    }
    var moved = state()
    moved.rip = 0
    #expect(throws: HostCPUError.self) { try HostCPU.execute([0x90], from: moved) }
    // RSP at host memory (here the heap-ish 0x5555_0000_0000) would let a PUSH write there.
    #expect(throws: HostCPUError.self) { try HostCPU.execute([0x50], from: state([GPR.rsp: 0x5555_0000_0000])) }
  }
}
