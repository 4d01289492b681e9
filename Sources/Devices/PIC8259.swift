/// One Intel 8259A programmable interrupt controller, as a value. `PIC8259Pair` wires two of
/// them the PC way (slave on the master's IR2) and gives them ports.
///
/// Section and figure names below are those of the Intel 8259A data sheet (order 231468).
public struct PIC8259: Equatable, Sendable {
  /// Interrupt request register: requests latched and waiting for INTA.
  public var irr: UInt8 = 0
  /// In-service register: requests acknowledged and not yet ended by an EOI.
  public var isr: UInt8 = 0
  /// Interrupt mask register (OCW1).
  public var imr: UInt8 = 0
  /// Current level of each IR input (for edge detection).
  public var lines: UInt8 = 0
  /// The PC's edge/level control register for this chip (ELCR at 0x4d0/0x4d1).
  public var elcr: UInt8 = 0
  /// ICW1's LTIM: every input level triggered, whatever the ELCR says.
  public var levelTriggeredMode = false
  /// Inputs that request by level rather than by rising edge.
  public var levelTriggered: UInt8 { levelTriggeredMode ? 0xff : elcr }
  /// Bits of `levelTriggered` the board lets software change (see `PIC8259Pair.elcrWritable`).
  public let elcrWritable: UInt8

  /// ICW2's T7-T3: vector of IR0; IRn gets vectorBase | n in 8086 mode.
  public var vectorBase: UInt8 = 0
  /// ICW3: on a master, which inputs have slaves; on a slave, its cascade identity.
  public var cascade: UInt8 = 0
  public var autoEOI = false
  public var rotateOnAutoEOI = false
  public var specialFullyNested = false
  public var specialMask = false
  /// The IR with the lowest priority; IR(lowestPriority+1)&7 has the highest ("Priority
  /// Resolver", rotation in OCW2). 7 after ICW1.
  public var lowestPriority: UInt8 = 7
  /// OCW3 RR/RIS: a read of the even port returns ISR instead of IRR.
  public var readsISR = false
  /// OCW3 P: the next read of the even port is a poll.
  public var pollPending = false
  /// Next initialization word expected: 0 when initialized, else 2, 3 or 4.
  public var expectedICW: UInt8 = 0
  /// ICW1 SNGL: no slave (no ICW3 is expected).
  public var singleMode = false
  /// ICW1 IC4: an ICW4 follows.
  public var icw4Needed = false
  public let isMaster: Bool

  init(isMaster: Bool, elcrWritable: UInt8) {
    self.isMaster = isMaster
    self.elcrWritable = elcrWritable
  }

  // MARK: Input lines

  /// Drives IR input `irq` (0-7). Edge mode latches a request on a rising edge only; level
  /// mode requests for as long as the line is high ("Edge and Level Triggered Modes").
  mutating func setLine(_ irq: Int, high: Bool) {
    let bit = UInt8(1) << UInt8(irq & 7)
    if levelTriggered & bit != 0 {
      if high { irr |= bit } else { irr &= ~bit }
    } else if high && lines & bit == 0 {
      irr |= bit
    }
    // A falling edge leaves an edge request latched: if it drops before INTA, the
    // acknowledge finds nothing and answers with the default IR7 (a spurious interrupt).
    if high { lines |= bit } else { lines &= ~bit }
  }

  mutating func setELCR(_ value: UInt8) {
    elcr = value & elcrWritable
    // Level inputs request exactly while high.
    irr = (irr & ~levelTriggered) | (lines & levelTriggered)
  }

  // MARK: Priority resolution

  /// Rotates `bits` so that the highest-priority IR lands in bit 0.
  private func byPriority(_ bits: UInt8) -> UInt8 {
    let shift = (lowestPriority &+ 1) & 7
    return bits >> shift | bits << ((8 &- shift) & 7)
  }

  /// Priority rank (0 highest) of the first set bit, or nil.
  private func highestRank(_ bits: UInt8) -> Int? {
    bits == 0 ? nil : byPriority(bits).trailingZeroBitCount
  }

  private func irq(atRank rank: Int) -> Int {
    (rank + Int(lowestPriority) + 1) & 7
  }

  /// The IR the chip would present to the CPU now, or nil: the highest-priority unmasked
  /// request that outranks everything in service ("Interrupt Sequence", "Fully Nested Mode").
  /// In special mask mode only the in-service levels that are not masked block others, and
  /// in special fully nested mode a master lets its slaves' line interrupt its own service.
  public var highestPending: Int? {
    guard let rank = highestRank(irr & ~imr) else { return nil }
    var blocking = isr
    if specialMask { blocking &= ~imr }
    if specialFullyNested && isMaster { blocking &= ~cascade }
    if let serving = highestRank(blocking), serving <= rank { return nil }
    return irq(atRank: rank)
  }

  /// The INT output.
  public var interruptOutput: Bool { highestPending != nil }

  /// The highest-priority IR in service, for a non-specific EOI.
  private var highestInService: Int? {
    var inService = isr
    if specialMask { inService &= ~imr }  // masked levels in service are skipped in SMM
    return highestRank(inService).map(irq(atRank:))
  }

  /// The INTA cycle on this chip for `irq`: ISR set (unless auto-EOI), an edge request
  /// cleared; a level request stays while its line stays high.
  mutating func acknowledge(_ irq: Int) {
    let bit = UInt8(1) << UInt8(irq)
    if levelTriggered & bit == 0 { irr &= ~bit }
    if autoEOI {
      if rotateOnAutoEOI { lowestPriority = UInt8(irq) }
    } else {
      isr |= bit
    }
  }

  // MARK: Register interface (A0 = 0: command/status; A0 = 1: data/mask)

  mutating func writeCommand(_ value: UInt8) {
    if value & 0x10 != 0 {
      writeICW1(value)
    } else if value & 0x08 != 0 {
      writeOCW3(value)
    } else {
      writeOCW2(value)
    }
  }

  mutating func writeData(_ value: UInt8) {
    switch expectedICW {
    case 2:
      vectorBase = value & 0xf8  // T7-T3; A10-A8 only mean something in 8080 mode
      expectedICW = singleMode ? (icw4Needed ? 4 : 0) : 3
    case 3:
      cascade = value
      expectedICW = icw4Needed ? 4 : 0
    case 4:
      // ICW4: bit 0 uPM (8086 mode assumed either way), bit 1 AEOI, bits 3-2 buffering
      // (ignored), bit 4 SFNM.
      autoEOI = value & 0x02 != 0
      specialFullyNested = value & 0x10 != 0
      expectedICW = 0
    default:
      imr = value  // OCW1
    }
  }

  /// "Initialization Command Words": ICW1 restarts the sequence whatever state the chip was in.
  private mutating func writeICW1(_ value: UInt8) {
    imr = 0
    isr = 0
    // The edge sense latch is reset: a line already high must fall and rise again.
    irr = 0
    lowestPriority = 7
    specialMask = false
    readsISR = false
    pollPending = false
    cascade = 0
    icw4Needed = value & 0x01 != 0
    singleMode = value & 0x02 != 0
    if !icw4Needed {  // "If IC4 = 0, then all functions selected in ICW4 are set to zero"
      autoEOI = false
      specialFullyNested = false
    }
    rotateOnAutoEOI = false
    levelTriggeredMode = value & 0x08 != 0
    irr = lines & levelTriggered
    expectedICW = 2
  }

  /// OCW2: R, SL, EOI in bits 7-5, the level in bits 2-0 (Table "Operation Command Words").
  private mutating func writeOCW2(_ value: UInt8) {
    let level = Int(value & 7)
    switch value >> 5 {
    case 0b001:  // non-specific EOI
      if let irq = highestInService { isr &= ~(1 << UInt8(irq)) }
    case 0b011:  // specific EOI
      isr &= ~(1 << UInt8(level))
    case 0b101:  // rotate on non-specific EOI
      if let irq = highestInService {
        isr &= ~(1 << UInt8(irq))
        lowestPriority = UInt8(irq)
      }
    case 0b100:
      rotateOnAutoEOI = true
    case 0b000:
      rotateOnAutoEOI = false
    case 0b111:  // rotate on specific EOI
      isr &= ~(1 << UInt8(level))
      lowestPriority = UInt8(level)
    case 0b110:  // set priority
      lowestPriority = UInt8(level)
    default:  // 0b010: no operation
      break
    }
  }

  /// OCW3: ESMM/SMM in bits 6-5, P in bit 2, RR/RIS in bits 1-0.
  private mutating func writeOCW3(_ value: UInt8) {
    if value & 0x40 != 0 { specialMask = value & 0x20 != 0 }
    if value & 0x04 != 0 { pollPending = true }
    if value & 0x02 != 0 { readsISR = value & 0x01 != 0 }
  }

  /// "Poll Command": the byte has bit 7 set when an interrupt is pending and the level in
  /// bits 2-0; the read acts as an INTA.
  mutating func poll() -> UInt8 {
    pollPending = false
    guard let irq = highestPending else { return 0 }
    acknowledge(irq)
    return 0x80 | UInt8(irq)
  }
}
