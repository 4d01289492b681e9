import GuestMemory
import Testing

@testable import X86

/// 4-level paging with 4 KiB pages built by hand: page-fault error codes and CR2 (SDM Vol. 3,
/// 4.7), accessed and dirty bits (4.8), and the exceptions instructions raise.
struct PagingTests {
  static let pml4: UInt64 = 0x40_0000
  static let notPresent: UInt64 = 0x1f_0000
  static let readOnly: UInt64 = 0x1f_1000
  static let supervisorOnly: UInt64 = 0x1f_2000
  static let noExecute: UInt64 = 0x1f_3000
  static let reservedBit: UInt64 = 0x1f_4000
  static let plain: UInt64 = 0x1f_5000

  static let present: UInt64 = 1, writable: UInt64 = 2, user: UInt64 = 4, accessed: UInt64 = 0x20
  static let dirty: UInt64 = 0x40, largePage: UInt64 = 0x80, executeDisable: UInt64 = 1 << 63

  /// The first 2 MiB in 4 KiB pages (identity, P|W|U, A and D clear) with the special pages
  /// above; 2-4 MiB (data, stack) as one 2 MiB page.
  func pagedSandbox(_ code: [UInt8], setup: (inout X86State) -> Void = { _ in }) throws -> X86Sandbox {
    let s = try makeSandbox(code, setup: setup)
    let pdpt = Self.pml4 + 0x1000
    let directory = Self.pml4 + 0x2000
    let table = Self.pml4 + 0x3000
    try s.store64(pdpt | Self.present | Self.writable | Self.user, Self.pml4)
    try s.store64(directory | Self.present | Self.writable | Self.user, pdpt)
    try s.store64(table | Self.present | Self.writable | Self.user, directory)
    try s.store64(
      0x20_0000 | Self.present | Self.writable | Self.user | Self.largePage | Self.accessed | Self.dirty, directory + 8)
    for page in UInt64(0)..<512 {
      let address = page << 12
      var entry = address | Self.present | Self.writable | Self.user
      switch address {
      case Self.notPresent: entry = 0
      case Self.readOnly: entry &= ~Self.writable
      case Self.supervisorOnly: entry &= ~Self.user
      case Self.noExecute: entry |= Self.executeDisable
      case Self.reservedBit: entry |= 1 << 51
      default: break
      }
      try s.store64(entry, table + page * 8)
    }
    var state = s.cpu.state
    state.cr3 = Self.pml4
    s.cpu.state = state
    return s
  }

  func pte(_ s: X86Sandbox, _ linear: UInt64) throws -> UInt64 { try s.load64(Self.pml4 + 0x3000 + (linear >> 12) * 8) }

  static let loadRaxFromRbx: [UInt8] = [0x48, 0x8b, 0x03]  // mov rax, [rbx]
  static let storeRaxToRbx: [UInt8] = [0x48, 0x89, 0x03]  // mov [rbx], rax

  @Test func notPresentRead() throws {
    let s = try pagedSandbox(Self.loadRaxFromRbx) { $0[.rbx] = Self.notPresent + 0x10 }
    #expect(s.cpu.step() == .exception(.pageFault(0)))
    #expect(s.cpu.state.cr2 == Self.notPresent + 0x10 && s.cpu.state.rip == Layout.code)
  }

  @Test func writeToReadOnlyPageHonoursCR0WP() throws {
    let s = try pagedSandbox(Self.storeRaxToRbx) { $0[.rbx] = Self.readOnly + 8 }
    #expect(s.cpu.step() == .exception(.pageFault(PageFaultCode.present | PageFaultCode.write)))
    #expect(s.cpu.state.cr2 == Self.readOnly + 8)
    // With CR0.WP clear, supervisor writes ignore R/W.
    let t = try pagedSandbox(Self.storeRaxToRbx) {
      $0[.rbx] = Self.readOnly + 8
      $0[.rax] = 0x77
      $0.cr0 &= ~ControlBit.cr0WP
    }
    #expect(t.cpu.step() == .retired)
    #expect(try t.load64(Self.readOnly + 8) == 0x77)
  }

  @Test func userReadOfSupervisorPage() throws {
    let s = try pagedSandbox(Self.loadRaxFromRbx) {
      $0[.rbx] = Self.supervisorOnly
      $0[.cs] = .flatCode64(selector: 0x33, dpl: 3)
      $0[.ss] = .flatData(selector: 0x2b, dpl: 3)
    }
    #expect(s.cpu.state.cpl == 3)
    #expect(s.cpu.step() == .exception(.pageFault(PageFaultCode.present | PageFaultCode.user)))
  }

  @Test func fetchFromNoExecutePage() throws {
    let s = try pagedSandbox([]) { _ in }
    try s.write([0x90], at: Self.noExecute)
    var state = s.cpu.state
    state.rip = Self.noExecute
    s.cpu.state = state
    #expect(s.cpu.step() == .exception(.pageFault(PageFaultCode.present | PageFaultCode.instructionFetch)))
    #expect(s.cpu.state.cr2 == Self.noExecute)
  }

  @Test func reservedBitInAnEntry() throws {
    let s = try pagedSandbox(Self.loadRaxFromRbx) { $0[.rbx] = Self.reservedBit }
    #expect(s.cpu.step() == .exception(.pageFault(PageFaultCode.present | PageFaultCode.reservedBit)))
  }

  @Test func accessedThenDirty() throws {
    // mov rax, [rbx]; mov [rbx], rax
    let s = try pagedSandbox(Self.loadRaxFromRbx + Self.storeRaxToRbx) { $0[.rbx] = Self.plain }
    #expect(try pte(s, Self.plain) & (Self.accessed | Self.dirty) == 0)
    #expect(s.cpu.step() == .retired)
    #expect(try pte(s, Self.plain) & (Self.accessed | Self.dirty) == Self.accessed)
    #expect(try s.load64(Self.pml4) & Self.accessed != 0)
    #expect(try s.load64(Self.pml4 + 0x2000) & Self.accessed != 0)
    // The read filled the TLB; the first write must still walk and set D.
    #expect(s.cpu.step() == .retired)
    #expect(try pte(s, Self.plain) & (Self.accessed | Self.dirty) == Self.accessed | Self.dirty)
  }

  @Test func instructionRunningIntoAMissingPage() throws {
    // movabs rax, imm64 whose first two bytes end the page before the missing one
    let s = try pagedSandbox([]) { _ in }
    try s.write([0x48, 0xb8], at: Self.notPresent - 2)
    var state = s.cpu.state
    state.rip = Self.notPresent - 2
    s.cpu.state = state
    #expect(s.cpu.step() == .exception(.pageFault(PageFaultCode.instructionFetch)))
    #expect(s.cpu.state.cr2 == Self.notPresent && s.cpu.state.rip == Self.notPresent - 2)
  }

  @Test func repStosStopsAtAPageFault() throws {
    // rep stosb over the end of a mapped page: 4 bytes land, RCX/RDI say where it stopped.
    let s = try pagedSandbox([0xf3, 0xaa]) {
      $0[.rdi] = Self.notPresent - 4
      $0[.rcx] = 8
      $0[.rax] = 0xee
    }
    #expect(s.cpu.step() == .exception(.pageFault(PageFaultCode.write)))
    #expect(s.reg(.rcx) == 4 && s.reg(.rdi) == Self.notPresent && s.cpu.state.rip == Layout.code)
    #expect(try s.read(at: Self.notPresent - 4, count: 4) == [0xee, 0xee, 0xee, 0xee])
  }

  @Test func splitAccessChecksBothPagesFirst() throws {
    // An 8-byte store straddling into the missing page writes nothing.
    let s = try pagedSandbox(Self.storeRaxToRbx) {
      $0[.rbx] = Self.notPresent - 4
      $0[.rax] = ~0
    }
    #expect(s.cpu.step() == .exception(.pageFault(PageFaultCode.write)))
    #expect(s.cpu.state.cr2 == Self.notPresent)
    #expect(try s.read(at: Self.notPresent - 4, count: 4) == [0, 0, 0, 0])
  }
}

struct ExceptionTests {
  @Test func undefinedOpcodes() throws {
    for code: [UInt8] in [[0x0f, 0x0b], [0x06], [0x0f, 0x38, 0x00, 0xc0], [0xf0, 0x01, 0xd8], [0x0f, 0xff]] {
      let (s, result) = try stepFault(code)
      #expect(result == .exception(.invalidOpcode), "\(code)")
      #expect(s.cpu.state.rip == Layout.code)
    }
  }

  @Test func breakpointAndSoftwareInterruptAreTraps() throws {
    let (s, result) = try stepFault([0xcc])
    #expect(result == .exception(X86Exception(vector: 3, kind: .trap)) && s.cpu.state.rip == Layout.code + 1)
    let (t, interrupt) = try stepFault([0xcd, 0x80])
    #expect(interrupt == .exception(X86Exception(vector: 0x80, kind: .softwareInterrupt)))
    #expect(t.cpu.state.rip == Layout.code + 2)
  }

  @Test func tooLongIsGeneralProtection() throws {
    let (_, result) = try stepFault(Array(repeating: 0x66, count: 15) + [0x90])
    #expect(result == .exception(.generalProtection(0)))
  }

  @Test func nonCanonicalDataAndStackReferences() throws {
    let (_, data) = try stepFault([0x48, 0x8b, 0x03]) { $0[.rbx] = 0x0000_8000_0000_0000 }
    #expect(data == .exception(.generalProtection(0)))
    let (_, stack) = try stepFault([0x48, 0x8b, 0x04, 0x24]) { $0[.rsp] = 0xffff_0000_0000_0000 }
    #expect(stack == .exception(.stackFault(0)))
  }

  @Test func privilegedInstructionsAtCPL3() throws {
    let (_, result) = try stepFault([0xf4]) {
      $0[.cs] = .flatCode64(selector: 0x33, dpl: 3)
      $0[.ss] = .flatData(selector: 0x2b, dpl: 3)
    }
    #expect(result == .exception(.generalProtection(0)))
  }

  @Test func hltHalts() throws {
    let s = try makeSandbox([0xf4])
    #expect(s.cpu.step() == .halted)
    #expect(s.cpu.state.halted && s.cpu.state.rip == Layout.code + 1)
    #expect(s.cpu.step() == .halted && s.cpu.retiredInstructions == 1)
  }

  @Test func cpuidModel() throws {
    let s = try stepOne([0x0f, 0xa2]) { $0[.rax] = 0 }
    let vendor = [s.reg(.rbx), s.reg(.rdx), s.reg(.rcx)].flatMap { word in
      (0..<4).map { UInt8(word >> ($0 * 8) & 0xff) }
    }
    #expect(String(decoding: vendor, as: UTF8.self) == "HyperstepX86" && s.reg(.rax) == 7)
    let features = try stepOne([0x0f, 0xa2]) { $0[.rax] = 1 }
    #expect(features.reg(.rcx) & (1 << 13) != 0)  // CX16
    // FPU, FXSR, SSE, SSE2 (bits 0, 24, 25, 26 of EDX); no MMX (23), no SSE3 (ECX bit 0).
    #expect(features.reg(.rdx) & (1 << 0 | 1 << 24 | 1 << 25 | 1 << 26) == 1 << 0 | 1 << 24 | 1 << 25 | 1 << 26)
    #expect(features.reg(.rdx) & (1 << 23) == 0 && features.reg(.rcx) & 1 == 0)
  }

  /// CPUID.1: EDX bit 9 (APIC) and EBX[31:24] (the initial APIC ID) only when the engine gives
  /// the CPU a local APIC (SDM Vol. 2, CPUID, table 3-8 and "Initial APIC ID").
  @Test func cpuidReportsALocalAPICOnlyWhenThereIsOne() throws {
    let bare = try stepOne([0x0f, 0xa2]) { $0[.rax] = 1 }
    #expect(bare.reg(.rdx) & (1 << 9) == 0 && bare.reg(.rbx) >> 24 == 0)
    let s = try makeSandbox([0x0f, 0xa2]) { $0[.rax] = 1 }
    s.cpu.localAPICID = 3
    #expect(s.cpu.step() == .retired)
    #expect(s.reg(.rdx) & (1 << 9) != 0 && (s.reg(.rbx) >> 24) & 0xff == 3)
  }

  @Test func rdtscCountsRetiredInstructions() throws {
    let s = try makeSandbox([0x90, 0x90, 0x0f, 0x31])
    #expect(s.cpu.run(maxInstructions: 3).executed == 3)
    #expect(s.reg(.rax) == 2 && s.reg(.rdx) == 0)
  }

  @Test func portIOReachesTheBus() throws {
    final class Recorder: X86IOBus {
      var writes: [(UInt16, Int, UInt32)] = []
      func portRead(_ port: UInt16, size: Int) -> UInt32 { UInt32(port) + 1 }
      func portWrite(_ port: UInt16, size: Int, value: UInt32) -> Bool {
        writes.append((port, size, value))
        return port == 0xf4
      }
      func mmioRead(_ address: UInt64, size: Int) -> UInt64 { 0 }
      func mmioWrite(_ address: UInt64, size: Int, value: UInt64) -> Bool { false }
    }
    let bus = Recorder()
    let s = try X86Sandbox(bus: bus)
    // in al, 0x60; out 0x80, al; mov dx, 0xf4; out dx, ax
    try s.load(code: [0xe4, 0x60, 0xe6, 0x80, 0x66, 0xba, 0xf4, 0x00, 0x66, 0xef], at: Layout.code)
    var state = s.cpu.state
    state.rip = Layout.code
    state[.rax] = 0x1200
    s.cpu.state = state
    let (executed, stop) = s.cpu.run(maxInstructions: 10)
    #expect(executed == 4 && stop == .ioStop)
    #expect(bus.writes.count == 2 && bus.writes[0] == (0x80, 1, 0x61) && bus.writes[1] == (0xf4, 2, 0x1261))
  }
}

struct ProgramTests {
  @Test func sumLoopRunsToHalt() throws {
    // xor eax, eax; mov ecx, 100; 1: add eax, ecx; dec ecx; jnz 1b; hlt (clang + llvm-objdump)
    let s = try makeSandbox([0x31, 0xc0, 0xb9, 0x64, 0x00, 0x00, 0x00, 0x01, 0xc8, 0xff, 0xc9, 0x75, 0xfa, 0xf4])
    let (executed, stop) = s.cpu.run(maxInstructions: 10_000)
    #expect(stop == .halted && executed == 2 + 3 * 100 + 1)
    #expect(s.reg(.rax) == 5050 && s.reg(.rcx) == 0)
  }

  @Test func selfModifyingCodeIsSeen() throws {
    // 0: mov eax, 1; 5: mov byte ptr [rip-11], 7 (patches the imm at 1); 12: jmp 0
    let code: [UInt8] = [0xb8, 0x01, 0, 0, 0, 0xc6, 0x05, 0xf5, 0xff, 0xff, 0xff, 0x07, 0xe9, 0xef, 0xff, 0xff, 0xff]
    let s = try makeSandbox(code)
    #expect(s.cpu.run(maxInstructions: 3).executed == 3)
    #expect(s.reg(.rax) == 1 && s.cpu.state.rip == Layout.code)
    #expect(s.cpu.step() == .retired)
    #expect(s.reg(.rax) == 7)
  }

  @Test func stepThenRunAgree() throws {
    let code: [UInt8] = [0x31, 0xc0, 0xb9, 0x0a, 0x00, 0x00, 0x00, 0x01, 0xc8, 0xff, 0xc9, 0x75, 0xfa, 0xf4]
    let stepped = try makeSandbox(code)
    var steps = 0
    while stepped.cpu.step() == .retired { steps += 1 }
    let ran = try makeSandbox(code)
    ran.cpu.run(maxInstructions: 1000)
    #expect(stepped.reg(.rax) == 55 && ran.reg(.rax) == 55 && steps == 2 + 30)
    #expect(stepped.rflags == ran.rflags)
  }
}
