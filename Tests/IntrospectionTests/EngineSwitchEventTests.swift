import Introspection
import KVM
import Machine
import TestGuests
import Testing

/// `EventResponse.switchEngine`: a handler moves its vCPU to the other engine at the event's
/// instruction boundary, and the guest goes on there as if nothing happened (long_events: its
/// own INT3, faults and TF traps reach its handlers, whose counts it prints; expected output in
/// ExpectedOutput, from its source).
@Suite struct EngineSwitchEventTests {
  func kvmSession(_ console: CapturedConsole) throws -> IntrospectionSession {
    try EventAPITests().session(TestGuests.longEvents, on: .kvm, console: console)
  }

  @Test(requiresKVM) func aHandlerMovesItsVCPUToTheInterpreterAndBack() throws {
    let console = CapturedConsole()
    let session = try kvmSession(console)
    let events = try EventAPITests().symbol("events", in: TestGuests.longEvents)
    let report = try EventAPITests().symbol("report", in: TestGuests.longEvents)
    let seen = Recorder<Event>()
    try session.subscribe(.hardwareBreakpoint(at: events)) { event, _ in
      seen.append(event)
      return .switchEngine(.interpreter)  // the exceptions and TF traps run on the interpreter
    }
    try session.subscribe(.softwareBreakpoint(at: report)) { event, _ in
      seen.append(event)
      return .switchEngine(.kvm)  // and the report on KVM
    }
    #expect(session.engine == .kvm)
    #expect(try session.run() == .machineEnded(EventAPITests.pass))
    #expect(seen.all == [.hardwareBreakpoint(address: events), .softwareBreakpoint(address: report)])
    #expect(console.text == ExpectedOutput.longEvents)
    #expect(session.engine == .kvm)
  }

  /// A memory watch set on KVM (served through its protected pages) goes on being served by
  /// the interpreter after a handler moved the vCPU there mid-run: the write the guest's #BP
  /// handler makes to its counter (bp_count: `incl`, for the one INT3 at `events`, so
  /// bp=00000001 in its report) is seen once, on the interpreter.
  @Test(requiresKVM) func aMemoryWatchGoesOnAfterTheMoveToTheInterpreter() throws {
    let console = CapturedConsole()
    let session = try kvmSession(console)
    let events = try EventAPITests().symbol("events", in: TestGuests.longEvents)
    let counter = try EventAPITests().symbol("bp_count", in: TestGuests.longEvents)
    let writes = Recorder<EngineKind>()
    try session.subscribe(.memoryAccess(MemoryWatch(start: counter, length: 4, kinds: .write))) { _, _ in
      writes.append(session.engine)
      return .continue
    }
    try session.subscribe(.hardwareBreakpoint(at: events)) { _, _ in .switchEngine(.interpreter) }
    #expect(try session.run() == .machineEnded(EventAPITests.pass))
    #expect(session.engine == .interpreter)
    #expect(console.text == ExpectedOutput.longEvents)
    #expect(writes.all == [.interpreter], "\(writes.all)")
  }

  @Test(arguments: Engines.all) func aMachineThatCannotMoveEndsTheSessionWithTheReason(engine: TestEngine) throws {
    let session = try EventAPITests().session(TestGuests.longEvents, on: engine)
    let events = try EventAPITests().symbol("events", in: TestGuests.longEvents)
    let other: EngineKind = engine == .kvm ? .interpreter : .kvm
    try session.subscribe(.hardwareBreakpoint(at: events)) { _, _ in .switchEngine(other) }
    if engine == .kvm {
      // KVM machines of one vCPU without the in-kernel chips can move: this one does.
      #expect(try session.run() == .machineEnded(EventAPITests.pass))
      #expect(session.engine == .interpreter)
    } else {
      let error = #expect(throws: IntrospectionError.self) { try session.run() }
      #expect("\(error.map { "\($0)" } ?? "")".contains("cannot switch engines: this machine runs on the interpreter"))
    }
  }
}
