import Debugger
import Introspection
import Machine
import TestGuests
import Testing

/// Single steps through a batch handler (`subscribeSingleSteps`): plain steps go to the batch,
/// everything else to the handler, with the answers of one-at-a-time stepping. Expected
/// addresses come from each guest's source and disassembly (`llvm-objdump -d`).
@Suite struct StepBatchTests {
  let api = EventAPITests()

  /// Who saw an event: the batch handler or the ordinary one.
  enum Seen: Equatable, Sendable {
    case batch(UInt64)
    case handler(Event)
  }

  /// A batch handler that records each plain step's PC and goes on.
  func recording(_ seen: Recorder<Seen>) -> SingleStepBatchHandler {
    { steps, _ in
      try steps { pc in
        seen.append(.batch(pc))
        return true
      }
      return .continue
    }
  }

  @Test(arguments: Engines.all) func plainStepsGoToTheBatchAndTheRestToTheHandler(engine: TestEngine) throws {
    let session = try api.session(TestGuests.guestRequest, on: engine)
    let seen = Recorder<Seen>()
    try session.subscribe(.guestRequest) { event, _ in
      seen.append(.handler(event))
      return .toggleSingleStep
    }
    try session.subscribeSingleSteps(batch: recording(seen)) { event, _ in
      seen.append(.handler(event))
      return .continue
    }
    #expect(try session.run() == .machineEnded(EventAPITests.pass))
    // guest_request.S: request 1 (stepping on); nop, add and xor are plain steps (the batch's);
    // the OUT of request 0 stops as a guest request, so its step goes to the handler.
    #expect(
      seen.all == [
        .handler(.guestRequest(value: 1)), .batch(0x10_000b), .batch(0x10_000e), .batch(0x10_0010),
        .handler(.singleStep(pc: 0x10_0011)), .handler(.guestRequest(value: 0)),
      ])
  }

  /// tight_loop.S: `mov $100000, %ecx` and `xor %eax, %eax` reach `loop`, then `add $1, %rax`
  /// (4 bytes), `dec %ecx` (2) and `jnz loop` (2) over and over: the stop after step n >= 2 is
  /// at loop, loop+4, loop+6 for (n - 2) % 3 = 0, 1, 2; by step 1000, 333 DECs have run.
  @Test(arguments: Engines.all) func aBatchsStopEndsTheSessionAtItsStep(engine: TestEngine) throws {
    let session = try api.session(TestGuests.tightLoop, on: engine)
    let loop = try api.symbol("loop", in: TestGuests.tightLoop)
    let count = Recorder<UInt64>()
    try session.setSingleStep(true, vcpu: 0)
    try session.subscribeSingleSteps(
      batch: { steps, _ in
        var stop = false
        try steps { pc in
          count.append(pc)
          stop = count.all.count == 1000
          return !stop
        }
        return stop ? .stop : .continue
      },
      handler: { event, _ in
        Issue.record("no step of the loop is more than a plain step, yet \(event) reached the handler")
        return .continue
      })
    #expect(try session.run() == .stopped(vcpu: 0, event: .singleStep(pc: loop + 6)))
    #expect(count.all.count == 1000)
    #expect(try session.context(forVCPU: 0).registers().rcx == 100_000 - 333)
  }

  /// The whole loop, batch after batch: 300004 instructions (tight_loop.S), the last of them
  /// the OUT that ends the machine (no step event: the machine's end).
  @Test(arguments: Engines.all) func everyPlainStepOfALongLoopReachesTheBatchOnce(engine: TestEngine) throws {
    let session = try api.session(TestGuests.tightLoop, on: engine)
    let loop = try api.symbol("loop", in: TestGuests.tightLoop)
    let plain = Recorder<Int>()
    try session.setSingleStep(true, vcpu: 0)
    try session.subscribeSingleSteps(
      batch: { steps, _ in
        var count = 0
        var atLoop = 0
        try steps { pc in
          count += 1
          if pc == loop { atLoop += 1 }
          return true
        }
        plain.append(count)
        plain.append(-atLoop)
        return .continue
      },
      handler: { _, _ in .continue })
    #expect(try session.run() == .machineEnded(EventAPITests.pass))
    #expect(plain.all.filter { $0 > 0 }.reduce(0, +) == 300_003)
    // Once after the XOR and after each of the 99999 taken JNZs.
    #expect(plain.all.filter { $0 < 0 }.reduce(0, +) == -100_000)
  }

  /// An access handler's toggle counts from its instruction's stop, as without a batch:
  /// step_exits.S steps `mov $0x3ff,%dx` and `mov $0x5a,%al` (stops at 0x100004, 0x100006),
  /// then its OUT to port 0x3ff turns stepping off; the OUT's stop (0x100007) still has its
  /// step event, from the handler, and the guest runs free to its HLT.
  @Test(arguments: Engines.all) func anAccessHandlersToggleEndsTheBatchAtItsInstruction(engine: TestEngine) throws {
    let session = try api.session(TestGuests.stepExits, on: engine)
    let seen = Recorder<Seen>()
    try session.setSingleStep(true, vcpu: 0)
    try session.subscribe(.port(0x3ff...0x3ff)) { event, _ in
      let first = !seen.all.contains { if case .handler(.access) = $0 { true } else { false } }
      seen.append(.handler(event))
      return first ? .toggleSingleStep : .continue
    }
    try session.subscribeSingleSteps(batch: recording(seen)) { event, _ in
      seen.append(.handler(event))
      return .continue
    }
    #expect(try session.run() == .machineEnded(.halted))
    #expect(
      Array(seen.all.prefix(5)) == [
        .batch(0x10_0004), .batch(0x10_0006), .handler(.access(.portWrite(port: 0x3ff, size: 1, value: 0x5a))),
        .handler(.singleStep(pc: 0x10_0007)), .handler(.access(.portRead(port: 0x3ff, size: 1))),
      ])
    #expect(!seen.all.dropFirst(3).contains { if case .batch = $0 { true } else { false } })
  }

  @Test(arguments: Engines.all) func answersThatBreakTheBatchContractAreErrors(engine: TestEngine) throws {
    // Stepping off without ending the batch: the step that then ended it (the OUT of
    // request 0) was stepped as if stepping were still on.
    let toggling = try api.session(TestGuests.guestRequest, on: engine)
    try toggling.subscribe(.guestRequest) { _, _ in .toggleSingleStep }
    try toggling.subscribeSingleSteps(
      batch: { steps, _ in
        try steps { _ in true }
        return .toggleSingleStep
      }, handler: { _, _ in .continue })
    let error = #expect(throws: IntrospectionError.self) { try toggling.run() }
    #expect(
      error?.description
        == "the single-step batch handler on vCPU 0 answered .toggleSingleStep without ending its batch")

    let idle = try api.session(TestGuests.tightLoop, on: engine)
    try idle.setSingleStep(true, vcpu: 0)
    try idle.subscribeSingleSteps(batch: { _, _ in .continue }, handler: { _, _ in .continue })
    let idleError = #expect(throws: IntrospectionError.self) { try idle.run() }
    #expect(
      idleError?.description
        == "the single-step batch handler on vCPU 0 answered .continue without taking its steps")
  }
}
