import AArch64
import AArch64Guests
import Machine
import Testing

/// The AArch64 guests on the virt machine. Expected outputs come from each guest's source
/// (its header comment, its CHECK lines with values worked out from the ARM ARM); the
/// same guests run under qemu-system-aarch64 in scripts/aarch64-vs-qemu.sh.
@Suite struct GuestCheckTests {
  @Test func integerLoadStoreExclusiveAndExceptionChecksAllPass() throws {
    let guest = AArch64Guests.a64Checks
    let (output, outcome, _) = try VirtGuests.run(guest)
    // As many checks as the source has CHECK and CHECKFLAGS lines (outside the macros'
    // own definitions, whose lines name a macro argument), none failed.
    let checks = try VirtGuests.source(of: guest).split(separator: "\n")
      .filter {
        let line = $0.trimmingPrefix(while: \.isWhitespace)
        return (line.hasPrefix("CHECK ") || line.hasPrefix("CHECKFLAGS ")) && !line.contains("\\")
      }.count
    #expect(checks > 90)
    #expect(output == "a64_checks: \(VirtGuests.hex(checks)) checks, failed 0000000000000000\n")
    #expect(outcome == .exit(0, reason: 0x20026))
  }

  /// FP and Advanced SIMD: the FP access trap while CPACR_EL1.FPEN is 0 (ESR 0x1fe00000),
  /// then FMADD and vector FMUL/FMLA dot products, FSQRT, FDIV under two rounding modes,
  /// FCVT to half, the FCVT*/SCVTF conversions and the FPSR flags they raise, and CNT, ADDV,
  /// UMAXV and TBL; every value worked out with Python's exact fractions (Guests/aarch64/a64_fp.S).
  @Test func floatingPointTrapArithmeticConversionsAndSIMD() throws {
    let (output, outcome, _) = try VirtGuests.run(AArch64Guests.a64Fp)
    #expect(
      output == """
        fp: traps=0000000000000002 esr=000000001fe00000 esr=000000001fe00000
        dot-d=c00fae147ae147b1 dot-s=0000000040cd5556
        sqrt2=3ff6a09e667f3bcd third-rn=000000003eaaaaab third-rz=000000003eaaaaaa half=0000000000003e00
        cvt=fffffffffffffffe 0000000000000002 0000000000000003 fffffffffffffffd 4340000000000000 0000000000000000
        fpsr-div=0000000000000012 fpsr-cvt=0000000000000011
        simd=0000000000000040 00000000000000fe 1032547698badcfe efcdab8967452301

        """)
    #expect(outcome == .exit(0, reason: 0x20026))
  }

  @Test func timerInterruptsWakeWFIThroughTheGIC() throws {
    let (output, outcome, _) = try VirtGuests.run(AArch64Guests.a64Timer)
    #expect(output == "timer: ticks=0000000000000003 last=000000000000001e elapsed-ok=0000000000000001\n")
    #expect(outcome == .powerOff)
  }

  /// Time is virtual: the same guest retires the same instructions, interrupts included.
  @Test func timerRunsAreIdenticalInstructionForInstruction() throws {
    let (_, _, first) = try VirtGuests.run(AArch64Guests.a64Timer)
    let (_, _, second) = try VirtGuests.run(AArch64Guests.a64Timer)
    #expect(first.cpus[0].retiredInstructions == second.cpus[0].retiredInstructions)
    #expect(first.cpus[0].state == second.cpus[0].state)
  }

  /// PSCI CPU_ON/CPU_OFF/AFFINITY_INFO and the global exclusive monitor: however finely the
  /// two CPUs interleave, no increment of the shared counter is lost.
  @Test(arguments: [1, 3, 7, 10_000] as [UInt64]) func twoCPUsCountWithExclusivesWithoutLosingUpdates(quantum: UInt64)
    throws
  {
    let (output, outcome, _) = try VirtGuests.run(AArch64Guests.a64Smp, cpus: 2, quantum: quantum)
    #expect(output == "smp: context=0000000000000055 mpidr=0000000080000001 counter=0000000000000fa0\n")
    #expect(outcome == .powerOff)
  }

  /// The guest's own debugger: software step of EL0 code (ISV and EX, the stepped SVC, the
  /// ISV = 0 step after an exception return, the STXR failing because ERET cleared the
  /// monitor), a breakpoint and a watchpoint at EL1, each syndrome from the guest's header
  /// (worked out from the ARM ARM, D2).
  @Test func guestSoftwareStepBreakpointAndWatchpointSyndromes() throws {
    let (output, outcome, _) = try VirtGuests.run(AArch64Guests.a64Debug)
    let expected = [
      ("cb000022", 4), ("cb000062", 8), ("cb000022", 12), ("cb000022", 16), ("56000000", 20), ("ca000022", 20),
      ("cb000022", 24), ("56000001", 28), ("c6000022", 0), ("d6000062", 0), ("000000fa", 0),
    ].map { "d 00000000\($0.0) \(VirtGuests.hex($0.1))\n" }.joined()
    #expect(output == expected + "stxr-status 0000000000000001\n")
    #expect(outcome == .exit(0, reason: 0x20026))
  }

  /// The step contract's exclusives clause: a host stepper retiring one instruction at a
  /// time (`VirtMachine.step`) touches neither the local nor the global monitor, so every
  /// STXR of the loop succeeds first time, the output is the unstepped run's, and so is the
  /// number of instructions retired.
  @Test func aHostStepperStepsAnExclusiveLoopOneInstructionAtATime() throws {
    let guest = AArch64Guests.a64Exclusive
    let expected = "exclusive: counter=0000000000000005 failures=0000000000000000 control=0000000000000001\n"
    let (plain, plainOutcome, plainVM) = try VirtGuests.run(guest)
    #expect(plain == expected)
    #expect(plainOutcome == .exit(0, reason: 0x20026))

    let console = CapturedConsole()
    let vm = try VirtGuests.machine(guest, console: console)
    var steps = 0
    var stop = VirtMachine.Stop.step
    while stop.continues && steps < 100_000 {
      stop = vm.step(cpu: 0, deliverInterrupts: false)
      steps += 1
    }
    #expect(stop == .ended(.exit(0, reason: 0x20026)))
    #expect(console.text == expected)
    #expect(vm.cpus[0].retiredInstructions == plainVM.cpus[0].retiredInstructions)
  }

  /// The MMU's faults and AT, each ESR and PAR_EL1 from the guest's header (ARM ARM D5,
  /// D17.2.37, D23.2.95); FARs as offsets from the guest's `scratch` pages.
  @Test func translationPermissionAndAccessFlagFaultsAndAT() throws {
    let guest = AArch64Guests.a64Mmu
    let scratch = try #require(try ELFFile(guest.elf, for: .aarch64).symbols().first { $0.name == "scratch" }).address
    let (output, outcome, _) = try VirtGuests.run(guest)
    let h = { (value: UInt64) in VirtGuests.hex(value) }
    let expected = [
      "u \(h(0x0011_2233_4455_6677)) \(h(0))",
      "f \(h(0x9600_004f)) \(h(0x1008))",
      "f \(h(0x9600_0007)) \(h(0x2010))",
      "f \(h(0x9600_000b)) \(h(0x3018))",
      "f \(h(0x9600_0005)) \(h(0xc000_0000 &- scratch))",
      "p \(h(0xff << 56 | scratch | 0xa00)) \(h(0))",
      "p \(h(0x80f)) \(h(0))",
      "f \(h(0x8600_000f)) \(h(0x100))",
    ].map { $0 + "\n" }.joined()
    #expect(output == expected)
    #expect(outcome == .exit(0, reason: 0x20026))
  }

  /// Interrupts while a host steps (`--irq`): with `deliver` the timer's IRQ is taken at a
  /// step boundary and the step stops at the IRQ vector (VBAR_EL1 + 0x280, current EL with
  /// SP_ELx), ELR_EL1 the instruction not yet run, so the PC never looks stuck; with `block`
  /// no step ever enters the handler, the interrupt stays pending and the guest's tick count
  /// (X20) stays 0.
  @Test(arguments: [true, false]) func aTimerInterruptPendingWhileStepping(deliver: Bool) throws {
    let guest = AArch64Guests.a64Timer
    let symbols = try ELFFile(guest.elf, for: .aarch64).symbols()
    let vectors = try #require(symbols.first { $0.name == "vectors" }).address
    let handler = try #require(symbols.first { $0.name == "irq_handler" }).address
    let console = CapturedConsole()
    let vm = try VirtGuests.machine(guest, console: console)
    var previous = vm.cpus[0].state.pc
    var entered = false
    for _ in 0..<200_000 {
      let stop = vm.step(cpu: 0, deliverInterrupts: deliver)
      let state = vm.cpus[0].state
      if state.pc == vectors + 0x280 {
        entered = true
        #expect(state.system.elr == previous, "ELR_EL1 must be the instruction the IRQ pre-empted")
        #expect(state.pstate.daif & PState.i != 0)
        #expect(stop == .interrupt(fiq: false))
        break
      }
      #expect(state.pc != handler)
      previous = state.pc
    }
    #expect(entered == deliver)
    if !deliver {
      #expect(vm.cpus[0].state.x[20] == 0)
      #expect(vm.cpus[0].physicalTimerFiring)
    }
  }

  /// MMIO while a host steps: each step of putc's store to UARTDR (putc + 4) adds exactly one
  /// byte to the output and stops at the next instruction; the GIC's acknowledge (the
  /// handler's load of GICC_IAR) returns INTID 30 once per tick. Stepped to the end with
  /// interrupts delivered, the guest prints what it prints unstepped.
  @Test func steppedMMIOHasExactlyOneSideEffectPerStep() throws {
    let guest = AArch64Guests.a64Timer
    let symbols = try ELFFile(guest.elf, for: .aarch64).symbols()
    let putc = try #require(symbols.first { $0.name == "putc" }).address
    let handler = try #require(symbols.first { $0.name == "irq_handler" }).address
    let console = CapturedConsole()
    let vm = try VirtGuests.machine(guest, console: console)
    var stores = 0
    var acknowledged: [UInt64] = []
    var stop = VirtMachine.Stop.step
    var steps = 0
    while stop.continues && steps < 2_000_000 {
      let pc = vm.cpus[0].state.pc
      let before = console.text.utf8.count
      stop = vm.step(cpu: 0, deliverInterrupts: true)
      steps += 1
      if pc == putc + 4 {
        stores += 1
        #expect(console.text.utf8.count == before + 1)
        #expect(vm.cpus[0].state.pc == putc + 8)
      }
      if pc == handler + 4 { acknowledged.append(vm.cpus[0].state.x[21]) }  // after `ldr w21, [x0, #0x0c]`
    }
    #expect(stop == .ended(.powerOff))
    #expect(console.text == "timer: ticks=0000000000000003 last=000000000000001e elapsed-ok=0000000000000001\n")
    #expect(stores == console.text.utf8.count)
    #expect(acknowledged == [30, 30, 30])
  }
}

extension VirtMachine.Stop {
  /// A step that retired an instruction or entered a handler: stepping goes on.
  var continues: Bool {
    switch self {
    case .step, .exception, .interrupt, .guestRequest: true
    default: false
    }
  }
}
