import Testing

@testable import Devices

/// The local APIC driven through its register page. Section numbers are those of the Intel
/// SDM Vol. 3A, chapter 11.
@Suite struct LocalAPICTests {
  typealias R = LocalAPIC.Register

  func makeEnabledAPIC(id: UInt8 = 0) -> LocalAPIC {
    let apic = LocalAPIC(index: 0, id: id, isBootstrapProcessor: true)
    apic.write(offset: R.spuriousVector, value: 0x1ff)  // software enable, spurious vector 0xff
    return apic
  }

  func fixed(_ vector: UInt8, level: Bool = false) -> InterruptMessage {
    InterruptMessage(vector: vector, destination: 0, levelTriggered: level)
  }

  @Test func identificationRegistersAsTimerGuestReadsThem() {
    let apic = LocalAPIC(index: 1, id: 3, isBootstrapProcessor: false)
    #expect(apic.read(offset: 0x30) == 0x0005_0014)  // 11.4.8: version 0x14, 6 LVT entries
    #expect(apic.read(offset: 0x20) == 0x0300_0000)  // 11.4.6: ID in bits 31-24
    #expect(apic.read(offset: R.spuriousVector) == 0xff)  // 11.4.7.1 reset values
    #expect(apic.read(offset: R.destinationFormat) == 0xffff_ffff)
    #expect(apic.read(offset: R.lvtLINT0) == 0x1_0000)  // an AP: masked
    #expect(LocalAPIC(index: 0, id: 0, isBootstrapProcessor: true).read(offset: R.lvtLINT0) == 0x700)
  }

  @Test func softwareDisabledAPICKeepsLVTMaskedAndDropsFixedInterrupts() {
    // 11.4.7.2: while SVR bit 8 is clear, LVT masks stay set and fixed interrupts are not taken.
    let apic = LocalAPIC(index: 0, id: 0, isBootstrapProcessor: false)
    apic.write(offset: R.lvtTimer, value: 0x40)
    #expect(apic.read(offset: R.lvtTimer) == 0x1_0040)
    #expect(apic.receive(fixed(0x40)) == nil)
    #expect(apic.pendingVector == nil)
    apic.write(offset: R.spuriousVector, value: 0x1ff)
    apic.write(offset: R.lvtTimer, value: 0x40)
    #expect(apic.read(offset: R.lvtTimer) == 0x40)
    apic.write(offset: R.spuriousVector, value: 0x0ff)  // disabling masks every entry again
    #expect(apic.read(offset: R.lvtTimer) == 0x1_0040)
  }

  @Test func priorityClassesAgainstTaskAndProcessorPriority() {
    // 11.8.3: an IRR vector is taken only when its class (bits 7-4) is above PPR's class;
    // PPR is TPR or the in-service class, whichever is higher (11.8.3.1).
    let apic = makeEnabledAPIC()
    _ = apic.receive(fixed(0x31))
    _ = apic.receive(fixed(0x51))
    apic.write(offset: R.taskPriority, value: 0x40)
    #expect(apic.pendingVector == 0x51)
    #expect(apic.read(offset: R.interruptRequest + 0x20) == 1 << 17)  // 0x51 = 64 + 17
    #expect(apic.acknowledge() == 0x51)
    #expect(apic.read(offset: R.inService + 0x20) == 1 << 17)
    #expect(apic.read(offset: R.processorPriority) == 0x50)
    _ = apic.receive(fixed(0x52))  // same class as the one in service: waits
    #expect(apic.pendingVector == nil)
    apic.write(offset: R.endOfInterrupt, value: 0)
    #expect(apic.read(offset: R.processorPriority) == 0x40)
    #expect(apic.acknowledge() == 0x52)
    apic.write(offset: R.endOfInterrupt, value: 0)
    #expect(apic.pendingVector == nil)  // 0x31's class 3 is below TPR's 4
    #expect(apic.read(offset: R.arbitrationPriority) == 0x40)
    apic.write(offset: R.taskPriority, value: 0)
    #expect(apic.acknowledge() == 0x31)
  }

  @Test func acknowledgeWithNothingQualifyingGivesTheSpuriousVector() {
    // 11.9: the spurious vector from SVR, and no ISR bit.
    let apic = makeEnabledAPIC()
    apic.write(offset: R.spuriousVector, value: 0x1e7)
    _ = apic.receive(fixed(0x31))
    apic.write(offset: R.taskPriority, value: 0xf0)
    #expect(apic.acknowledge() == 0xe7)
    #expect(apic.inService.highest == nil)
  }

  @Test func levelTriggeredEOIIsBroadcastForTheIOAPIC() {
    let apic = makeEnabledAPIC()
    _ = apic.receive(fixed(0x61, level: true))
    #expect(apic.read(offset: R.triggerMode + 0x30) == 1 << 1)  // TMR bit for 0x61 = 96 + 1
    #expect(apic.acknowledge() == 0x61)
    #expect(apic.write(offset: R.endOfInterrupt, value: 0) == .endOfInterrupt(vector: 0x61))
    _ = apic.receive(fixed(0x62))
    _ = apic.acknowledge()
    #expect(apic.write(offset: R.endOfInterrupt, value: 0) == nil)  // edge: nothing to tell
    #expect(apic.write(offset: R.endOfInterrupt, value: 0) == nil)  // nothing in service
  }

  @Test func illegalVectorsAreErrorsReportedThroughESRAndTheErrorLVT() {
    // 11.5.3: errors accumulate until ESR is written; the write makes them readable.
    let apic = makeEnabledAPIC()
    apic.write(offset: R.lvtError, value: 0xfe)
    _ = apic.receive(fixed(0x05))
    #expect(apic.read(offset: R.errorStatus) == 0)
    apic.write(offset: R.errorStatus, value: 0)
    #expect(apic.read(offset: R.errorStatus) == 0x40)  // receive illegal vector
    #expect(apic.pendingVector == 0xfe)  // the error LVT's vector
    apic.write(offset: R.interruptCommandLow, value: 0x0000_4003)  // fixed IPI, vector 3
    apic.write(offset: R.errorStatus, value: 0)
    #expect(apic.read(offset: R.errorStatus) == 0x20)  // send illegal vector
    apic.write(offset: R.errorStatus, value: 0)
    #expect(apic.read(offset: R.errorStatus) == 0)
  }

  @Test func startupSequenceOfTheSMPGuestProducesInitAndStartupMessages() {
    // Guests/tests/smp.S and Linux's wakeup_secondary_cpu_via_init: destination in ICR bits
    // 63-56, then INIT assert (0x4500, or 0xc500 level), INIT de-assert (0x8500), SIPI (0x0600 | page).
    let apic = makeEnabledAPIC()
    apic.write(offset: R.interruptCommandHigh, value: 0x0100_0000)
    guard case .interprocessorInterrupt(let initMessage)? = apic.write(offset: R.interruptCommandLow, value: 0xc500)
    else {
      Issue.record("no INIT message")
      return
    }
    #expect(initMessage.deliveryMode == .initialize && initMessage.destination == 1 && initMessage.assert)
    #expect(apic.read(offset: R.interruptCommandLow) & 0x1000 == 0)  // delivery status idle
    let target = LocalAPIC(index: 1, id: 1, isBootstrapProcessor: false)
    #expect(target.receive(initMessage) == .initialize)
    guard case .interprocessorInterrupt(let deassert)? = apic.write(offset: R.interruptCommandLow, value: 0x8500)
    else {
      Issue.record("no de-assert message")
      return
    }
    #expect(target.receive(deassert) == nil)  // 11.6.1: no effect on current processors
    guard case .interprocessorInterrupt(let sipi)? = apic.write(offset: R.interruptCommandLow, value: 0x0608) else {
      Issue.record("no SIPI")
      return
    }
    #expect(target.receive(sipi) == .startup(vector: 0x08))
    #expect(sipi.sourceAPIC == 0)
  }

  @Test func icrShorthandsAndNMI() {
    let apic = makeEnabledAPIC()
    guard case .interprocessorInterrupt(let all)? = apic.write(offset: R.interruptCommandLow, value: 0x000c_4400)
    else {
      Issue.record("no message")
      return
    }
    #expect(all.shorthand == .allExcludingSelf && all.deliveryMode == .nonMaskable)
    let other = makeEnabledAPIC(id: 1)
    _ = other.receive(all)
    #expect(other.nmiPending)
  }

  @Test func logicalDestinationsFlatAndCluster() {
    // 11.6.2.2: flat model ANDs the 8-bit mask with LDR[31:24]; cluster model compares the
    // cluster (bits 7-4) and ANDs the member bits (3-0).
    let apic = makeEnabledAPIC(id: 5)
    apic.write(offset: R.logicalDestination, value: 0x0200_0000)
    #expect(apic.matches(destination: 0x02, logical: true))
    #expect(apic.matches(destination: 0x03, logical: true))
    #expect(!apic.matches(destination: 0x01, logical: true))
    #expect(apic.matches(destination: 5, logical: false) && apic.matches(destination: 0xff, logical: false))
    #expect(!apic.matches(destination: 2, logical: false))
    apic.write(offset: R.destinationFormat, value: 0x0fff_ffff)
    apic.write(offset: R.logicalDestination, value: 0x3400_0000)
    #expect(apic.read(offset: R.destinationFormat) == 0x0fff_ffff)
    #expect(apic.matches(destination: 0x3c, logical: true))
    #expect(!apic.matches(destination: 0x2c, logical: true))
    #expect(!apic.matches(destination: 0x3b, logical: true))
  }

  @Test func oneShotTimerCountsDownTheDividedBusClock() {
    // 11.5.4: divide by 16 (0b0011), count 1000: 16000 ns of 1 GHz bus clock.
    let apic = makeEnabledAPIC()
    apic.advance(to: 1_000)
    apic.write(offset: R.timerDivide, value: 0x3)
    apic.write(offset: R.lvtTimer, value: 0xec)
    apic.write(offset: R.timerInitialCount, value: 1000)
    #expect(apic.nextDeadline == 17_000)
    apic.advance(to: 9_000)
    #expect(apic.read(offset: R.timerCurrentCount) == 500)
    apic.advance(to: 16_999)
    #expect(apic.pendingVector == nil)
    apic.advance(to: 17_000)
    #expect(apic.pendingVector == 0xec)
    #expect(apic.read(offset: R.timerCurrentCount) == 0)
    #expect(apic.nextDeadline == nil)
    apic.write(offset: R.timerInitialCount, value: 0)  // stops
    #expect(apic.nextDeadline == nil)
  }

  @Test func periodicTimerReArms() {
    let apic = makeEnabledAPIC()
    apic.write(offset: R.timerDivide, value: 0xb)  // divide by 1
    apic.write(offset: R.lvtTimer, value: 0x2_0030)  // periodic, vector 0x30
    apic.write(offset: R.timerInitialCount, value: 100)
    apic.advance(to: 100)
    #expect(apic.acknowledge() == 0x30)
    apic.write(offset: R.endOfInterrupt, value: 0)
    #expect(apic.nextDeadline == 200)
    apic.advance(to: 250)
    #expect(apic.read(offset: R.timerCurrentCount) == 50)
    #expect(apic.nextDeadline == 300)
    apic.advance(to: 1_000_000)  // many periods: one request in IRR
    #expect(apic.acknowledge() == 0x30)
    #expect(apic.pendingVector == nil)
    #expect(apic.nextDeadline == 1_000_100)
  }

  @Test func timerReprogrammingMidCount() {
    let apic = makeEnabledAPIC()
    apic.write(offset: R.lvtTimer, value: 0x40)
    apic.write(offset: R.timerDivide, value: 0x0)  // by 2
    apic.write(offset: R.timerInitialCount, value: 1000)
    #expect(apic.nextDeadline == 2_000)
    apic.advance(to: 1_500)
    apic.write(offset: R.timerDivide, value: 0xb)  // by 1: the 1000 ns count has already run out
    #expect(apic.nextDeadline == 1_500)
    apic.advance(to: 1_500)  // due at this very instant
    #expect(apic.pendingVector == 0x40)
    apic.write(offset: R.lvtTimer, value: 0x2_0040)  // periodic after expiry: still stopped
    #expect(apic.nextDeadline == nil)
    apic.write(offset: R.timerInitialCount, value: 100)  // restarts at 1500
    #expect(apic.nextDeadline == 1_600)
    apic.write(offset: R.lvtTimer, value: 0x4_0040)  // into TSC-deadline mode: disarmed
    #expect(apic.nextDeadline == nil && apic.read(offset: R.timerCurrentCount) == 0)
  }

  @Test func maskedTimerCountsWithoutInterrupting() {
    let apic = makeEnabledAPIC()
    apic.write(offset: R.lvtTimer, value: 0x1_0040)
    apic.write(offset: R.timerInitialCount, value: 10)  // divide by 2 at reset
    apic.advance(to: 20)
    #expect(apic.pendingVector == nil)
    #expect(apic.read(offset: R.timerCurrentCount) == 0)
  }

  @Test func tscDeadlineModeFiresAtTheGivenTime() {
    let apic = makeEnabledAPIC()
    apic.write(offset: R.lvtTimer, value: 0x4_0050)
    apic.write(offset: R.timerInitialCount, value: 1000)  // ignored in this mode
    #expect(apic.read(offset: R.timerInitialCount) == 0)
    apic.setDeadline(nanoseconds: 5_000)
    #expect(apic.nextDeadline == 5_000)
    apic.advance(to: 5_000)
    #expect(apic.pendingVector == 0x50)
    #expect(apic.nextDeadline == nil)
    _ = apic.acknowledge()
    apic.write(offset: R.endOfInterrupt, value: 0)
    apic.setDeadline(nanoseconds: 10)  // already past: due now, and advancing to now fires it
    #expect(apic.nextDeadline == 5_000)
    apic.advance(to: 5_000)
    #expect(apic.pendingVector == 0x50)
  }

  @Test func lint1NMIAndVirtualWire() {
    let apic = makeEnabledAPIC()
    #expect(apic.acceptsPICInterrupts)  // BSP: LINT0 ExtINT at reset
    apic.write(offset: R.lvtLINT0, value: 0x1_0700)
    #expect(!apic.acceptsPICInterrupts)
    apic.hardwareEnabled = false
    #expect(apic.acceptsPICInterrupts)  // an APIC that is off passes INTR straight through
    apic.hardwareEnabled = true
    apic.write(offset: R.lvtLINT1, value: 0x400)
    apic.signalLINT1()
    #expect(apic.nmiPending)
  }

  @Test func initResetsEverythingButTheID() {
    let apic = makeEnabledAPIC(id: 7)
    _ = apic.receive(fixed(0x40))
    apic.write(offset: R.taskPriority, value: 0x20)
    #expect(apic.receive(InterruptMessage(vector: 0, deliveryMode: .initialize, destination: 7)) == .initialize)
    #expect(apic.read(offset: R.id) == 0x0700_0000)
    #expect(apic.read(offset: R.taskPriority) == 0 && apic.pendingVector == nil)
    #expect(apic.read(offset: R.spuriousVector) == 0xff)
  }

  @Test func oddAccessesNeverTrap() {
    let apic = makeEnabledAPIC()
    #expect(apic.read(offset: 0x40) == 0)  // reserved
    #expect(apic.read(offset: R.endOfInterrupt) == 0)  // write-only
    apic.write(offset: R.version, value: 0)  // read-only
    #expect(apic.read(offset: R.version) == LocalAPIC.version)
    apic.write(offset: 0x3f0, value: 1)  // reserved
    apic.write(offset: R.errorStatus, value: 0)
    #expect(apic.read(offset: R.errorStatus) == 0x80)  // illegal register address
    apic.write(offset: R.timerCurrentCount, value: 5)
    #expect(apic.read(offset: R.timerCurrentCount) == 0)
    apic.advance(to: 10)
    apic.advance(to: 5)
    #expect(apic.now == 10)
  }
}
