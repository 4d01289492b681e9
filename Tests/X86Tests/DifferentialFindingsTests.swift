import GuestMemory
import Testing

@testable import X86

/// Behaviours x86-difftest found where the interpreter differed from the host CPU; each now
/// has a test with the value the SDM gives (or, where the SDM is silent, what the hardware
/// did, said so).
struct DifferentialFindingsTests {
  /// The user-mode state Linux gives a process: CPL 3, CR0.AM set, RFLAGS.AC set.
  static func userWithAlignmentChecks(_ state: inout X86State) {
    state[.cs] = .flatCode64(selector: 0x33, dpl: 3)
    for segment in [SegmentName.ss, .ds, .es] { state[segment] = .flatData(selector: 0x2b, dpl: 3) }
    state.cr0 |= ControlBit.cr0AM
    state.rflags |= RFlagsBit.alignmentCheck
  }

  static let alignmentCheck = X86Exception(vector: 17, errorCode: 0)

  /// SDM Vol. 3, 6.15 (interrupt 17): a misaligned data reference at CPL 3 with CR0.AM and
  /// EFLAGS.AC set raises #AC(0); with either clear, or at CPL 0, it does not.
  @Test func misalignedAccessesAtCPL3RaiseAlignmentCheck() throws {
    let load: [UInt8] = [0x8b, 0x03]  // mov eax, [rbx]
    let (_, faulted) = try stepFault(load) {
      Self.userWithAlignmentChecks(&$0)
      $0[.rbx] = Layout.data + 2
    }
    #expect(faulted == .exception(Self.alignmentCheck))
    try stepOne(load) {  // aligned: no check
      Self.userWithAlignmentChecks(&$0)
      $0[.rbx] = Layout.data + 4
    }
    try stepOne(load) {  // AC clear
      Self.userWithAlignmentChecks(&$0)
      $0.rflags &= ~RFlagsBit.alignmentCheck
      $0[.rbx] = Layout.data + 2
    }
    try stepOne(load) { $0[.rbx] = Layout.data + 2 }  // CPL 0
    // PUSH with a misaligned RSP is a data reference too.
    let (_, pushed) = try stepFault([0x50]) {
      Self.userWithAlignmentChecks(&$0)
      $0[.rsp] = Layout.stackTop - 4
    }
    #expect(pushed == .exception(Self.alignmentCheck))
  }

  /// CMPXCHG8B's operand is 8 bytes: a 4-aligned address is misaligned for it.
  @Test func cmpxchg8bChecksItsWholeOperand() throws {
    let (_, result) = try stepFault([0x0f, 0xc7, 0x0b]) {  // cmpxchg8b [rbx]
      Self.userWithAlignmentChecks(&$0)
      $0[.rbx] = Layout.data + 4
    }
    #expect(result == .exception(Self.alignmentCheck))
  }

  /// In 64-bit mode ES, CS, SS and DS overrides are null prefixes (SDM Vol. 1, 3.3.7.1), so a
  /// non-canonical reference through RBP stays a stack reference: #SS(0), not #GP(0).
  @Test func segmentOverridesOtherThanFSAndGSAreIgnoredIn64BitMode() throws {
    let (_, result) = try stepFault([0x3e, 0x48, 0x8b, 0x45, 0x00]) {  // mov rax, ds:[rbp]
      $0[.rbp] = 0x8000_0000_0000_0000
    }
    #expect(result == .exception(.stackFault(0)))
    let (_, plain) = try stepFault([0x48, 0x8b, 0x03]) { $0[.rbx] = 0x8000_0000_0000_0000 }  // mov rax, [rbx]
    #expect(plain == .exception(.generalProtection(0)))
  }

  /// ENTER checks the new frame's bottom (the final RSP) for a one-slot write before it
  /// completes: the host CPU faults there with W = 1 (the SDM's pseudocode only moves RSP).
  /// Here RSP = 0x10: the push lands at 0x8, the final RSP wraps to 2^64 - 8, whose PML4
  /// entry (511) is not present.
  @Test func enterProbesTheFinalStackPointer() throws {
    let (sandbox, result) = try stepFault([0xc8, 0x10, 0x00, 0x00]) { $0[.rsp] = 0x10 }  // enter 0x10, 0
    #expect(result == .exception(.pageFault(PageFaultCode.write)))
    #expect(sandbox.cpu.state.cr2 == 0xffff_ffff_ffff_fff8)
    #expect(sandbox.reg(.rsp) == 0x10 && sandbox.cpu.state.rip == Layout.code)
  }

  /// INS and OUTS obey the I/O privilege check (SDM Vol. 1, 19.5.1): CPL 3 > IOPL 0 is #GP(0)
  /// before any port is touched; at CPL 0 they move one element and step rSI/rDI by DF.
  @Test func stringPortIOChecksPrivilegeThenMovesData() throws {
    let bus = RecordingBus()
    let (_, refused) = try stepFault([0x6e]) {  // outsb
      Self.userWithAlignmentChecks(&$0)
    }
    #expect(refused == .exception(.generalProtection(0)))
    let sandbox = try X86Sandbox(bus: bus)
    try sandbox.load(code: [0x66, 0x6f, 0x6c], at: Layout.code)  // outsw; insb
    try sandbox.store16(0xbeef, Layout.data)
    var state = sandbox.cpu.state
    state.rip = Layout.code
    state[.rsp] = Layout.stackTop
    state[.rdx] = 0x3f8
    state[.rsi] = Layout.data
    state[.rdi] = Layout.data + 0x100
    sandbox.cpu.state = state
    #expect(sandbox.cpu.step() == .retired)
    #expect(bus.writes == [PortWrite(port: 0x3f8, size: 2, value: 0xbeef)] && sandbox.reg(.rsi) == Layout.data + 2)
    #expect(sandbox.cpu.step() == .retired)
    #expect(try sandbox.load16(Layout.data + 0x100) & 0xff == 0x5a && sandbox.reg(.rdi) == Layout.data + 0x101)
  }

  /// A read-modify-write instruction reads its destination with write intent: a fault on it
  /// reports W = 1 in the #PF error code (SDM Vol. 3, 4.7), as the host CPU does.
  @Test func readModifyWriteFaultsReportAWrite() throws {
    let (sandbox, result) = try stepFault([0x01, 0x18]) {  // add [rax], ebx
      $0[.rax] = 0x4000_0000  // above the sandbox's mapped GiB: not present
    }
    #expect(result == .exception(.pageFault(PageFaultCode.write)))
    #expect(sandbox.cpu.state.cr2 == 0x4000_0000)
    let (_, compare) = try stepFault([0x39, 0x18]) { $0[.rax] = 0x4000_0000 }  // cmp [rax], ebx: a read
    #expect(compare == .exception(.pageFault(0)))
  }
}

struct PortWrite: Equatable {
  var port: UInt16
  var size: Int
  var value: UInt32
}

/// A bus that answers port reads with 0x5a and records port writes.
final class RecordingBus: X86IOBus {
  var writes: [PortWrite] = []
  func portRead(_ port: UInt16, size: Int) -> UInt32 { 0x5a }
  func portWrite(_ port: UInt16, size: Int, value: UInt32) -> Bool {
    writes.append(PortWrite(port: port, size: size, value: value))
    return false
  }
  func mmioRead(_ address: UInt64, size: Int) -> UInt64 { ~0 }
  func mmioWrite(_ address: UInt64, size: Int, value: UInt64) -> Bool { false }
}
