/// The PC's two cascaded 8259A interrupt controllers: the master at ports 0x20/0x21 serving
/// IRQ 0-7, the slave at 0xa0/0xa1 serving IRQ 8-15 through the master's IR2, and the
/// edge/level control registers (ELCR, as on the PIIX/ICH chipsets) at 0x4d0/0x4d1.
///
/// Inputs come in through `setLevel(irq:high:)` (or `raise`/`lower`/`pulse`); the CPU side
/// is `interruptOutput` (the master's INT pin) and `acknowledge()` (the two INTA cycles).
/// Register it on a bus with `bus.register(pic, portRanges: PIC8259Pair.portRanges)`.
public final class PIC8259Pair: PlatformPortDevice {
  public static let masterPorts: ClosedRange<UInt16> = 0x20...0x21
  public static let slavePorts: ClosedRange<UInt16> = 0xa0...0xa1
  public static let elcrPorts: ClosedRange<UInt16> = 0x4d0...0x4d1
  public static let portRanges = [masterPorts, slavePorts, elcrPorts]
  /// The master input the slave's INT output drives.
  public static let cascadeIRQ = 2
  /// IRQ 0 (timer), 1 (keyboard), 2 (cascade), 8 (RTC) and 13 (FPU) are always edge
  /// triggered on a PC: their ELCR bits read as zero (PIIX4 data sheet, ELCR1/ELCR2).
  static let masterELCRWritable: UInt8 = 0xf8
  static let slaveELCRWritable: UInt8 = 0xde

  public private(set) var master = PIC8259(isMaster: true, elcrWritable: masterELCRWritable)
  public private(set) var slave = PIC8259(isMaster: false, elcrWritable: slaveELCRWritable)

  public init() {}

  /// Gives both chips the state another model of them had (an engine switch carries KVM's
  /// in-kernel 8259s here and back): `master` and `slave` start as copies of this pair's.
  public func restore(master: PIC8259, slave: PIC8259) {
    precondition(master.isMaster && !slave.isMaster, "a master and a slave, in that order")
    self.master = master
    self.slave = slave
    updateCascade()
  }

  // MARK: Device side

  /// Drives IRQ line `irq` (0-15). Out-of-range lines are ignored.
  public func setLevel(irq: Int, high: Bool) {
    switch irq {
    case 0..<8 where irq != Self.cascadeIRQ: master.setLine(irq, high: high)
    case 8..<16: slave.setLine(irq - 8, high: high)
    default: return  // IRQ 2 is the slave's; nothing outside 0-15 exists
    }
    updateCascade()
  }

  public func raise(irq: Int) { setLevel(irq: irq, high: true) }
  public func lower(irq: Int) { setLevel(irq: irq, high: false) }

  /// A rising then falling edge: what an ISA device's edge-triggered pulse looks like.
  public func pulse(irq: Int) {
    setLevel(irq: irq, high: true)
    setLevel(irq: irq, high: false)
  }

  /// The slave's INT output is wired to the master's IR2.
  private func updateCascade() {
    master.setLine(Self.cascadeIRQ, high: slave.interruptOutput)
  }

  // MARK: CPU side

  /// The master's INT output: the CPU should run an INTA cycle when it can take an interrupt.
  public var interruptOutput: Bool { master.interruptOutput }

  /// The vector `acknowledge()` would return now, or nil when nothing is requested.
  public var pendingVector: UInt8? {
    guard let irq = master.highestPending else { return nil }
    if irq == Self.cascadeIRQ && !master.singleMode && master.cascade & (1 << UInt8(irq)) != 0 {
      return slave.vectorBase | UInt8(slave.highestPending ?? 7)
    }
    return master.vectorBase | UInt8(irq)
  }

  /// The INTA cycles: the winning request moves from IRR to ISR (on the slave too when it
  /// came through IR2) and its vector is returned. When the request went away before the
  /// acknowledge, the chip answers with its IR7 vector and sets no ISR bit: the spurious
  /// IRQ 7 (or IRQ 15 from the slave) of the data sheet's "Interrupt Sequence".
  public func acknowledge() -> UInt8 {
    defer { updateCascade() }
    guard let irq = master.highestPending else { return master.vectorBase | 7 }
    master.acknowledge(irq)
    guard irq == Self.cascadeIRQ && !master.singleMode && master.cascade & (1 << UInt8(irq)) != 0 else {
      return master.vectorBase | UInt8(irq)
    }
    guard let slaveIRQ = slave.highestPending else { return slave.vectorBase | 7 }
    slave.acknowledge(slaveIRQ)
    return slave.vectorBase | UInt8(slaveIRQ)
  }

  // MARK: Ports

  public func read(port: UInt16, size: Int) -> UInt32 {
    defer { updateCascade() }
    let byte: UInt8
    switch port {
    case 0x20: byte = readCommand(&master)
    case 0x21: byte = master.imr
    case 0xa0: byte = readCommand(&slave)
    case 0xa1: byte = slave.imr
    case 0x4d0: byte = master.elcr
    case 0x4d1: byte = slave.elcr
    default: return UInt32(truncatingIfNeeded: floatingBus(size: size))
    }
    return UInt32(byte)
  }

  public func write(port: UInt16, size: Int, value: UInt32) -> DeviceAction {
    let byte = UInt8(truncatingIfNeeded: value)
    switch port {
    case 0x20: master.writeCommand(byte)
    case 0x21: master.writeData(byte)
    case 0xa0: slave.writeCommand(byte)
    case 0xa1: slave.writeData(byte)
    case 0x4d0: master.setELCR(byte)
    case 0x4d1: slave.setELCR(byte)
    default: break
    }
    updateCascade()
    return .none
  }

  private func readCommand(_ chip: inout PIC8259) -> UInt8 {
    if chip.pollPending { return chip.poll() }
    return chip.readsISR ? chip.isr : chip.irr
  }
}
