import Debugger
import Machine
import TestGuests
import Testing

/// Both interrupt policies on a guest with a 1 kHz PIT tick (Guests/tests/timer.S).
@Suite struct InterruptPolicyTests {
  /// Steps the guest to its end, or (with `ticks`) until that many ticks have been stepped
  /// into and the instruction after the last one has run: under `deliver` a slow or loaded
  /// host can take a tick every few steps, and the busy loop then takes very long to end.
  func stops(_ policy: InterruptPolicy, on engine: TestEngine, ticks: Int? = nil) throws -> [Stop] {
    var configuration = MachineConfiguration(kernel: TestGuests.timer.image, kernelName: "timer")
    configuration.interruptController = true  // KVM's in-kernel chips; the interpreter always has its own
    configuration.accelerator = engine.choice
    configuration.timeoutMilliseconds = 30_000
    let stepper = try Stepper(
      machine: Machine(configuration: configuration, console: CapturedConsole()), policy: policy)
    var stops: [Stop] = []
    var seen = 0
    for _ in 0..<200_000 {
      let stop = try stepper.step()
      stops.append(stop)
      if let ticks, seen >= ticks { break }  // the stop after the last tick is in
      if case .interrupt = stop.reason { seen += 1 }
      if case .exit(let outcome) = stop.reason {
        #expect(outcome == .debugExit(value: 0x10, status: 33))
        break
      }
    }
    return stops
  }

  func address(_ name: String) throws -> UInt64 {
    try #require(try ELFFile(TestGuests.timer.elf).symbols().first { $0.name == name }).address
  }

  @Test(arguments: Engines.all) func blockKeepsTicksOutOfStepsUntilTheGuestWaitsForOne(engine: TestEngine) throws {
    let stops = try stops(.block, on: engine)
    let handler = try address("timer_handler")
    let firstHalt = try #require(stops.firstIndex { if case .halt = $0.reason { true } else { false } })
    // 20000 iterations of `dec; jnz` with interrupts on, and not one tick stepped into.
    #expect(!stops[..<firstHalt].contains { if case .interrupt = $0.reason { true } else { false } })
    #expect(stops[firstHalt].reason == .halt(interruptsEnabled: true))
    // HLT with interrupts on waits for the tick even under `block`; the stop is at the handler.
    #expect(stops[firstHalt + 1] == Stop(reason: .interrupt(vector: 0x20), pc: handler, vcpu: 0))
    let interrupts = stops.filter { if case .interrupt = $0.reason { true } else { false } }
    #expect(interrupts.count == 3)  // one per HLT until the handler has counted three
    // Programming the PIC and PIT (in-kernel on KVM, Hyperstep's own on the interpreter): one
    // stop after each instruction (all 2 bytes long there, per the disassembly).
    let start = try address("program_pic")
    let end = try address("enable")
    let programming = stops.map(\.pc).filter { $0 > start && $0 <= end }
    #expect(programming == Array(stride(from: start + 2, through: end, by: 2)))
    // A load from the in-kernel local APIC: one stop after it, at the next instruction.
    let pcs = stops.map(\.pc)
    let afterRead = try #require(pcs.firstIndex(of: try address("lapic_done")))
    #expect(pcs[afterRead - 1] == (try address("lapic_read")))
  }

  @Test(arguments: Engines.all) func deliverShowsTicksAndTheirHandlersWhileStepping(engine: TestEngine) throws {
    let stops = try stops(.deliver, on: engine, ticks: 5)
    let handler = try address("timer_handler")
    let firstHalt = stops.firstIndex { if case .halt = $0.reason { true } else { false } } ?? stops.count
    let early = stops[..<firstHalt].indices.filter { stops[$0].reason == .interrupt(vector: 0x20) }
    #expect(!early.isEmpty, "no tick arrived while the busy loop was stepped with interrupts on")
    for index in early where index + 1 < stops.count {
      #expect(stops[index].pc == handler)
      // The handler's own instructions follow in the trace: `incl ticks(%rip)` is 6 bytes.
      #expect(stops[index + 1] == Stop(reason: .step, pc: handler + 6, vcpu: 0))
    }
  }
}
