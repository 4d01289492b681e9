import Devices
import GuestMemory
import KVM
import TestGuests
import Testing

@testable import Debugger
@testable import Machine

/// KVM's in-kernel PIC, I/O APIC, PIT and local APIC carried into Hyperstep's models of them
/// and back (`KernelChips`; the mapping is documented there), on the timer guest
/// (Guests/tests/timer.S) stopped where it has programmed the 8259s (vectors 0x20/0x28, only
/// IRQ 0 unmasked) and the PIT (counter 0, mode 2, N = 1193), and has its first tick waiting.
@Suite struct KernelChipsTests {
  func timerMachine() throws -> (Machine, Stepper) {
    var configuration = MachineConfiguration(kernel: TestGuests.timer.image, kernelName: "timer")
    configuration.accelerator = .kvm
    configuration.interruptController = true
    configuration.timeoutMilliseconds = 60_000
    let machine = try Machine(configuration: configuration, console: CapturedConsole())
    return (machine, try Stepper(machine: machine))
  }

  func address(_ name: String) throws -> UInt64 {
    try #require(try ELFFile(TestGuests.timer.elf).symbols().first { $0.name == name }).address
  }

  /// Runs to `busy` (interrupts on, PIC and PIT programmed) and waits on the host until KVM's
  /// PIT, which counts host time, has raised IRQ 0 in the master's IRR (the guest is stopped,
  /// so nothing takes it).
  func stopWithATickWaiting(_ machine: Machine, _ stepper: Stepper) throws {
    let stop = try stepper.run(until: [try address("busy")])
    #expect(stop.reason == .breakpoint(address: try address("busy")))
    for _ in 0..<100 where try machine.vm!.picState(master: true).irr & 1 == 0 { HostIO.sleep(milliseconds: 1) }
    #expect(try machine.vm!.picState(master: true).irr & 1 == 1, "no tick from a 1 kHz PIT in 100 ms")
  }

  /// A local APIC timer counting in KVM: periodic, masked (so it interrupts nothing), divide by
  /// 16 (TDCR 0x3, SDM Vol. 3, Figure 11-10), a long initial count; and a TPR and logical ID.
  func startAPICTimer(_ vcpu: VCPU) throws {
    var page = try vcpu.localAPICState()
    page[LocalAPIC.Register.taskPriority] = 0x20
    page[LocalAPIC.Register.logicalDestination] = 0x0100_0000
    page[LocalAPIC.Register.spuriousVector] = 0x1ff  // software enabled
    page[LocalAPIC.Register.lvtTimer] = 0x0002_00f0 | 0x1_0000  // periodic, masked, vector 0xf0
    page[LocalAPIC.Register.timerDivide] = 0x3
    page[LocalAPIC.Register.timerInitialCount] = 0x4000_0000
    try vcpu.setLocalAPICState(page)
  }

  func expectSamePIC(_ a: KVMPICState, _ b: KVMPICState, _ context: String) {
    let fields: [(String, KeyPath<KVMPICState, UInt8>)] = [
      ("last_irr", \.lastIRR), ("irr", \.irr), ("imr", \.imr), ("isr", \.isr), ("priority_add", \.priorityAdd),
      ("irq_base", \.irqBase), ("read_reg_select", \.readRegisterSelect), ("poll", \.poll),
      ("special_mask", \.specialMask), ("init_state", \.initState), ("auto_eoi", \.autoEOI),
      ("rotate_on_auto_eoi", \.rotateOnAutoEOI), ("special_fully_nested_mode", \.specialFullyNestedMode),
      ("init4", \.init4), ("elcr", \.elcr), ("elcr_mask", \.elcrMask),
    ]
    for (name, field) in fields { #expect(a[keyPath: field] == b[keyPath: field], "\(context): \(name)") }
  }

  /// Everything but the load times, which KVM sets itself on KVM_SET_PIT2.
  func expectSamePIT(_ a: KVMPITState, _ b: KVMPITState, _ context: String) {
    #expect(a.flags == b.flags, "\(context): flags")
    for index in 0..<3 {
      var x = a.channels[index]
      var y = b.channels[index]
      x.countLoadTime = 0
      y.countLoadTime = 0
      #expect(x == y, "\(context): counter \(index)")
    }
  }

  func expectSameIOAPIC(_ a: KVMIOAPICState, _ b: KVMIOAPICState, _ context: String) {
    #expect(a.baseAddress == b.baseAddress && a.id == b.id && a.registerSelect == b.registerSelect, "\(context)")
    #expect(a.irr == b.irr, "\(context): irr")
    for pin in 0..<KVMIOAPICState.pinCount {
      #expect(a.redirectionTable[pin] == b.redirectionTable[pin], "\(context): redirection entry \(pin)")
    }
  }

  /// The register page, register by register, except the current count (`tolerance`
  /// decides it) and the computed APR and PPR, checked apart.
  func expectSameAPIC(
    _ a: KVMLocalAPICState, _ b: KVMLocalAPICState, _ context: String, currentCount: (UInt32, UInt32) -> Bool
  ) {
    for offset in stride(from: 0, to: 0x400, by: 0x10).map(UInt32.init) where offset != 0x390 {
      #expect(a[offset] == b[offset], "\(context): APIC register 0x\(String(offset, radix: 16))")
    }
    #expect(currentCount(a[0x390], b[0x390]), "\(context): current count \(a[0x390]) then \(b[0x390])")
  }

  @Test(requiresKVM) func kvmsChipsConvertedToHyperstepsAndBackAreWhatKVMHad() throws {
    let (machine, stepper) = try timerMachine()
    try stopWithATickWaiting(machine, stepper)
    let vcpu = machine.kvmVCPUs[0]
    try startAPICTimer(vcpu)
    let first = HostIO.monotonicNanoseconds()
    let kvm = try KernelChips.read(machine.vm!, [vcpu])
    // What the guest programmed, read from KVM (timer.S's comments and the data sheets).
    #expect(kvm.master.irqBase == 0x20 && kvm.slave.irqBase == 0x28 && kvm.master.imr == 0xfe)
    #expect(kvm.pit.channels[0].mode == 2 && kvm.pit.channels[0].count == 1193)
    #expect(kvm.localAPICs[0][0x390] != 0, "the APIC timer does not count")

    // Into a fresh set of Hyperstep's chips, at a time late enough for the APIC's count.
    let chips = PCPlatformInterrupts(cpuCount: 1, rtcStart: CivilTime(secondsSinceEpoch: 0))
    chips.advance(to: 1 << 40)
    kvm.load(into: chips, apicEnabled: [true])
    // The models behave as the state says: the tick waits as vector 0x20 (IRQ 0 at base
    // 0x20), counter 0 counts 1193 in mode 2, the APIC timer has the count KVM gave.
    #expect(chips.pic.pendingVector == 0x20 && chips.hasInterrupt(cpu: 0))
    #expect(chips.pit.counter(0).mode == 2 && chips.pit.counter(0).initialCount == 1193)
    #expect(chips.localAPICs[0].timerCurrentCount == kvm.localAPICs[0][0x390])
    #expect(chips.localAPICs[0].timerDivisor == 16 && chips.localAPICs[0].taskPriority == 0x20)
    // The count goes on from there: it reaches zero the current count's worth of divided bus
    // clocks on (SDM Vol. 3, 11.5.4), 16 ns each at the 1 GHz bus clock both models count.
    #expect(chips.localAPICs[0].nextDeadline == (1 << 40) + UInt64(kvm.localAPICs[0][0x390]) * 16)
    // Counter 0's first edge comes one count (1193 ticks) after the load, its period started
    // at the move (nothing carried its phase here: `PITPhase` is the engine switch's).
    #expect(chips.pit.nextDeadline == PIT8254.clock.nanoseconds(atTick: chips.pit.tick + 1193))

    // Back, without time passing: field for field what KVM had, the current count included.
    let back = KernelChips(from: chips, basis: kvm)
    expectSamePIC(back.master, kvm.master, "master 8259")
    expectSamePIC(back.slave, kvm.slave, "slave 8259")
    expectSameIOAPIC(back.ioapic, kvm.ioapic, "I/O APIC")
    expectSamePIT(back.pit, kvm.pit, "PIT")
    for index in 0..<3 { #expect(back.pit.channels[index].countLoadTime == kvm.pit.channels[index].countLoadTime) }
    expectSameAPIC(back.localAPICs[0], kvm.localAPICs[0], "local APIC") { $0 == $1 }

    // Written to KVM and read again: the same, except what KVM computes live. The APIC's
    // current count has gone down by the host time between the two reads, divided by 16 at
    // KVM's 1 GHz bus clock (at least 0, at most the elapsed nanoseconds / 16 + 1: had KVM
    // restarted the count from the initial one, it would have gone up); counters 1 and 2's
    // load times are the time of KVM_SET_PIT2, between the two clock readings around it.
    let before = HostIO.monotonicNanoseconds()
    try back.write(to: machine.vm!, [vcpu])
    let again = try KernelChips.read(machine.vm!, [vcpu])
    let after = HostIO.monotonicNanoseconds()
    let hostTime = after - first
    expectSamePIC(again.master, kvm.master, "master 8259 in KVM")
    expectSamePIC(again.slave, kvm.slave, "slave 8259 in KVM")
    expectSameIOAPIC(again.ioapic, kvm.ioapic, "I/O APIC in KVM")
    expectSamePIT(again.pit, kvm.pit, "PIT in KVM")
    for index in 1..<3 {
      let load = UInt64(again.pit.channels[index].countLoadTime)
      #expect(load >= before && load <= after, "counter \(index) loaded at \(load), set between \(before) and \(after)")
    }
    expectSameAPIC(again.localAPICs[0], kvm.localAPICs[0], "local APIC in KVM") { read, written in
      read <= written && UInt64(written - read) <= hostTime / 16 + 1
    }
  }

  /// Moved with the vCPU: the tick KVM raised waits in the interpreter's 8259 and is taken
  /// there (once: the handler's count goes from 0 to 1), and the state comes back to KVM.
  @Test(requiresKVM) func aTickRaisedOnKVMIsTakenOnceOnTheInterpreter() throws {
    let (machine, stepper) = try timerMachine()
    try stopWithATickWaiting(machine, stepper)
    let ticks = GuestAddress(try address("ticks"))
    try stepper.switchEngine(to: .interpreter)
    let twin = try #require(stepper.interpreter)
    let chips = try #require(twin.bus?.platform?.chips)
    #expect(chips.pic.pendingVector == 0x20)
    let stop = try stepper.step()  // under `block`, a step waiting for nothing takes no tick
    #expect(stop.reason == .step)
    // Running, with interrupts on: the waiting tick is taken at once, before any new one.
    let handler = try address("timer_handler")
    let atHandler = try stepper.run(until: [handler])
    #expect(atHandler.reason == .breakpoint(address: handler))
    #expect(chips.pic.master.isr == 1)  // in service, and no second request behind it yet
    let inc = try stepper.step()
    #expect(inc.reason == .step)
    #expect(try machine.memory.read(at: ticks, count: 4) == [1, 0, 0, 0])
    try stepper.switchEngine(to: .kvm)
    // Back in KVM: IRQ 0 is in service (the handler has not sent its EOI yet).
    #expect(try machine.vm!.picState(master: true).isr == 1)
    let end = try stepper.run()
    #expect(end.reason == .exit(.debugExit(value: 0x10, status: 33)))
  }

  /// With several vCPUs the chips are the machine's: one vCPU moved alone cannot leave another
  /// running on KVM without them. The one left behind is refused, saying why, until the other
  /// moves back (Guests/tests/smp.S, both vCPUs on KVM's in-kernel chips).
  @Test(requiresKVM) func aVCPULeftOnKVMWithoutTheChipsCannotRun() throws {
    var configuration = MachineConfiguration(kernel: TestGuests.smp.image, kernelName: "smp")
    configuration.accelerator = .kvm
    configuration.cpuCount = 2
    configuration.timeoutMilliseconds = 60_000
    let machine = try Machine(configuration: configuration, console: CapturedConsole())
    #expect(machine.engineSwitchRefusal?.contains("only all together") == true)
    #expect(machine.engineSwitchRefusal(allVCPUsTogether: true) == nil)
    let bootstrap = try Stepper(machine: machine, vcpu: 0)
    let application = try Stepper(machine: machine, vcpu: 1)
    try bootstrap.switchEngine(to: .interpreter)
    #expect {
      _ = try application.step()
    } throws: { error in
      "\(error)".contains(
        "vCPU 1 cannot run on KVM while the interrupt controllers' state is on the interpreter with vCPU 0")
    }
    try bootstrap.switchEngine(to: .kvm)
    _ = try bootstrap.step()  // both on KVM again, with the chips
  }

  /// A local APIC timer in TSC-deadline mode (LVT timer bits 18-17 = 10b, SDM Vol. 3, 11.5.4.1)
  /// keeps its deadline in IA32_TSC_DEADLINE, which the interpreter's APIC does not model: the
  /// move is refused rather than leave the guest waiting for a timer that never fires, and
  /// the vCPU stays on KVM.
  @Test(requiresKVM) func aTSCDeadlineTimerIsRefused() throws {
    let (machine, stepper) = try timerMachine()
    var page = try machine.kvmVCPUs[0].localAPICState()
    page[LocalAPIC.Register.spuriousVector] = 0x1ff
    page[LocalAPIC.Register.lvtTimer] = 0x0004_00ef  // TSC-deadline, unmasked, vector 0xef
    try machine.kvmVCPUs[0].setLocalAPICState(page)
    #expect {
      try stepper.switchEngine(to: .interpreter)
    } throws: { error in
      "\(error)".contains("vCPU 0's local APIC timer is in TSC-deadline mode")
    }
    #expect(stepper.engine == .kvm)
    #expect(try stepper.step().reason == .step)  // stepped on KVM as before
  }

  /// Every field of the three chips in unusual states (8259s mid-initialization, rotated, in
  /// special mask and poll modes; PIT counters with a latched count and status, a half-written
  /// and a half-read count; I/O APIC entries of every kind), given to KVM and read back, then
  /// converted to Hyperstep's models and back: what KVM holds, field for field. (I/O APIC IRR
  /// bits sit on masked pins: KVM_SET_IRQCHIP delivers the others at once.)
  @Test(requiresKVM) func unusualChipStatesSurviveTheConversion() throws {
    var configuration = MachineConfiguration(kernel: TestGuests.timer.image, kernelName: "timer")
    configuration.accelerator = .kvm
    configuration.interruptController = true
    let machine = try Machine(configuration: configuration, console: CapturedConsole())
    let vm = try #require(machine.vm)
    var master = try vm.picState(master: true)
    // IR2 requested: the slave has a request (IR1) unmasked, which KVM passes on at once.
    (master.lastIRR, master.irr, master.imr, master.isr) = (0x11, 0x94, 0x0f, 0x40)
    (master.priorityAdd, master.irqBase, master.readRegisterSelect, master.poll) = (5, 0x68, 1, 1)
    (master.specialMask, master.initState, master.autoEOI, master.rotateOnAutoEOI) = (1, 0, 1, 1)
    (master.specialFullyNestedMode, master.init4, master.elcr) = (1, 1, 0x28)
    var slave = try vm.picState(master: false)
    (slave.irr, slave.imr, slave.isr, slave.priorityAdd, slave.irqBase) = (0x02, 0xfd, 0, 3, 0x70)
    (slave.initState, slave.init4, slave.elcr) = (2, 1, 0x0c)  // ICW3 expected next
    try vm.setPICState(master, master: true)
    try vm.setPICState(slave, master: false)
    var ioapic = try vm.ioapicState()
    ioapic.id = 5
    ioapic.registerSelect = 0x12
    ioapic.redirectionTable[1] = 0x0300_0000_0000_a931  // level, active low, remote IRR, logical, lowest priority
    ioapic.redirectionTable[4] = 0x0000_0000_0001_0044  // masked, edge, fixed
    ioapic.redirectionTable[9] = 0xff00_0000_0001_8059  // masked, level, to all
    ioapic.irr = 1 << 4 | 1 << 9
    try vm.setIOAPICState(ioapic)
    var pit = try vm.pitState()
    pit.channels[0].mode = 2
    pit.channels[0].count = 1000
    pit.channels[0].rwMode = 3
    (pit.channels[0].countLatched, pit.channels[0].latchedCount, pit.channels[0].readState) = (3, 0x1234, 3)
    (pit.channels[0].statusLatched, pit.channels[0].status, pit.channels[0].writeState) = (1, 0xb4, 3)
    pit.channels[1].mode = 3
    pit.channels[1].count = 0x10000
    pit.channels[1].rwMode = 3
    (pit.channels[1].readState, pit.channels[1].writeState, pit.channels[1].writeLatch) = (4, 4, 0x56)
    pit.channels[2].mode = 0
    pit.channels[2].count = 300
    pit.channels[2].rwMode = 1
    (pit.channels[2].readState, pit.channels[2].writeState, pit.channels[2].gate) = (1, 1, 0)
    try vm.setPITState(pit)

    let kvm = try KernelChips.read(vm, machine.kvmVCPUs)
    // KVM kept what was given (the states are legal ones for its chips).
    expectSamePIC(kvm.master, master, "master 8259 as set")
    expectSamePIC(kvm.slave, slave, "slave 8259 as set")
    expectSameIOAPIC(kvm.ioapic, ioapic, "I/O APIC as set")
    expectSamePIT(kvm.pit, pit, "PIT as set")

    let chips = PCPlatformInterrupts(cpuCount: 1, rtcStart: CivilTime(secondsSinceEpoch: 0))
    chips.advance(to: 1 << 40)
    kvm.load(into: chips, apicEnabled: [true])
    // A few of them as the models read them (the 8259 and 8254 data sheets): the master is
    // rotated so that IR5 has the highest priority (KVM's priority_add) and IR4 the lowest, a
    // poll is pending; the slave waits for ICW3; counter 0 reads its latched status, then its
    // latched count, low byte first.
    #expect(chips.pic.master.lowestPriority == 4 && chips.pic.master.pollPending)
    #expect(chips.pic.slave.expectedICW == 3)
    #expect(chips.pit.read(port: 0x40, size: 1) == 0xb4)
    #expect(chips.pit.read(port: 0x40, size: 1) == 0x34)
    #expect(chips.pit.read(port: 0x40, size: 1) == 0x12)
    chips.pit.setCounter(0, KernelChips.counter(kvm.pit.channels[0]))  // the latches back, as KVM had them
    let back = KernelChips(from: chips, basis: kvm)
    expectSamePIC(back.master, kvm.master, "master 8259")
    expectSamePIC(back.slave, kvm.slave, "slave 8259")
    expectSameIOAPIC(back.ioapic, kvm.ioapic, "I/O APIC")
    expectSamePIT(back.pit, kvm.pit, "PIT")
  }
}
