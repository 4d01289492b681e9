import Debugger
import Machine
import TestGuests
import Testing

/// `Stepper.stepPlain` makes exactly the stops `step()` makes, in the same order, wherever its
/// batches end (by their limit, by `.last`, by `.decline`, or at a stop that is more than a
/// plain step). `step()`'s own stops are checked against each guest's disassembly in
/// StepContractTests; here the two ways of stepping run side by side on fresh machines.
@Suite struct PlainStepTests {
  /// How a tracer answers the plain steps: `.next`, except every `lastEvery`th is `.last` and
  /// every `declineEvery`th is `.decline` (0: never).
  struct Answers: CustomStringConvertible {
    var limit: Int
    var lastEvery = 0
    var declineEvery = 0
    var description: String { "limit \(limit), last every \(lastEvery), decline every \(declineEvery)" }
  }

  static let answers = [
    Answers(limit: 1), Answers(limit: 3), Answers(limit: 1 << 16),
    Answers(limit: 1 << 16, lastEvery: 5), Answers(limit: 1 << 16, declineEvery: 7),
    Answers(limit: 10, lastEvery: 11, declineEvery: 4),
  ]

  /// A guest, its engine and how it is stepped.
  struct Case: CustomStringConvertible {
    var guest: GuestImage
    var engine: TestEngine
    var policy: InterruptPolicy = .block
    /// Watched memory: symbol, length, kinds (interpreter only).
    var watches: [(String, UInt64, MemoryAccessKinds)] = []
    var description: String { "\(guest.name) on \(engine), \(policy)" }
  }

  static let cases: [Case] =
    Engines.all.flatMap { engine in
      [
        Case(guest: TestGuests.stepExits, engine: engine),  // device accesses, REP string I/O, HLT
        Case(guest: TestGuests.stepSpecial, engine: engine),  // MOV SS shadow, REP MOVSB
        Case(guest: TestGuests.longEvents, engine: engine),  // exceptions and the guest's own #DB
      ]
    } + [
      // Timer ticks at exact instructions: a quiet platform's end is at the next deadline.
      Case(guest: TestGuests.timer, engine: .emu), Case(guest: TestGuests.timer, engine: .emu, policy: .deliver),
      Case(
        guest: TestGuests.memoryAccesses, engine: .emu,
        watches: [("var_write", 8, .write), ("var_rmw", 8, [.read, .write]), ("after_movs", 1, .execute)]),
    ]

  /// Enough for every guest above to end; a guest that does not is a failure, not a hang.
  static let stopCap = 400_000

  func stepper(_ test: Case) throws -> Stepper {
    var configuration = MachineConfiguration(kernel: test.guest.image, kernelName: test.guest.name)
    configuration.accelerator = test.engine.choice
    configuration.timeoutMilliseconds = 20_000
    let machine = try Machine(configuration: configuration, console: CapturedConsole())
    let stepper = try Stepper(machine: machine, policy: test.policy)
    if !test.watches.isEmpty {
      let symbols = try ELFFile(test.guest.elf).symbols()
      try stepper.setMemoryWatches(
        try test.watches.map { name, length, kinds in
          MemoryWatch(start: try #require(symbols.first { $0.name == name }).address, length: length, kinds: kinds)
        })
    }
    return stepper
  }

  /// The guest has ended: halted with interrupts off (later steps say so again), or the
  /// machine is over.
  func isLast(_ stop: Stop) -> Bool {
    switch stop.reason {
    case .halt(interruptsEnabled: false), .exit: true
    default: false
    }
  }

  func byStep(_ test: Case) throws -> [Stop] {
    let stepper = try stepper(test)
    var stops: [Stop] = []
    repeat { stops.append(try stepper.step()) } while !isLast(stops.last!) && stops.count < Self.stopCap
    return stops
  }

  func byBatches(_ test: Case, _ answers: Answers) throws -> [Stop] {
    let stepper = try stepper(test)
    var stops: [Stop] = []
    var plain = 0
    while stops.last.map(isLast) != true && stops.count < Self.stopCap {
      let before = stops.count
      let (taken, other) = try stepper.stepPlain(limit: answers.limit) { pc in
        plain += 1
        if answers.declineEvery > 0 && plain % answers.declineEvery == 0 { return .decline }
        stops.append(Stop(reason: .step, pc: pc, vcpu: 0))
        return answers.lastEvery > 0 && plain % answers.lastEvery == 0 ? .last : .next
      }
      #expect(taken == stops.count - before)
      #expect(taken <= answers.limit)
      if let other { stops.append(other) }
    }
    return stops
  }

  @Test(arguments: cases, answers) func batchesMakeTheStopsOfSingleSteps(test: Case, answers: Answers) throws {
    let expected = try byStep(test)
    #expect(isLast(expected.last!), "\(test) did not end within \(Self.stopCap) stops")
    let batched = try byBatches(test, answers)
    #expect(batched.count == expected.count)
    let first = zip(batched, expected).enumerated().first { $0.element.0 != $0.element.1 }
    #expect(first == nil, "first difference at stop \(first?.offset ?? 0): \(String(describing: first?.element))")
  }
}
