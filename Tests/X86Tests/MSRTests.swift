import GuestMemory
import Testing

@testable import X86

/// RDMSR/WRMSR over the model's MSR table (SDM Vol. 4; Vol. 2, RDMSR, WRMSR), RDTSCP, and
/// the CPUID bits that advertise them.
struct MSRTests {
  // wrmsr; xor eax, eax; xor edx, edx; rdmsr
  static let roundTrip: [UInt8] = [0x0f, 0x30, 0x31, 0xc0, 0x31, 0xd2, 0x0f, 0x32]
  static let rdmsr: [UInt8] = [0x0f, 0x32]
  static let wrmsr: [UInt8] = [0x0f, 0x30]

  func setMSR(_ state: inout X86State, _ index: UInt32, _ value: UInt64) {
    state[.rcx] = UInt64(index)
    state[.rax] = value & 0xffff_ffff
    state[.rdx] = value >> 32
  }

  @Test func roundTrips() throws {
    let values: [(UInt32, UInt64)] = [
      (MSRIndex.star, 0x0023_0010_0000_0000), (MSRIndex.lstar, 0xffff_ffff_8100_0000),
      (MSRIndex.cstar, 0xffff_ffff_8100_1000), (MSRIndex.sfmask, 0x4_7700),
      (MSRIndex.kernelGSBase, 0xffff_8880_0000_0000), (MSRIndex.tscAux, 3), (MSRIndex.sysenterCS, 0x10),
      (MSRIndex.sysenterESP, 0xffff_fe00_0000_0000), (MSRIndex.sysenterEIP, 0xffff_ffff_8100_2000),
      (MSRIndex.pat, 0x0007_0106_0007_0504), (MSRIndex.apicBase, 0xfee0_0800), (MSRIndex.miscEnable, 0x1),
      (MSRIndex.gsBase, 0x7fff_0000_1000), (MSRIndex.efer, ControlBit.eferLME | ControlBit.eferLMA),
    ]
    for (index, value) in values {
      let s = try makeSandbox(Self.roundTrip) { setMSR(&$0, index, value) }
      #expect(s.cpu.run(maxInstructions: 4).executed == 4)
      #expect(s.reg(.rax) | s.reg(.rdx) << 32 == value, "MSR \(String(index, radix: 16))")
    }
  }

  @Test func fsBaseIsTheSegmentBase() throws {
    // wrmsr (FS_BASE); mov rax, fs:[0]
    let s = try makeSandbox([0x0f, 0x30, 0x64, 0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x00, 0x00]) {
      setMSR(&$0, MSRIndex.fsBase, Layout.data)
    }
    try s.store64(0x0123_4567_89ab_cdef, Layout.data)
    #expect(s.cpu.run(maxInstructions: 2).executed == 2)
    #expect(s.cpu.state.fsBase == Layout.data && s.reg(.rax) == 0x0123_4567_89ab_cdef)
  }

  @Test func readZeroExtendsIntoRaxAndRdx() throws {
    let s = try stepOne(Self.rdmsr) {
      $0[.rcx] = UInt64(MSRIndex.pat) | 0xffff_ffff_0000_0000  // ECX only: the upper half is ignored
      $0[.rax] = ~0
      $0[.rdx] = ~0
    }
    // IA32_PAT's power-up value (SDM Vol. 3, 13.12.4).
    #expect(s.reg(.rax) == 0x0007_0406 && s.reg(.rdx) == 0x0007_0406)
  }

  @Test func unknownMSRsAndReservedBits() throws {
    // Unknown (including IA32_SPEC_CTRL, 48h, which CPUID does not advertise): #GP(0) both ways.
    for index: UInt32 in [0x48, 0x1234, 0xc000_0104] {
      let (_, read) = try stepFault(Self.rdmsr) { $0[.rcx] = UInt64(index) }
      #expect(read == .exception(.generalProtection(0)))
      let (_, write) = try stepFault(Self.wrmsr) { $0[.rcx] = UInt64(index) }
      #expect(write == .exception(.generalProtection(0)))
    }
    let bad: [(UInt32, UInt64)] = [
      (MSRIndex.efer, ControlBit.eferLME | ControlBit.eferLMA | 1 << 1),  // reserved EFER bit
      (MSRIndex.efer, ControlBit.eferLMA),  // clearing LME while paging
      (MSRIndex.pat, 0x0007_0406_0007_0402),  // type 2 is reserved
      (MSRIndex.pat, 0x0007_0406_0807_0406),  // type 8 too
      (MSRIndex.lstar, 0x0000_8000_0000_0000),  // not canonical
      (MSRIndex.kernelGSBase, 0x1234_0000_0000_0000),
      (MSRIndex.tscAux, 1 << 32), (MSRIndex.sfmask, 1 << 32),
      (MSRIndex.apicBase, 0xfee0_0000 | 1 << 10),  // x2APIC
      (MSRIndex.mtrrCapabilities, 0), (MSRIndex.machineCheckStatus, 1),
    ]
    for (index, value) in bad {
      let (s, result) = try stepFault(Self.wrmsr) { setMSR(&$0, index, value) }
      #expect(result == .exception(.generalProtection(0)), "MSR \(String(index, radix: 16)) ← \(value)")
      #expect(s.cpu.state.rip == Layout.code)
    }
  }

  @Test func eferLMAIsReadOnlyAndNXEWritable() throws {
    // Writing EFER without LMA while in IA-32e mode keeps LMA (it follows CR0.PG and LME).
    let s = try stepOne(Self.wrmsr) { setMSR(&$0, MSRIndex.efer, ControlBit.eferLME | ControlBit.eferSCE) }
    #expect(s.cpu.state.efer == ControlBit.eferLME | ControlBit.eferLMA | ControlBit.eferSCE)
  }

  @Test func privilegedAtCPL3() throws {
    for code in [Self.rdmsr, Self.wrmsr] {
      let (_, result) = try stepFault(code) {
        $0[.rcx] = UInt64(MSRIndex.star)
        $0[.cs] = .flatCode64(selector: 0x33, dpl: 3)
        $0[.ss] = .flatData(selector: 0x2b, dpl: 3)
      }
      #expect(result == .exception(.generalProtection(0)))
    }
  }

  @Test func tscWriteAndRDTSCP() throws {
    // wrmsr (TSC); rdtscp: the TSC counts retired instructions, so it reads one more.
    let s = try makeSandbox([0x0f, 0x30, 0x0f, 0x01, 0xf9]) { setMSR(&$0, MSRIndex.tsc, 0x1_0000_0000) }
    s.cpu.core.state.msr.tscAux = 0x8000_0005
    #expect(s.cpu.run(maxInstructions: 2).executed == 2)
    #expect(s.reg(.rdx) == 1 && s.reg(.rax) == 1 && s.reg(.rcx) == 0x8000_0005)
    let (_, user) = try stepFault([0x0f, 0x01, 0xf9]) {
      $0.cr4 |= ControlBit.cr4TSD
      $0[.cs] = .flatCode64(selector: 0x33, dpl: 3)
      $0[.ss] = .flatData(selector: 0x2b, dpl: 3)
    }
    #expect(user == .exception(.generalProtection(0)))
  }

  @Test func rdpidReadsTSCAux() throws {
    // F3 0F C7 /7 (rdpid rax): TSC_AUX zero-extended; not privileged.
    let s = try makeSandbox([0xf3, 0x0f, 0xc7, 0xf8]) {
      $0[.rax] = ~0
      $0[.cs] = .flatCode64(selector: 0x33, dpl: 3)
      $0[.ss] = .flatData(selector: 0x2b, dpl: 3)
    }
    s.cpu.core.state.msr.tscAux = 0x1_0002
    #expect(s.cpu.step() == .retired && s.reg(.rax) == 0x1_0002)
  }

  @Test func cpuidAdvertisesWhatIsImplemented() throws {
    let basic = try stepOne([0x0f, 0xa2]) { $0[.rax] = 1 }
    // PSE 3, TSC 4, MSR 5, PAE 6, PGE 13, PAT 16, PSE-36 17 (SDM Vol. 2, CPUID, table 3-11).
    for bit in [3, 4, 5, 6, 13, 16, 17] { #expect(basic.reg(.rdx) & (1 << bit) != 0, "bit \(bit)") }
    let extended = try stepOne([0x0f, 0xa2]) { $0[.rax] = 0x8000_0001 }
    // NX 20, Page1GB 26, RDTSCP 27, LM 29.
    for bit in [20, 26, 27, 29] { #expect(extended.reg(.rdx) & (1 << bit) != 0, "bit \(bit)") }
    let structured = try stepOne([0x0f, 0xa2]) {
      $0[.rax] = 7
      $0[.rcx] = 0
    }
    #expect(structured.reg(.rbx) == 1 << 7 | 1 << 20 && structured.reg(.rcx) == 1 << 22)  // SMEP, SMAP; RDPID
  }
}
