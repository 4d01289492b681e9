import Testing

@testable import Devices

/// The PC's interrupt wiring end to end, driven through the I/O bus and the local APIC page
/// the way Guests/tests/timer.S, Guests/tests/smp.S and Linux drive them.
@Suite struct PCPlatformInterruptsTests {
  static let start = CivilTime(year: 2026, month: 12, day: 1)

  func makePlatform(cpus: Int = 1) -> (PCPlatformInterrupts, IOBus) {
    let platform = PCPlatformInterrupts(cpuCount: cpus, rtcStart: Self.start, memoryBelow4G: 256 << 20)
    let bus = IOBus()
    try! platform.register(on: bus)
    return (platform, bus)
  }

  func out(_ bus: IOBus, _ port: UInt16, _ value: UInt8) {
    #expect(bus.portWrite(port, size: 1, value: UInt32(value)) == .none)
  }

  @Test func timerGuestTakesThreeTicksThroughThePICInVirtualWireMode() {
    let (platform, bus) = makePlatform()
    #expect(platform.readLocalAPIC(cpu: 0, offset: 0x30) == LocalAPIC.version)
    for (port, value) in [
      (0x20, 0x11), (0xa0, 0x11), (0x21, 0x20), (0xa1, 0x28), (0x21, 0x04), (0xa1, 0x02), (0x21, 0x01),
      (0xa1, 0x01), (0x21, 0xfe), (0xa1, 0xff), (0x43, 0x34), (0x40, 1193 & 0xff), (0x40, 1193 >> 8),
    ] {
      out(bus, UInt16(port), UInt8(port == 0x40 ? value : value))
    }
    #expect(bus.portRead(0x21, size: 1) == 0xfe)
    var ticks = 0
    var now: UInt64 = 0
    while ticks < 3 {
      guard let deadline = platform.nextDeadline else {
        Issue.record("the PIT stopped")
        return
      }
      #expect(deadline > now)
      now = deadline
      platform.advance(to: now)
      #expect(platform.hasInterrupt(cpu: 0))
      #expect(platform.acknowledgeInterrupt(cpu: 0) == 0x20)
      #expect(!platform.hasInterrupt(cpu: 0))
      out(bus, 0x20, 0x20)  // the handler's EOI
      ticks += 1
    }
    // 1193-clock periods starting one clock after the write: tick 1 + 3 * 1193 = 3580.
    #expect(now == PIT8254.clock.nanoseconds(atTick: 3580))
  }

  @Test func smpGuestStartsTheSecondProcessor() {
    let (platform, _) = makePlatform(cpus: 2)
    platform.writeLocalAPIC(cpu: 0, offset: 0xf0, value: 0x1ff)  // SVR: software enable
    platform.writeLocalAPIC(cpu: 0, offset: 0x310, value: 1 << 24)
    platform.writeLocalAPIC(cpu: 0, offset: 0x300, value: 0x0000_4500)  // INIT
    platform.writeLocalAPIC(cpu: 0, offset: 0x300, value: 0x0000_8500)  // INIT de-assert (Linux)
    platform.writeLocalAPIC(cpu: 0, offset: 0x310, value: 1 << 24)
    platform.writeLocalAPIC(cpu: 0, offset: 0x300, value: 0x0000_4607)  // SIPI, page 0x7000
    #expect(platform.processorSignals.map(\.cpu) == [1, 1])
    #expect(platform.processorSignals.map(\.signal) == [.initialize, .startup(vector: 7)])
  }

  @Test func fixedIPIsWithShorthandsReachTheirTargets() {
    let (platform, _) = makePlatform(cpus: 3)
    for cpu in 0..<3 { platform.writeLocalAPIC(cpu: cpu, offset: 0xf0, value: 0x1ff) }
    platform.writeLocalAPIC(cpu: 1, offset: 0x300, value: 0x000c_0040)  // all but self, 0x40
    #expect(platform.localAPICs.map { $0.pendingVector } == [0x40, nil, 0x40])
    platform.writeLocalAPIC(cpu: 1, offset: 0x300, value: 0x0004_0041)  // self
    #expect(platform.localAPICs[1].pendingVector == 0x41)
    // Logical flat: cpu n has LDR bit n; lowest priority to 0b110 goes to the first, cpu 1.
    for cpu in 0..<3 { platform.writeLocalAPIC(cpu: cpu, offset: 0xd0, value: UInt32(1 << cpu) << 24) }
    platform.writeLocalAPIC(cpu: 0, offset: 0x310, value: 0x0600_0000)
    platform.writeLocalAPIC(cpu: 0, offset: 0x300, value: 0x0000_0950)  // logical, lowest priority
    #expect(platform.localAPICs[1].interruptRequest[0x50])
    #expect(!platform.localAPICs[2].interruptRequest[0x50])
  }

  @Test func ioapicModeDeliversTheTimerOnPin2WithThePICMasked() {
    // Linux with the APIC: the 8259 fully masked, LINT0 masked, IRQ 0 through I/O APIC pin 2.
    let (platform, bus) = makePlatform()
    platform.writeLocalAPIC(cpu: 0, offset: 0xf0, value: 0x1ff)
    platform.writeLocalAPIC(cpu: 0, offset: 0x350, value: 0x1_0700)
    out(bus, 0x21, 0xff)
    out(bus, 0xa1, 0xff)
    _ = bus.mmioWrite(0xfec0_0000, size: 4, value: 0x14)
    _ = bus.mmioWrite(0xfec0_0010, size: 4, value: 0x30)  // pin 2: vector 0x30, edge, APIC 0
    out(bus, 0x43, 0x34)
    out(bus, 0x40, 100)
    out(bus, 0x40, 0)
    platform.advance(to: platform.nextDeadline!)
    #expect(platform.acknowledgeInterrupt(cpu: 0) == 0x30)
    #expect(!platform.pic.interruptOutput)  // masked at the 8259: nothing from there
    platform.writeLocalAPIC(cpu: 0, offset: 0xb0, value: 0)
    #expect(platform.acknowledgeInterrupt(cpu: 0) == nil)
  }

  @Test func levelTriggeredSerialInterruptRefiresUntilTheUARTIsServiced() {
    let (platform, bus) = makePlatform()
    let uart = Serial8250(output: { _ in })
    try! bus.register(uart, ports: 0x3f8...0x3ff)
    platform.attach(serial: uart, irq: 4)
    platform.writeLocalAPIC(cpu: 0, offset: 0xf0, value: 0x1ff)
    out(bus, 0x21, 0xff)  // APIC mode: the 8259 masked, as Linux leaves it
    _ = bus.mmioWrite(0xfec0_0000, size: 4, value: 0x18)
    _ = bus.mmioWrite(0xfec0_0010, size: 4, value: 0x8044)  // pin 4: vector 0x44, level
    out(bus, 0x3fc, 0x08)  // MCR OUT2: the UART drives its IRQ line
    out(bus, 0x3f9, 0x02)  // IER: THR empty interrupt, pending at once
    #expect(platform.acknowledgeInterrupt(cpu: 0) == 0x44)
    #expect(platform.localAPICs[0].triggerMode[0x44])
    platform.writeLocalAPIC(cpu: 0, offset: 0xb0, value: 0)  // EOI without servicing the UART
    #expect(platform.acknowledgeInterrupt(cpu: 0) == 0x44)  // Remote IRR cleared, line still up
    #expect(bus.portRead(0x3fa, size: 1) == 0x02)  // IIR: THRE, which the read clears
    platform.writeLocalAPIC(cpu: 0, offset: 0xb0, value: 0)
    #expect(platform.acknowledgeInterrupt(cpu: 0) == nil)
  }

  @Test func receivedSerialDataRaisesIRQ4AtThePIC() {
    let (platform, bus) = makePlatform()
    let uart = Serial8250(output: { _ in })
    try! bus.register(uart, ports: 0x3f8...0x3ff)
    platform.attach(serial: uart, irq: 4)
    for (port, value) in [(0x20, 0x11), (0x21, 0x20), (0x21, 0x04), (0x21, 0x01), (0x21, 0x00)] {
      out(bus, UInt16(port), UInt8(value))
    }
    out(bus, 0x3fc, 0x08)
    out(bus, 0x3f9, 0x01)  // received-data interrupt
    #expect(!platform.hasInterrupt(cpu: 0))
    uart.receive([0x41])
    platform.advance(to: 1)  // the engine's next sync point notices the input
    #expect(platform.acknowledgeInterrupt(cpu: 0) == 0x24)
    #expect(bus.portRead(0x3f8, size: 1) == 0x41)
    #expect(!uart.interruptOutput)
  }

  @Test func hardwareDisabledAPICPassesThePICStraightThrough() {
    let (platform, bus) = makePlatform(cpus: 2)
    out(bus, 0x20, 0x11)
    out(bus, 0x21, 0x50)
    out(bus, 0x21, 0x04)
    out(bus, 0x21, 0x01)
    platform.localAPICs[0].hardwareEnabled = true
    platform.writeLocalAPIC(cpu: 0, offset: 0x350, value: 0x1_0700)  // nobody accepts ExtINT
    platform.setISAInterrupt(3, high: true)
    #expect(platform.picTarget == nil)
    #expect(!platform.hasInterrupt(cpu: 0) && !platform.hasInterrupt(cpu: 1))
    platform.localAPICs[0].hardwareEnabled = false
    #expect(platform.acknowledgeInterrupt(cpu: 0) == 0x53)
  }

  @Test func keyboardControllerResetAndRTCInterruptsThroughTheBus() {
    let (platform, bus) = makePlatform()
    for (port, value) in [
      (0x20, 0x11), (0xa0, 0x11), (0x21, 0x20), (0xa1, 0x28), (0x21, 0x04), (0xa1, 0x02), (0x21, 0x01),
      (0xa1, 0x01), (0x21, 0x00), (0xa1, 0x00),
    ] {
      out(bus, UInt16(port), UInt8(value))
    }
    out(bus, 0x70, 0x0b)
    out(bus, 0x71, 0x12)  // RTC update-ended interrupt
    platform.advance(to: platform.nextDeadline!)
    #expect(platform.acknowledgeInterrupt(cpu: 0) == 0x28)  // IRQ 8
    out(bus, 0x70, 0x0c)
    #expect(bus.portRead(0x71, size: 1) == 0xd0)  // IRQF, UF, and PF of the default 1024 Hz rate
    _ = bus.portWrite(0x64, size: 1, value: 0xaa)
    #expect(platform.pic.master.irr & 0x02 == 0x02)  // the reply raised IRQ 1
    #expect(bus.portWrite(0x64, size: 1, value: 0xfe) == .reset)
    out(bus, 0x70, 0x15)
    #expect(bus.portRead(0x71, size: 1) == 0x80)  // 640 KiB base memory, low byte
  }
}
