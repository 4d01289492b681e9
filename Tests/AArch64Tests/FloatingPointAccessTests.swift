import AArch64
import GuestMemory
import Testing

/// CPACR_EL1.FPEN and the FP access trap (ARM ARM D1.11.1, CheckFPAdvSIMDEnabled64; ESR as
/// D17.2.37 gives it for EC 0x07: IL, CV = 1, COND = 0b1110), and what ID_AA64PFR0_EL1
/// says. Encodings from llvm-mc.
@Suite struct FloatingPointAccessTests {
  static let base: UInt64 = 0x4000_0000
  static let fmovD0One: UInt32 = 0x1e6e_1000  // FMOV D0, #1.0
  static let mrsFPCR: UInt32 = 0xd53b_4401  // MRS X1, FPCR
  static let mrsPFR0: UInt32 = 0xd538_0401  // MRS X1, ID_AA64PFR0_EL1
  static let aese: UInt32 = 0x4e28_4820  // AESE V0.16B, V1.16B (not implemented)
  static let trap: UInt32 = 0x1fe0_0000

  /// One instruction at `base`, run once at `el` with FPEN = `fpen`.
  func run(_ word: UInt32, fpen: UInt64, el: UInt8) throws -> (A64StepResult, A64State) {
    let ram = try GuestRAM([MemoryRegionSpec(start: GuestAddress(Self.base), size: 1 << 16)])
    try ram.store(word, at: GuestAddress(Self.base))
    let cpu = A64CPU(memory: ram)
    cpu.deliversExceptions = false
    var state = cpu.state
    state.pc = Self.base
    state.pstate.el = el
    state.system.cpacr = fpen << 20
    cpu.state = state
    let result = cpu.step()
    return (result, cpu.state)
  }

  @Test(arguments: [(0, 1), (2, 1), (0, 0), (1, 0), (2, 0)] as [(UInt64, UInt8)])
  func fpInstructionsAndFPCRTrapWhereFPENSaysSo(fpen: UInt64, el: UInt8) throws {
    for word in [Self.fmovD0One, Self.mrsFPCR] {
      let (result, state) = try run(word, fpen: fpen, el: el)
      #expect(result == .exception(A64Exception(syndrome: Self.trap)))
      #expect(state.pc == Self.base)
      #expect(state.vLow(0) == 0)
    }
  }

  /// FPEN 0b01 lets EL1 use FP but not EL0; 0b11 lets both.
  @Test(arguments: [(1, 1), (3, 1), (3, 0)] as [(UInt64, UInt8)])
  func fpRunsWhereFPENAllowsIt(fpen: UInt64, el: UInt8) throws {
    let (result, state) = try run(Self.fmovD0One, fpen: fpen, el: el)
    #expect(result == .retired)
    #expect(state.vLow(0) == 0x3ff0_0000_0000_0000)
  }

  /// An encoding the interpreter does not implement is UNDEFINED (EC 0) even while FPEN
  /// would trap: decoding comes before the enable check.
  @Test func anUnimplementedSIMDEncodingIsUndefinedNotTrapped() throws {
    let (result, _) = try run(Self.aese, fpen: 0, el: 1)
    #expect(result == .exception(.undefined))
  }

  /// ID_AA64PFR0_EL1: EL0 and EL1 AArch64 (0x11), FP and AdvSIMD fields 0 (implemented,
  /// no half precision), no EL2/EL3 and no GIC system registers.
  @Test func idRegisterSaysFPAndAdvancedSIMDAreImplemented() throws {
    let (result, state) = try run(Self.mrsPFR0, fpen: 0, el: 1)
    #expect(result == .retired)
    #expect(state.x[1] == 0x11)
  }
}
