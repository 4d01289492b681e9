import GuestMemory
import KVM
import TestGuests
import Testing

@testable import Debugger
@testable import Machine

/// A KVM vCPU moved into the interpreter and back (`EngineState`, `KVMAssist.run`) loses
/// nothing: N steps taken by the interpreter from KVM's state leave KVM in the state N
/// steps of KVM's own leave it in, field by field, and a guest moved back and forth at
/// random instruction boundaries prints and ends as it does on either engine alone.
@Suite struct EngineSwitchTests {
  func kvmMachine(_ guest: GuestImage, console: CapturedConsole = CapturedConsole()) throws -> Machine {
    var configuration = MachineConfiguration(kernel: guest.image, kernelName: guest.name)
    configuration.accelerator = .kvm
    // The timer guest needs KVM's in-kernel chips (`--irqchip`), which move with the vCPU.
    configuration.interruptController = guest.name == TestGuests.timer.name
    configuration.timeoutMilliseconds = 60_000
    return try Machine(configuration: configuration, console: console)
  }

  /// Everything `EngineState` carries except the TSC, which runs on host time under KVM.
  func expectSame(_ a: EngineState, _ b: EngineState, _ context: String) {
    #expect(a.registers == b.registers, "\(context): registers")
    #expect(a.special == b.special, "\(context): special registers")
    #expect(a.fpu == b.fpu, "\(context): x87/SSE state")
    #expect(a.debug == b.debug, "\(context): debug registers")
    let tsc = EngineState.transferredMSRs.firstIndex(of: 0x10)!  // IA32_TSC (SDM Vol. 4, table 2-2)
    for (index, msr) in EngineState.transferredMSRs.enumerated() where index != tsc {
      #expect(a.msrs[index] == b.msrs[index], "\(context): MSR 0x\(String(msr, radix: 16))")
    }
  }

  /// kvm_failures64: serial output (port I/O through the shared bus), calls, SETcc and the
  /// LOCK CMPXCHG16B that KVM itself can only finish through the interpreter. long_events:
  /// exceptions delivered through the IDT, IRET, a page fault, the guest's own TF traps.
  @Test(requiresKVM, arguments: [1, 17, 250, 700] as [UInt64], ["kvm_failures64", "long_events"])
  func interpreterStepsFromKVMStateEqualKVMSteps(count: UInt64, guestName: String) throws {
    let guest = guestName == "long_events" ? TestGuests.longEvents : TestGuests.kvmFailures64
    let reference = try kvmMachine(guest)
    let stepper = try Stepper(machine: reference)
    for _ in 0..<count { _ = try stepper.step() }

    let switched = try kvmMachine(guest)
    let vcpu = switched.kvmVCPUs[0]
    let start = try EngineState(reading: vcpu)
    let (steps, outcome) = try switched.runOnInterpreter(vcpu, steps: count)
    #expect(steps == count && outcome == nil, "the interpreter stopped early: \(String(describing: outcome))")
    let moved = try EngineState(reading: vcpu)
    try stepper.releaseForOtherEngine()  // the guest's TF back where the interpreter keeps it
    expectSame(moved, try EngineState(reading: reference.kvmVCPUs[0]), "\(guestName) after \(count) steps")
    // The TSC KVM goes on from is the interpreter's: one tick per instruction, no jump.
    let tsc = EngineState.transferredMSRs.firstIndex(of: 0x10)!  // IA32_TSC (SDM Vol. 4, table 2-2)
    #expect(moved.msrs[tsc] >= start.msrs[tsc] + count)
  }

  /// xorshift64, so a failure replays from its seed.
  struct Random {
    var state: UInt64
    mutating func next(_ bound: UInt64) -> UInt64 {
      state ^= state << 13
      state ^= state >> 7
      state ^= state << 17
      return state % bound
    }
  }

  /// The guests, with their output from their sources (see each guest's header comment).
  static let switchedGuests: [(GuestImage, String)] = [
    (TestGuests.kvmFailures64, "cmpxchg16b: zf=00000001 mem=00000003 00000004 zf=00000000 rax=00000003 rdx=00000004\n"),
    // Exceptions through the IDT, IRET, and the guest's own TF single-stepping.
    (TestGuests.longEvents, ExpectedOutput.longEvents),
    // A 1 kHz PIT tick through the 8259, on KVM's in-kernel chips: their state moves too. It
    // prints nothing; it ends once its handler has counted three ticks.
    (TestGuests.timer, ""),
  ]

  @Test(requiresKVM, arguments: [3, 11] as [UInt64], 0..<3)
  func aGuestMovedBetweenEnginesHundredsOfTimesEndsAsOnEither(seed: UInt64, guestIndex: Int) throws {
    let (guest, expected) = Self.switchedGuests[guestIndex]
    let console = CapturedConsole()
    let machine = try kvmMachine(guest, console: console)
    let vcpu = machine.kvmVCPUs[0]
    let stepper = try Stepper(machine: machine)
    var random = Random(state: seed &* 0x9e37_79b9_7f4a_7c15 | 1)
    var switches = 0
    var outcome: RunOutcome?
    // The timer guest spins 40000 instructions first: longer stays, or the test takes minutes.
    let stay: UInt64 = guest.name == TestGuests.timer.name ? 48 : 8
    run: while outcome == nil {
      // A few instructions on KVM (single steps) ...
      for _ in 0...random.next(stay) {
        let stop = try stepper.step()
        if case .exit(let end) = stop.reason {
          outcome = end
          break run
        }
      }
      // ... then a few in the interpreter, and back.
      try stepper.releaseForOtherEngine()
      outcome = try machine.runOnInterpreter(vcpu, steps: 1 + random.next(stay)).outcome
      try stepper.reclaimFromOtherEngine()
      switches += 2
    }
    #expect(switches >= 200, "\(guest.name) seed \(seed): only \(switches) switches")
    #expect(console.text == expected, "\(guest.name) seed \(seed)")
    #expect(outcome == .debugExit(value: 0x10, status: 33), "\(guest.name) seed \(seed)")
  }

  /// The timer guest (Guests/tests/timer.S) on a machine with KVM's in-kernel chips, moved by
  /// the stepper (`Stepper.switchEngine`, which carries the chips' state with the vCPU) after a
  /// random number of steps on each engine, hundreds of times: it ends as it does stepped on
  /// either engine alone. Under the `block` policy a tick is taken only in HLT, one per HLT,
  /// and the guest halts until its handler has counted three: three interrupt stops and a
  /// count of 3, as on either engine, so no tick was lost or taken twice at a move.
  @Test(requiresKVM, arguments: [3, 11] as [UInt64])
  func theTimerGuestMovedWithItsChipsHundredsOfTimesEndsAsOnEither(seed: UInt64) throws {
    func machine(_ engine: TestEngine, console: CapturedConsole) throws -> Machine {
      var configuration = MachineConfiguration(kernel: TestGuests.timer.image, kernelName: "timer")
      configuration.accelerator = engine.choice
      configuration.interruptController = true  // the interpreter always has its own chips
      configuration.timeoutMilliseconds = 60_000
      return try Machine(configuration: configuration, console: console)
    }
    let ticksAddress = GuestAddress(
      try #require(try ELFFile(TestGuests.timer.elf).symbols().first { $0.name == "ticks" }).address)
    /// Steps to the end, switching engines after `chunk()` steps (never, for nil).
    func run(_ engine: TestEngine, switching chunk: (() -> UInt64)?) throws
      -> (outcome: RunOutcome?, console: String, interrupts: Int, ticks: [UInt8], switches: Int)
    {
      let console = CapturedConsole()
      let machine = try machine(engine, console: console)
      let stepper = try Stepper(machine: machine)
      var interrupts = 0
      var switches = 0
      var outcome: RunOutcome?
      run: while outcome == nil && switches < 100_000 {
        for _ in 0..<(chunk?() ?? 1_000_000) {
          let stop = try stepper.step()
          if case .interrupt = stop.reason { interrupts += 1 }
          if case .exit(let end) = stop.reason {
            outcome = end
            break run
          }
        }
        try stepper.switchEngine(to: stepper.engine == .kvm ? .interpreter : .kvm)
        switches += 1
      }
      return (outcome, console.text, interrupts, try machine.memory.read(at: ticksAddress, count: 4), switches)
    }
    var random = Random(state: seed &* 0x9e37_79b9_7f4a_7c15 | 1)
    let switched = try run(.kvm) { 1 + random.next(64) }
    #expect(switched.switches >= 200, "seed \(seed): only \(switched.switches) switches")
    // From the source: the debug exit 0x10 (status 0x21), three ticks, nothing printed.
    #expect(switched.outcome == .debugExit(value: 0x10, status: 33), "seed \(seed)")
    #expect(switched.interrupts == 3 && switched.ticks == [3, 0, 0, 0], "seed \(seed)")
    for engine in [TestEngine.kvm, .emu] {
      let alone = try run(engine, switching: nil)
      #expect(alone.outcome == switched.outcome, "seed \(seed): \(engine) alone")
      #expect(alone.console == switched.console, "seed \(seed): \(engine) alone")
      #expect(alone.interrupts == switched.interrupts && alone.ticks == switched.ticks, "seed \(seed): \(engine) alone")
    }
  }

  /// The interrupt shadow (KVM_GET_VCPU_EVENTS' STI or MOV SS kind) and NMI blocking cross in
  /// both directions: the interpreter's next instruction runs in the shadow and ends it (SDM
  /// Vol. 3, 6.8.3), and NMIs stay blocked, no IRET having run.
  @Test(requiresKVM, arguments: [1, 2] as [UInt8]) func theInterruptShadowAndNMIBlockingMove(shadow: UInt8) throws {
    let machine = try kvmMachine(TestGuests.kvmFailures64)
    let vcpu = machine.kvmVCPUs[0]
    var events = try vcpu.events()
    events.interruptShadow = shadow
    events.nmiMasked = true
    try vcpu.setEvents(events)
    let read = try EngineState(reading: vcpu)
    #expect(read.interruptShadow == shadow && read.nmiBlocked)
    let twin = try machine.moveToInterpreter(0)
    #expect(twin.cpu.state.interruptShadow && twin.cpu.state.stackSegmentShadow == (shadow == 2))
    #expect(twin.cpu.state.nmiBlocked)
    #expect(twin.cpu.step() == .retired)  // the guest's first instruction, a LEA
    #expect(!twin.cpu.state.interruptShadow)
    try machine.moveToKVM(0)
    let back = try vcpu.events()
    #expect(back.interruptShadow == 0 && back.nmiMasked)
  }

  /// An exception KVM is delivering is not part of the state that moves: the move is refused
  /// rather than losing it, and the vCPU stays on KVM, unchanged.
  @Test(requiresKVM) func aMoveWhileKVMHoldsAnEventIsRefused() throws {
    let machine = try kvmMachine(TestGuests.kvmFailures64)
    let vcpu = machine.kvmVCPUs[0]
    var events = try vcpu.events()
    events.exception = VCPUEvents.Exception(vector: 6, injected: true)  // #UD, being delivered
    try vcpu.setEvents(events)
    let before = try EngineState(reading: vcpu)
    #expect {
      _ = try machine.moveToInterpreter(0)
    } throws: { error in
      "\(error)".contains("KVM is delivering exception 6 to vCPU 0")
    }
    expectSame(try EngineState(reading: vcpu), before, "after the refused move")
  }
}
