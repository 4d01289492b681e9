import AArch64
import AArch64Guests
import GuestMemory
import Testing

/// The exclusive monitors (ARM ARM B2.9): a store-exclusive succeeds only while both its
/// CPU's local monitor and the global monitor still mark the location.
@Suite struct ExclusiveMonitorTests {
  /// LDXR X1, [X0]; STXR W2, X1, [X0] as two CPUs would interleave them: CPU 1's plain STR
  /// into the granule between CPU 0's LDXR and STXR makes CPU 0's STXR fail (W2 = 1).
  @Test func anotherCPUsStoreIntoTheGranuleFailsTheStoreExclusive() throws {
    let ram = try GuestRAM([MemoryRegionSpec(start: GuestAddress(0x4000_0000), size: 1 << 20)])
    // ldxr x1, [x0]; stxr w2, x1, [x0]; and for CPU 1: str x3, [x0, #8]  (C6.2.138, C6.2.307, C6.2.274)
    let code: [UInt32] = [0xc85f_7c01, 0xc802_7c01, 0xf900_0403]
    for (index, word) in code.enumerated() {
      try ram.store(word, at: GuestAddress(0x4000_0000 + UInt64(index) * 4))
    }
    let monitor = GlobalExclusiveMonitor(cpuCount: 2)
    let cpus = (0..<2).map { A64CPU(memory: ram, cpuIndex: UInt8($0)) }
    for cpu in cpus { cpu.attach(globalMonitor: monitor) }
    for cpu in cpus {
      var state = cpu.state
      state.x[0] = 0x4000_1000
      state.pc = cpu === cpus[0] ? 0x4000_0000 : 0x4000_0008
      cpu.state = state
    }
    #expect(cpus[0].step() == .retired)  // LDXR
    #expect(cpus[1].step() == .retired)  // STR into the same 64-byte granule
    #expect(cpus[0].step() == .retired)  // STXR
    #expect(cpus[0].state.x[2] == 1)

    // Without the other CPU's store the same pair succeeds.
    var state = cpus[0].state
    state.pc = 0x4000_0000
    cpus[0].state = state
    #expect(cpus[0].step() == .retired)
    #expect(cpus[0].step() == .retired)
    #expect(cpus[0].state.x[2] == 0)
  }
}
