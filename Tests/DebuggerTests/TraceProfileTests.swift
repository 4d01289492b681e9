import Debugger
import Machine
import Testing

@Suite struct TraceProfileTests {
  let symbols = SymbolTable(
    entries: [
      .init(address: 0x100, name: "f"), .init(address: 0x200, name: "g"), .init(address: 0x300, name: "handler"),
    ],
    source: "test")

  func profile(_ stops: [(UInt64, StopReason)]) -> TraceProfile {
    let profile = TraceProfile(symbols: symbols)
    for (pc, reason) in stops { profile.record(Stop(reason: reason, pc: pc, vcpu: 0)) }
    profile.finish()
    return profile
  }

  @Test func callsReturnsHandlersAndLoops() {
    let result = profile([
      (0x100, .step), (0x104, .step),
      (0x200, .step), (0x204, .step),  // g entered at its first byte: a call
      (0x300, .exception(vector: 6)), (0x304, .step),  // a fault's handler: a call too
      (0x208, .step),  // back in g, which is on the stack: a return
      (0x108, .step),  // back in f
      (0x100, .step),  // f's first byte again from inside f: a loop, not a call
      (0x108, .exit(.halted)),  // nothing runs after an exit
    ])
    #expect(result.instructions == 9)
    #expect(result.summary() == "4 f\n3 g\n2 handler\n")
    #expect(
      result.callTree() == """
        f  calls=1  instructions=9 (self 4)
          g  calls=1  instructions=5 (self 3)
            handler  calls=1  instructions=2 (self 2)

        """)
    #expect(result.folded() == "f 4\nf;g 3\nf;g;handler 2\n")
  }

  @Test func addressesWithoutSymbolsAreUnknown() {
    let result = TraceProfile(symbols: nil)
    result.record(Stop(reason: .step, pc: 0x10, vcpu: 0))
    result.finish()
    #expect(result.summary() == "1 [unknown]\n")
    #expect(result.chromeTrace().contains("\"name\":\"[unknown]\",\"ph\":\"X\",\"ts\":0,\"dur\":1"))
  }
}
