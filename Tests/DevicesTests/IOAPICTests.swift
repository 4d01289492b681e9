import Testing

@testable import Devices

/// The I/O APIC through IOREGSEL/IOWIN as Linux's io_apic.c drives it. Section numbers are
/// those of the Intel 82093AA data sheet (290566).
@Suite struct IOAPICTests {
  final class Sink {
    var messages: [InterruptMessage] = []
  }

  func makeIOAPIC() -> (IOAPIC, Sink) {
    let ioapic = IOAPIC(id: 0)
    let sink = Sink()
    ioapic.deliver = { sink.messages.append($0) }
    return (ioapic, sink)
  }

  func writeRegister(_ ioapic: IOAPIC, _ index: UInt8, _ value: UInt32) {
    _ = ioapic.write(offset: 0x00, size: 4, value: UInt64(index))
    _ = ioapic.write(offset: 0x10, size: 4, value: UInt64(value))
  }

  func readRegister(_ ioapic: IOAPIC, _ index: UInt8) -> UInt32 {
    _ = ioapic.write(offset: 0x00, size: 4, value: UInt64(index))
    return UInt32(ioapic.read(offset: 0x10, size: 4))
  }

  @Test func identificationRegisters() {
    let (ioapic, _) = makeIOAPIC()
    writeRegister(ioapic, 0x00, 0x0200_0000)
    #expect(readRegister(ioapic, 0x00) == 0x0200_0000)  // 3.2.1: ID in bits 27-24
    #expect(readRegister(ioapic, 0x01) == 0x0017_0020)  // 3.2.2: 24 entries, version 0x20
    #expect(readRegister(ioapic, 0x02) == 0x0200_0000)  // 3.2.3: arbitration ID
    #expect(ioapic.read(offset: 0x00, size: 4) == 0x02)  // IOREGSEL reads back
  }

  @Test func entriesResetMaskedAndReadOnlyBitsIgnoreWrites() {
    let (ioapic, sink) = makeIOAPIC()
    #expect(readRegister(ioapic, 0x10) == 0x0001_0000)  // 3.2.4: mask set at reset
    ioapic.pulse(pin: 1)
    #expect(sink.messages.isEmpty)
    writeRegister(ioapic, 0x12, 0xffff_ffff)  // pin 1 low half, every bit
    #expect(readRegister(ioapic, 0x12) == 0x0001_afff)  // delivery status and Remote IRR stay 0
    writeRegister(ioapic, 0x13, 0xffff_ffff)
    #expect(readRegister(ioapic, 0x13) == 0xff00_0000)
  }

  @Test func edgeEntrySendsItsMessageOnEachRisingEdge() {
    // The PIT's OUT0 on pin 2, vector 0x30, fixed, physical destination APIC 1.
    let (ioapic, sink) = makeIOAPIC()
    writeRegister(ioapic, 0x15, 0x0100_0000)
    writeRegister(ioapic, 0x14, 0x30)
    ioapic.setLevel(pin: 2, high: true)
    ioapic.setLevel(pin: 2, high: true)  // no new edge
    ioapic.setLevel(pin: 2, high: false)
    ioapic.setLevel(pin: 2, high: true)
    #expect(sink.messages.count == 2)
    #expect(sink.messages.first == InterruptMessage(vector: 0x30, destination: 1))
  }

  @Test func levelEntryWaitsForEOIAndFiresAgainWhileActive() {
    // Active-low level (PCI) on pin 16, lowest priority, logical destination 0x01.
    let (ioapic, sink) = makeIOAPIC()
    ioapic.setLevel(pin: 16, high: true)  // idle (inactive) level of an active-low line
    writeRegister(ioapic, 0x31, 0x0100_0000)
    writeRegister(ioapic, 0x30, 0x0000_a941)  // vector 0x41, lowest priority, logical, low, level
    #expect(sink.messages.isEmpty)
    ioapic.setLevel(pin: 16, high: false)  // asserted
    #expect(sink.messages.count == 1)
    #expect(
      sink.messages.last
        == InterruptMessage(
          vector: 0x41, deliveryMode: .lowestPriority, logicalDestination: true, destination: 1, levelTriggered: true))
    #expect(readRegister(ioapic, 0x30) & 0x4000 != 0)  // Remote IRR
    ioapic.setLevel(pin: 16, high: true)
    ioapic.setLevel(pin: 16, high: false)  // Remote IRR still set: nothing new
    #expect(sink.messages.count == 1)
    _ = ioapic.write(offset: 0x40, size: 4, value: 0x41)  // EOI register: line still active
    #expect(sink.messages.count == 2)
    ioapic.setLevel(pin: 16, high: true)
    ioapic.endOfInterrupt(vector: 0x41)  // the broadcast from the local APIC
    #expect(readRegister(ioapic, 0x30) & 0x4000 == 0)
    #expect(sink.messages.count == 2)
  }

  @Test func unmaskingAnActiveLevelInputFiresIt() {
    let (ioapic, sink) = makeIOAPIC()
    writeRegister(ioapic, 0x20, 0x0001_8050)  // pin 8, masked, level, active high
    ioapic.setLevel(pin: 8, high: true)
    #expect(sink.messages.isEmpty)
    writeRegister(ioapic, 0x20, 0x0000_8050)
    #expect(sink.messages.map(\.vector) == [0x50])
  }

  @Test func oddAccessesNeverTrap() {
    let (ioapic, sink) = makeIOAPIC()
    #expect(readRegister(ioapic, 0x40) == 0)  // beyond the last entry
    writeRegister(ioapic, 0x01, 0)  // version is read-only
    #expect(readRegister(ioapic, 0x01) == IOAPIC.version)
    #expect(ioapic.read(offset: 0x40, size: 4) == 0)  // EOI register is write-only
    #expect(ioapic.read(offset: 0x800, size: 4) == 0)
    ioapic.setLevel(pin: 24, high: true)
    ioapic.setLevel(pin: -1, high: true)
    ioapic.endOfInterrupt(vector: 0x99)
    #expect(sink.messages.isEmpty)
    let bus = IOBus()
    try! bus.register(ioapic, addresses: IOAPIC.defaultBase...(IOAPIC.defaultBase + IOAPIC.size - 1))
    _ = bus.mmioWrite(0xfec0_0000, size: 4, value: 0x01)
    #expect(bus.mmioRead(0xfec0_0010, size: 4) == 0x0017_0020)
  }
}
