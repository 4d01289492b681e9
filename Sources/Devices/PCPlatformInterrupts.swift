/// The interrupt wiring of a PC, in user space: the 8259 pair, the I/O APIC, one local APIC
/// per processor, the PIT, the RTC, the keyboard controller and any serial ports, connected
/// the way a PIIX-style board connects them.
///
/// - ISA IRQ n drives the 8259 input n and I/O APIC pin n, except IRQ 0 (the PIT's OUT0),
///   which reaches I/O APIC pin 2 (the MP/ACPI interrupt-source override every PC BIOS
///   reports). The PIT, the RTC (IRQ 8), the keyboard controller (IRQ 1 and 12) and the serial
///   ports attached with `attach(serial:irq:)` are wired at creation.
/// - The 8259's INT reaches the first processor whose APIC accepts it (LINT0 an unmasked
///   ExtINT, i.e. virtual-wire mode, or the APIC hardware-disabled); with the APIC in charge
///   the guest masks the 8259 and uses the I/O APIC instead.
/// - I/O APIC and inter-processor messages go to the local APICs they name. Lowest-priority
///   delivery goes to the first APIC named (no arbitration). INIT and start-up IPIs are kept
///   for the engine in `processorSignals`.
///
/// The engine drives it with virtual time (`advance(to:)`, `nextDeadline`), gives it each
/// processor's local-APIC accesses (`readLocalAPIC`, `writeLocalAPIC`), and at each
/// instruction boundary where a processor can take an interrupt asks `hasInterrupt(cpu:)`
/// and then `acknowledgeInterrupt(cpu:)` for the vector.
public final class PCPlatformInterrupts: TimedDevice {
  public let pic = PIC8259Pair()
  public let ioapic = IOAPIC(id: 0)
  public let pit = PIT8254()
  public let rtc: RTCCMOS
  public let keyboardController = I8042()
  public let localAPICs: [LocalAPIC]
  // The chips' callbacks hold the platform weakly: a bus that outlives it keeps the chips
  // answering, with their interrupt lines going nowhere.
  public private(set) var serialPorts: [Serial8250] = []
  /// INIT and start-up IPIs delivered, oldest first, for the engine to act on and clear.
  public var processorSignals: [(cpu: Int, signal: ProcessorSignal)] = []

  /// - Parameters:
  ///   - cpuCount: processors; processor n gets APIC ID n and processor 0 is the bootstrap one.
  ///   - rtcStart, memoryBelow4G, memoryAbove4G: see `RTCCMOS.init`.
  public init(cpuCount: Int, rtcStart: CivilTime, memoryBelow4G: UInt64 = 0, memoryAbove4G: UInt64 = 0) {
    let count = max(cpuCount, 1)
    localAPICs = (0..<count).map {
      LocalAPIC(index: $0, id: UInt8(truncatingIfNeeded: $0), isBootstrapProcessor: $0 == 0)
    }
    rtc = RTCCMOS(start: rtcStart, memoryBelow4G: memoryBelow4G, memoryAbove4G: memoryAbove4G, cpuCount: count)
    pit.output0Changed = { [weak self] level in self?.setISAInterrupt(0, high: level) }
    rtc.interruptChanged = { [weak self] level in self?.setISAInterrupt(RTCCMOS.interruptLine, high: level) }
    keyboardController.interrupt = { [weak self] irq in
      self?.setISAInterrupt(irq, high: true)
      self?.setISAInterrupt(irq, high: false)
    }
    ioapic.deliver = { [weak self] message in self?.route(message) }
  }

  /// Registers the port and MMIO devices on `bus` (the local APICs are per processor and
  /// reached through `readLocalAPIC`/`writeLocalAPIC` instead).
  public func register(on bus: IOBus) throws(IOBus.RegistrationError) {
    try bus.register(pic, portRanges: PIC8259Pair.portRanges)
    try bus.register(pit, portRanges: PIT8254.portRanges)
    try bus.register(rtc, portRanges: [RTCCMOS.ports])
    try bus.register(keyboardController, portRanges: I8042.portRanges)
    try bus.register(ioapic, addresses: IOAPIC.defaultBase...(IOAPIC.defaultBase + IOAPIC.size - 1))
  }

  /// Wires a UART's interrupt line to ISA IRQ `irq` (4 for COM1).
  public func attach(serial: Serial8250, irq: Int) {
    serialPorts.append(serial)
    serial.interruptChanged = { [weak self] level in self?.setISAInterrupt(irq, high: level) }
    serial.updateInterruptLine()
  }

  /// Drives ISA interrupt line `irq` (0-15) on both controllers.
  public func setISAInterrupt(_ irq: Int, high: Bool) {
    pic.setLevel(irq: irq, high: high)
    guard irq != 2 else { return }  // I/O APIC pin 2 is the timer's; ISA IRQ 2 is the cascade
    ioapic.setLevel(pin: irq == 0 ? 2 : irq, high: high)
  }

  // MARK: Messages

  /// The local APICs a message names.
  public func destinations(of message: InterruptMessage) -> [Int] {
    let all = localAPICs.indices
    switch message.shorthand {
    case .selfOnly: return message.sourceAPIC.map { [$0] } ?? []
    case .allIncludingSelf: return Array(all)
    case .allExcludingSelf: return all.filter { $0 != message.sourceAPIC }
    case .none:
      let named = all.filter {
        localAPICs[$0].matches(destination: message.destination, logical: message.logicalDestination)
      }
      if message.deliveryMode == .lowestPriority, let first = named.first { return [first] }
      return named
    }
  }

  /// Delivers a message to the APICs it names; INIT and start-up land in `processorSignals`.
  public func route(_ message: InterruptMessage) {
    for cpu in destinations(of: message) {
      if let signal = localAPICs[cpu].receive(message) { processorSignals.append((cpu, signal)) }
    }
  }

  // MARK: Processor side

  /// Processor `cpu`'s APIC register read at `offset` in the 0xfee00000 page.
  public func readLocalAPIC(cpu: Int, offset: UInt32) -> UInt32 {
    localAPICs[cpu].read(offset: offset)
  }

  /// Processor `cpu`'s APIC register write; IPIs and level EOIs are routed at once.
  public func writeLocalAPIC(cpu: Int, offset: UInt32, value: UInt32) {
    switch localAPICs[cpu].write(offset: offset, value: value) {
    case .interprocessorInterrupt(let message)?: route(message)
    case .endOfInterrupt(let vector)?: ioapic.endOfInterrupt(vector: vector)
    case nil: break
    }
  }

  /// The processor the 8259's INT reaches, if any.
  public var picTarget: Int? {
    localAPICs.firstIndex { $0.acceptsPICInterrupts }
  }

  /// Whether processor `cpu` has a maskable interrupt to take (when RFLAGS.IF allows).
  public func hasInterrupt(cpu: Int) -> Bool {
    localAPICs[cpu].pendingVector != nil || (picTarget == cpu && pic.interruptOutput)
  }

  /// The processor takes its interrupt: the vector to deliver, or nil if none is pending.
  /// The local APIC's requests come first; the 8259's ExtINT (virtual wire) after them.
  public func acknowledgeInterrupt(cpu: Int) -> UInt8? {
    let apic = localAPICs[cpu]
    if apic.pendingVector != nil { return apic.acknowledge() }
    if picTarget == cpu && pic.interruptOutput { return pic.acknowledge() }
    return nil
  }

  // MARK: Time

  public func advance(to now: UInt64) {
    pit.advance(to: now)
    rtc.advance(to: now)
    for apic in localAPICs { apic.advance(to: now) }
    for serial in serialPorts { serial.updateInterruptLine() }
  }

  public var nextDeadline: UInt64? {
    var deadline = earliest(pit.nextDeadline, rtc.nextDeadline)
    for apic in localAPICs { deadline = earliest(deadline, apic.nextDeadline) }
    return deadline
  }
}
