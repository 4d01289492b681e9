import Debugger
import GuestMemory
import Machine
import TestGuests
import Testing

/// The step contract, checked on real guests. Expected traces are written from each guest's
/// disassembly (`llvm-objdump -d` of the ELF the build produces), never from a run.
@Suite struct StepContractTests {
  func machine(_ guest: GuestImage, on engine: TestEngine, console: CapturedConsole = CapturedConsole()) throws
    -> Machine
  {
    var configuration = MachineConfiguration(kernel: guest.image, kernelName: guest.name)
    configuration.accelerator = engine.choice
    if guest.format == "flat-real" { configuration.format = .flatReal }
    configuration.timeoutMilliseconds = 20_000
    return try Machine(configuration: configuration, console: console)
  }

  func symbol(_ name: String, in guest: GuestImage) throws -> UInt64 {
    try #require(try ELFFile(guest.elf).symbols().first { $0.name == name }).address
  }

  @Test(arguments: Engines.all) func everyExitKindStopsOnceAfterEachInstruction(engine: TestEngine) throws {
    let stepper = try Stepper(machine: machine(TestGuests.stepExits, on: engine))
    var trace: [UInt64] = [try stepper.pc()]
    var last = try stepper.step()
    trace.append(last.pc)
    while last.reason == .step {
      last = try stepper.step()
      trace.append(last.pc)
    }
    // From `llvm-objdump -d step_exits.elf`: one stop before each instruction (and one per
    // REP iteration), HLT retired and reported.
    #expect(
      trace == [
        0x10_0000,  // mov $0x3ff,%dx
        0x10_0004,  // mov $0x5a,%al
        0x10_0006,  // out %al,%dx       (VMM port)
        0x10_0007,  // in %dx,%al        (VMM port)
        0x10_0008,  // lea text,%rsi
        0x10_000f,  // outsb             (VMM port)
        0x10_0010,  // mov $2,%ecx
        0x10_0015,  // rep outsb         (two iterations)
        0x10_0015,  //   after the first iteration
        0x10_0017,  // lea buffer,%rdi
        0x10_001e,  // insb              (VMM port)
        0x10_001f,  // mov $0xd0000000,%ebx
        0x10_0024,  // movl $1,(%rbx)    (MMIO store)
        0x10_002a,  // movl (%rbx),%eax  (MMIO load)
        0x10_002c,  // incl (%rbx)       (MMIO read-modify-write)
        0x10_002e,  // xor %eax,%eax
        0x10_0030,  // cpuid
        0x10_0032,  // mov $0xc0000080,%ecx
        0x10_0037,  // rdmsr
        0x10_0039,  // wrmsr
        0x10_003b,  // mov %cr0,%rax
        0x10_003e,  // mov %rax,%cr0
        0x10_0041,  // rdtsc
        0x10_0043,  // mov $2,%ecx
        0x10_0048,  // rep insb          (two iterations, VMM port)
        0x10_0048,  //   after the first iteration
        0x10_004a,  // cli
        0x10_004b,  // hlt
        0x10_004c,  // after hlt: reported as a halt, not run past
      ])
    #expect(last.reason == .halt(interruptsEnabled: false))
    // Halted with interrupts off: nothing runs any more.
    #expect(try stepper.step() == Stop(reason: .halt(interruptsEnabled: false), pc: 0x10_004c, vcpu: 0))
  }

  @Test(arguments: Engines.all) func movSSShadowHasNoStopOfItsOwn(engine: TestEngine) throws {
    let stepper = try Stepper(machine: machine(TestGuests.stepSpecial, on: engine))
    var trace = [try stepper.pc()]
    for _ in 0..<3 { trace.append(try stepper.step().pc) }
    // llvm-objdump: 100000 mov $0x10,%eax; 100005 mov %eax,%ss; 100007 nop; 100008 nop; 100009 lea.
    // The NOP at 100007 runs in the MOV SS shadow, so no stop lands on it (SDM vol. 3, 6.8.3).
    #expect(trace == [0x10_0000, 0x10_0005, 0x10_0008, 0x10_0009])
  }

  @Test(arguments: Engines.all) func repStringStopsStayOnTheInstructionUntilItsLastIteration(engine: TestEngine) throws
  {
    let machine = try machine(TestGuests.stepSpecial, on: engine)
    let stepper = try Stepper(machine: machine)
    var stop = try stepper.step()
    while stop.pc != 0x10_001c { stop = try stepper.step() }  // up to `rep movsb`
    var stopsOnRep = 1
    stop = try stepper.step()
    while stop.pc == 0x10_001c {
      stopsOnRep += 1
      stop = try stepper.step()
    }
    // One stop before the REP, then one per trap delivered (at most one per iteration, 3 here),
    // RIP staying on the REP until the last iteration; then the next instruction, PUSHF.
    #expect((2...4).contains(stopsOnRep))
    #expect(stop.pc == 0x10_001e)
    let target = try #require(try ELFFile(TestGuests.stepSpecial.elf).symbols().first { $0.name == "target" })
    #expect(try machine.memory.read(at: GuestAddress(target.address), count: 4) == Array("abc".utf8) + [0])
  }

  @Test(arguments: Engines.all) func guestDebugRegistersBehaveTheSameWhenStepped(engine: TestEngine) throws {
    let console = CapturedConsole()
    _ = try machine(TestGuests.guestWatchpoints, on: engine, console: console).run()
    let plain = console.text
    let (entries, stepped) = try stepToTheEnd(TestGuests.guestWatchpoints, on: engine)
    #expect(stepped == plain)
    // DR0 and DR7 read back what the guest wrote; its DR1 instruction breakpoint fires into its
    // own #DB handler with DR6.B1 (ffff0ff2: SDM vol. 3, 18.2.3).
    #expect(plain.hasPrefix("dr0=ok dr7=ok\n"))
    #expect(plain.contains("ffff0ff2"))
    #expect(entries.contains { $0.0 == 1 && $0.1 == (try? symbol("db_handler", in: TestGuests.guestWatchpoints)) })
    // The guest's DR0 write watchpoint fires into its #DB handler with DR6.B0 (ffff0ff1: SDM
    // vol. 3, 18.2.3), run or stepped: the interpreter checks every data access against
    // DR0-DR3; on KVM hosts that deliver no data breakpoints (PVM) Hyperstep protects the
    // watched page and delivers the #DB itself (Machine/GuestDataBreakpoints.swift).
    #expect(plain.contains("ffff0ff1"), "\(plain)")
    #expect(stepped.contains("ffff0ff1"), "\(stepped)")
    #expect(plain.contains("hits=00000002"), "\(plain)")
  }

  /// Steps a guest to its end; returns the handler entries seen and what the guest printed.
  func stepToTheEnd(_ guest: GuestImage, on engine: TestEngine) throws -> (entries: [(UInt8, UInt64)], output: String) {
    let console = CapturedConsole()
    let stepper = try Stepper(machine: machine(guest, on: engine, console: console))
    var entries: [(UInt8, UInt64)] = []
    for _ in 0..<100_000 {
      let stop = try stepper.step()
      if case .exception(let vector) = stop.reason { entries.append((vector, stop.pc)) }
      if case .exit(let outcome) = stop.reason {
        #expect(outcome == .debugExit(value: 0x10, status: 33))
        break
      }
    }
    return (entries, console.text)
  }

  func expectHandlerStops(_ entries: [(UInt8, UInt64)], _ expected: [(UInt8, String)], in guest: GuestImage) throws {
    #expect(entries.count == expected.count)
    for ((vector, pc), (expectedVector, name)) in zip(entries, expected) {
      #expect(vector == expectedVector)
      #expect(
        pc == (try symbol(name, in: guest)), "vector \(vector) stopped at 0x\(String(pc, radix: 16)), not \(name)")
    }
  }

  /// The handler entries long_events and protected_events make, in order, by vector.
  static let handlerSequence: [(UInt8, String)] = [
    (3, "bp_handler"), (0x40, "int40_handler"), (6, "ud_handler"), (0, "de_handler"), (13, "gp_handler"),
  ]
  static let guestSingleSteps = Array(repeating: (UInt8(1), "db_handler"), count: 5)

  @Test(arguments: Engines.all) func longModeGuestCountsTheSameHandlerEntriesWhenStepped(engine: TestEngine) throws {
    let (entries, output) = try stepToTheEnd(TestGuests.longEvents, on: engine)
    // The guest's own counters, identical to an unstepped run (GuestEventTests).
    #expect(output == ExpectedOutput.longEvents)
    // Each stop at a handler is at that handler's first instruction, with its vector.
    try expectHandlerStops(
      entries, Self.handlerSequence + [(14, "pf_handler")] + Self.guestSingleSteps, in: TestGuests.longEvents)
  }

  @Test(arguments: Engines.all) func realModeGuestCountsTheSameHandlerEntriesWhenStepped(engine: TestEngine) throws {
    let console = CapturedConsole()
    _ = try machine(TestGuests.realEvents, on: engine, console: console).run()
    #expect(console.text == "db=00000005\nbp=00000001\nint40=00000001\nud=00000001\nde=00000001\n")
    let (entries, output) = try stepToTheEnd(TestGuests.realEvents, on: engine)
    #expect(output == console.text)
    try expectHandlerStops(
      entries,
      [(3, "bp_handler"), (0x40, "int40_handler"), (6, "ud_handler"), (0, "de_handler")] + Self.guestSingleSteps,
      in: TestGuests.realEvents)
  }

  @Test(arguments: Engines.all) func protectedModeGuestCountsTheSameHandlerEntriesWhenStepped(engine: TestEngine) throws
  {
    let (entries, output) = try stepToTheEnd(TestGuests.protectedEvents, on: engine)
    #expect(output == ExpectedOutput.protectedEvents)
    try expectHandlerStops(entries, Self.handlerSequence + Self.guestSingleSteps, in: TestGuests.protectedEvents)
  }
}
