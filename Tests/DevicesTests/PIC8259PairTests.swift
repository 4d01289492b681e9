import Testing

@testable import Devices

/// The 8259A pair driven through its ports. Section names are those of the Intel 8259A data
/// sheet (231468); the initialization sequence is the one Linux (i8259.c, init_8259A) and
/// Guests/tests/timer.S use.
@Suite struct PIC8259PairTests {
  /// ICW1 0x11 (edge, cascade, ICW4), ICW2 vector bases, ICW3 slave on IR2 / identity 2,
  /// ICW4 0x01 (8086 mode, normal EOI), then the masks.
  func makeInitialized(masterBase: UInt8 = 0x20, slaveBase: UInt8 = 0x28, autoEOI: Bool = false) -> PIC8259Pair {
    let pic = PIC8259Pair()
    for (port, value) in [
      (0x20, 0x11), (0xa0, 0x11), (0x21, Int(masterBase)), (0xa1, Int(slaveBase)), (0x21, 0x04), (0xa1, 0x02),
      (0x21, autoEOI ? 0x03 : 0x01), (0xa1, 0x01), (0x21, 0x00), (0xa1, 0x00),
    ] {
      #expect(pic.write(port: UInt16(port), size: 1, value: UInt32(value)) == .none)
    }
    return pic
  }

  @Test func timerGuestSequenceDeliversIRQ0AtItsVectorAndEOIClearsService() {
    let pic = makeInitialized()
    _ = pic.write(port: 0x21, size: 1, value: 0xfe)  // only IRQ 0
    _ = pic.write(port: 0xa1, size: 1, value: 0xff)
    #expect(pic.read(port: 0x21, size: 1) == 0xfe)  // OCW1 reads back
    #expect(!pic.interruptOutput)
    pic.pulse(irq: 0)
    #expect(pic.interruptOutput)
    #expect(pic.pendingVector == 0x20)
    #expect(pic.acknowledge() == 0x20)
    #expect(pic.master.isr == 0x01 && pic.master.irr == 0)
    #expect(!pic.interruptOutput)
    pic.pulse(irq: 0)  // a second tick while the first is in service waits
    #expect(!pic.interruptOutput)
    _ = pic.write(port: 0x20, size: 1, value: 0x20)  // OCW2 non-specific EOI
    #expect(pic.master.isr == 0)
    #expect(pic.acknowledge() == 0x20)
  }

  @Test func maskedRequestsStayInIRRAndFireWhenUnmasked() {
    let pic = makeInitialized()
    _ = pic.write(port: 0x21, size: 1, value: 0x02)  // mask IRQ 1
    pic.pulse(irq: 1)
    #expect(!pic.interruptOutput)
    _ = pic.write(port: 0x20, size: 1, value: 0x0a)  // OCW3: read IRR
    #expect(pic.read(port: 0x20, size: 1) == 0x02)
    _ = pic.write(port: 0x21, size: 1, value: 0x00)
    #expect(pic.acknowledge() == 0x21)
  }

  @Test func fullyNestedPriorityLowerNumberWins() {
    // "Fully Nested Mode": IR0 highest, IR7 lowest; a request is presented only when it
    // outranks everything in service.
    let pic = makeInitialized()
    pic.pulse(irq: 5)
    pic.pulse(irq: 3)
    #expect(pic.acknowledge() == 0x23)
    pic.pulse(irq: 1)  // higher than IR3 in service: nests
    #expect(pic.acknowledge() == 0x21)
    #expect(pic.master.isr == 0x0a)
    #expect(!pic.interruptOutput)  // IR5 is below both
    _ = pic.write(port: 0x20, size: 1, value: 0x20)  // ends IR1, the highest in service
    #expect(pic.master.isr == 0x08)
    #expect(!pic.interruptOutput)
    _ = pic.write(port: 0x20, size: 1, value: 0x63)  // specific EOI for IR3
    #expect(pic.acknowledge() == 0x25)
    _ = pic.write(port: 0x20, size: 1, value: 0x0b)  // OCW3: read ISR
    #expect(pic.read(port: 0x20, size: 1) == 0x20)
  }

  @Test func slaveInterruptsCascadeThroughIR2() {
    let pic = makeInitialized()
    pic.pulse(irq: 8)  // RTC
    #expect(pic.master.irr & 0x04 == 0x04)
    #expect(pic.pendingVector == 0x28)
    #expect(pic.acknowledge() == 0x28)
    #expect(pic.master.isr == 0x04 && pic.slave.isr == 0x01)
    // Linux ends a slave interrupt with an EOI to each chip, slave first.
    _ = pic.write(port: 0xa0, size: 1, value: 0x20)
    _ = pic.write(port: 0x20, size: 1, value: 0x20)
    #expect(pic.master.isr == 0 && pic.slave.isr == 0)
    pic.pulse(irq: 14)
    #expect(pic.acknowledge() == 0x2e)
  }

  @Test func masterIRQ1OutranksSlaveButSlaveOutranksIRQ3() {
    let pic = makeInitialized()
    pic.pulse(irq: 3)
    pic.pulse(irq: 12)
    pic.pulse(irq: 1)
    #expect(pic.acknowledge() == 0x21)
    _ = pic.write(port: 0x20, size: 1, value: 0x20)
    #expect(pic.acknowledge() == 0x2c)  // IR2 (the slave) before IR3
    _ = pic.write(port: 0xa0, size: 1, value: 0x20)
    _ = pic.write(port: 0x20, size: 1, value: 0x20)
    #expect(pic.acknowledge() == 0x23)
  }

  @Test func requestGoneBeforeAcknowledgeIsSpuriousIRQ7WithoutService() {
    // "Interrupt Sequence": if no request is present at INTA the 8259A issues IR7 and sets no
    // ISR bit. A level request that drops does that.
    let pic = makeInitialized()
    _ = pic.write(port: 0x4d0, size: 1, value: 0x20)  // IRQ 5 level triggered
    pic.raise(irq: 5)
    #expect(pic.interruptOutput)
    pic.lower(irq: 5)
    #expect(!pic.interruptOutput)
    #expect(pic.acknowledge() == 0x27)
    #expect(pic.master.isr == 0)
    // From the slave it is IRQ 15: the master serves IR2, the slave answers with its IR7.
    _ = pic.write(port: 0x4d1, size: 1, value: 0x08)  // IRQ 11 level triggered
    pic.raise(irq: 11)
    _ = pic.write(port: 0xa1, size: 1, value: 0x08)  // masked after the master saw the edge
    #expect(pic.master.irr & 0x04 == 0x04)
    #expect(pic.acknowledge() == 0x2f)
    #expect(pic.slave.isr == 0)
    #expect(pic.master.isr == 0x04)
  }

  @Test func levelTriggeredRequestReassertsAfterEOIWhileHigh() {
    let pic = makeInitialized()
    _ = pic.write(port: 0x4d0, size: 1, value: 0x20)  // IRQ 5 level
    pic.raise(irq: 5)
    #expect(pic.acknowledge() == 0x25)
    _ = pic.write(port: 0x20, size: 1, value: 0x20)
    #expect(pic.pendingVector == 0x25)  // still high: asks again
    pic.lower(irq: 5)
    #expect(pic.pendingVector == nil)
    // Behind the cascade the master's IR2 is edge triggered: a slave level line that drops
    // after the master latched the edge leaves the spurious IRQ 15.
    _ = pic.write(port: 0x4d1, size: 1, value: 0x0e)  // IRQ 9-11 level (PCI)
    #expect(pic.read(port: 0x4d1, size: 1) == 0x0e)
    pic.raise(irq: 10)
    #expect(pic.acknowledge() == 0x2a)
    _ = pic.write(port: 0xa0, size: 1, value: 0x20)
    _ = pic.write(port: 0x20, size: 1, value: 0x20)
    #expect(pic.pendingVector == 0x2a)
    pic.lower(irq: 10)
    #expect(pic.pendingVector == 0x2f)
  }

  @Test func edgeTriggeredLineMustFallBeforeItRequestsAgain() {
    let pic = makeInitialized()
    pic.raise(irq: 4)
    #expect(pic.acknowledge() == 0x24)
    _ = pic.write(port: 0x20, size: 1, value: 0x20)
    pic.raise(irq: 4)  // still high: no new edge
    #expect(!pic.interruptOutput)
    pic.lower(irq: 4)
    pic.raise(irq: 4)
    #expect(pic.pendingVector == 0x24)
  }

  @Test func elcrBitsForTimerKeyboardCascadeRTCAndFPUStayEdge() {
    let pic = PIC8259Pair()
    _ = pic.write(port: 0x4d0, size: 1, value: 0xff)
    _ = pic.write(port: 0x4d1, size: 1, value: 0xff)
    #expect(pic.read(port: 0x4d0, size: 1) == 0xf8)
    #expect(pic.read(port: 0x4d1, size: 1) == 0xde)
  }

  @Test func autoEOILeavesNothingInService() {
    let pic = makeInitialized(autoEOI: true)
    pic.pulse(irq: 6)
    #expect(pic.acknowledge() == 0x26)
    #expect(pic.master.isr == 0)
    pic.pulse(irq: 7)
    #expect(pic.acknowledge() == 0x27)  // nothing blocks it
  }

  @Test func rotationMakesTheServedLevelLowest() {
    let pic = makeInitialized()
    pic.pulse(irq: 2 + 1)  // IR3
    #expect(pic.acknowledge() == 0x23)
    _ = pic.write(port: 0x20, size: 1, value: 0xa0)  // rotate on non-specific EOI
    #expect(pic.master.lowestPriority == 3)
    pic.pulse(irq: 1)
    pic.pulse(irq: 5)
    #expect(pic.acknowledge() == 0x25)  // IR4 is now highest, so IR5 beats IR1
    _ = pic.write(port: 0x20, size: 1, value: 0xc6)  // set priority: IR6 lowest, IR7 highest
    _ = pic.write(port: 0x20, size: 1, value: 0x65)  // specific EOI IR5
    #expect(pic.acknowledge() == 0x21)
  }

  @Test func pollCommandReadsLevelAndActsAsAcknowledge() {
    let pic = makeInitialized()
    pic.pulse(irq: 6)
    _ = pic.write(port: 0x20, size: 1, value: 0x0c)  // OCW3 with P
    #expect(pic.read(port: 0x20, size: 1) == 0x86)
    #expect(pic.master.isr == 0x40)
    _ = pic.write(port: 0x20, size: 1, value: 0x0c)
    #expect(pic.read(port: 0x20, size: 1) == 0x00)  // nothing pending
  }

  @Test func specialMaskModeLetsLowerLevelsInterruptAMaskedService() {
    let pic = makeInitialized()
    pic.pulse(irq: 2 + 2)  // IR4
    #expect(pic.acknowledge() == 0x24)
    pic.pulse(irq: 6)
    #expect(!pic.interruptOutput)
    _ = pic.write(port: 0x21, size: 1, value: 0x10)  // mask IR4 ...
    _ = pic.write(port: 0x20, size: 1, value: 0x68)  // ... and set special mask mode
    #expect(pic.pendingVector == 0x26)
    _ = pic.write(port: 0x20, size: 1, value: 0x48)  // reset special mask mode
    #expect(pic.pendingVector == nil)
  }

  @Test func icw1InTheMiddleOfAnotherSequenceRestartsIt() {
    let pic = PIC8259Pair()
    _ = pic.write(port: 0x20, size: 1, value: 0x11)
    _ = pic.write(port: 0x21, size: 1, value: 0x08)  // ICW2
    _ = pic.write(port: 0x20, size: 1, value: 0x11)  // start over before ICW3
    #expect(pic.master.expectedICW == 2)
    for value in [0x30, 0x04, 0x01, 0xfb] { _ = pic.write(port: 0x21, size: 1, value: UInt32(value)) }
    #expect(pic.master.vectorBase == 0x30)
    #expect(pic.read(port: 0x21, size: 1) == 0xfb)
    pic.pulse(irq: 2 + 0)  // IR2 is the cascade line: not a device input
    #expect(!pic.interruptOutput)
  }

  @Test func icw1ClearsMaskServiceAndEdgeLatches() {
    let pic = makeInitialized()
    pic.pulse(irq: 3)
    _ = pic.write(port: 0x21, size: 1, value: 0xff)
    _ = pic.write(port: 0x20, size: 1, value: 0x11)
    #expect(pic.master.irr == 0 && pic.master.imr == 0 && pic.master.isr == 0)
  }

  @Test func oddGuestAccessesNeverTrap() {
    let pic = PIC8259Pair()
    #expect(pic.read(port: 0x22, size: 1) == 0xff)  // not a PIC port
    #expect(pic.write(port: 0x4d2, size: 1, value: 1) == .none)
    pic.setLevel(irq: 16, high: true)
    pic.setLevel(irq: -1, high: true)
    _ = pic.write(port: 0x20, size: 1, value: 0x40)  // OCW2 no-op code
    #expect(pic.acknowledge() == 0x07)  // uninitialized: vector base 0, spurious IR7
    let bus = IOBus()
    try! bus.register(pic, portRanges: PIC8259Pair.portRanges)
    _ = bus.portWrite(0xa1, size: 1, value: 0x5a)
    #expect(bus.portRead(0xa1, size: 1) == 0x5a)
  }

  @Test func linuxMaskAndAckWithSpecificEOIsAndISRCheck() {
    // arch/x86/kernel/i8259.c: Linux's own vectors (0x30/0x38); mask_and_ack_8259A for a
    // slave IRQ masks it, then sends specific EOIs (0x60 | level) to the slave and for IR2
    // to the master; i8259A_irq_real reads ISR with OCW3 0x0b and returns to IRR with 0x0a.
    let pic = makeInitialized(masterBase: 0x30, slaveBase: 0x38)
    pic.pulse(irq: 12)
    #expect(pic.acknowledge() == 0x3c)
    _ = pic.write(port: 0x20, size: 1, value: 0x0b)
    #expect(pic.read(port: 0x20, size: 1) == 0x04)
    _ = pic.write(port: 0xa0, size: 1, value: 0x0b)
    #expect(pic.read(port: 0xa0, size: 1) == 0x10)
    _ = pic.write(port: 0xa0, size: 1, value: 0x0a)
    _ = pic.write(port: 0xa1, size: 1, value: 0x10)
    _ = pic.write(port: 0xa0, size: 1, value: 0x60 | 4)
    _ = pic.write(port: 0x20, size: 1, value: 0x60 | 2)
    #expect(pic.master.isr == 0 && pic.slave.isr == 0)
    pic.pulse(irq: 12)  // masked now
    #expect(!pic.interruptOutput)
    #expect(pic.read(port: 0xa0, size: 1) == 0x10)  // but requested (IRR)
  }

  @Test func operationWordsDuringInitializationDoNotDerailIt() {
    // An OCW2/OCW3 written between ICW1 and ICW2 acts as itself; the data port still
    // takes the initialization words in order.
    let pic = PIC8259Pair()
    _ = pic.write(port: 0x20, size: 1, value: 0x11)
    _ = pic.write(port: 0x20, size: 1, value: 0x0b)  // OCW3: read ISR
    _ = pic.write(port: 0x20, size: 1, value: 0x20)  // OCW2: EOI with nothing in service
    for value in [0x40, 0x04, 0x01] { _ = pic.write(port: 0x21, size: 1, value: UInt32(value)) }
    #expect(pic.master.expectedICW == 0 && pic.master.vectorBase == 0x40 && pic.master.cascade == 0x04)
    #expect(pic.master.readsISR)
    _ = pic.write(port: 0x21, size: 1, value: 0x7f)  // now OCW1
    #expect(pic.read(port: 0x21, size: 1) == 0x7f)
    // ICW1 without IC4 skips ICW4 and clears its modes (auto-EOI here).
    _ = pic.write(port: 0x20, size: 1, value: 0x11)
    for value in [0x40, 0x04, 0x03] { _ = pic.write(port: 0x21, size: 1, value: UInt32(value)) }
    #expect(pic.master.autoEOI)
    _ = pic.write(port: 0x20, size: 1, value: 0x12)  // single, no ICW4: ICW2 only
    _ = pic.write(port: 0x21, size: 1, value: 0x48)
    #expect(pic.master.expectedICW == 0 && !pic.master.autoEOI)
    _ = pic.write(port: 0x21, size: 1, value: 0x00)
    pic.pulse(irq: 1)
    #expect(pic.acknowledge() == 0x49)
  }
}
