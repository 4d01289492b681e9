import Synchronization

/// Arm's PrimeCell UART (PL011), as QEMU virt places it at 0x09000000 with SPI 1 (INTID 33).
///
/// As with the 8250, transmission is instantaneous: a byte written to UARTDR goes straight to
/// `output`, the transmit FIFO always reads empty, and the transmit interrupt is raised after
/// each byte (QEMU's model does the same). Received bytes queue host-side through
/// `receive(_:)`, from any thread, so typed input is never lost. Register offsets and bits
/// are those of the PL011 Technical Reference Manual (DDI 0183), chapter 3.
public final class PL011: MMIODevice, @unchecked Sendable {
  public static let virtBase: UInt64 = 0x0900_0000
  /// QEMU virt's UART interrupt: SPI 1, GIC INTID 33.
  public static let virtInterrupt = 33

  enum Register {
    static let data: UInt64 = 0x000
    static let receiveStatus: UInt64 = 0x004
    static let flags: UInt64 = 0x018
    static let lowPower: UInt64 = 0x020
    static let integerBaud: UInt64 = 0x024
    static let fractionalBaud: UInt64 = 0x028
    static let lineControl: UInt64 = 0x02c
    static let control: UInt64 = 0x030
    static let fifoLevel: UInt64 = 0x034
    static let interruptMask: UInt64 = 0x038
    static let rawInterrupt: UInt64 = 0x03c
    static let maskedInterrupt: UInt64 = 0x040
    static let interruptClear: UInt64 = 0x044
    static let dmaControl: UInt64 = 0x048
  }

  enum Interrupt {
    static let receive: UInt32 = 1 << 4
    static let transmit: UInt32 = 1 << 5
    static let receiveTimeout: UInt32 = 1 << 6
  }

  /// UARTPeriphID0-3 and UARTPCellID0-3 at 0xfe0-0xffc: a PL011 r1p5 (TRM 3.3.14-15).
  static let identification: [UInt32] = [0x11, 0x10, 0x34, 0x00, 0x0d, 0xf0, 0x05, 0xb1]

  private let output: (UInt8) -> Void
  private let received = Mutex<[UInt8]>([])
  private var receivedCursor = 0
  private var lowPower: UInt32 = 0
  private var integerBaud: UInt32 = 0
  private var fractionalBaud: UInt32 = 0
  private var lineControl: UInt32 = 0
  private var control: UInt32 = 0x300  // TXE and RXE, the reset value
  private var fifoLevel: UInt32 = 0x12
  private var interruptMask: UInt32 = 0
  private var dmaControl: UInt32 = 0
  /// UARTRIS's transmit bit; the receive bits follow the receive queue.
  private var transmitRaised = false

  public init(output: @escaping (UInt8) -> Void) {
    self.output = output
  }

  /// Queues bytes as if they arrived on the wire. Safe to call from any thread.
  public func receive<Bytes: Sequence<UInt8>>(_ bytes: Bytes) {
    received.withLock { $0.append(contentsOf: bytes) }
  }

  private var hasReceivedData: Bool { received.withLock { $0.count > receivedCursor } }

  private var rawInterrupts: UInt32 {
    (hasReceivedData ? Interrupt.receive | Interrupt.receiveTimeout : 0) | (transmitRaised ? Interrupt.transmit : 0)
  }

  /// The UART's interrupt output (UARTINTR): any raw interrupt its mask lets through.
  public var interruptPending: Bool { rawInterrupts & interruptMask != 0 }

  public func read(offset: UInt64, size: Int) -> UInt64 {
    UInt64(readRegister(offset))
  }

  func readRegister(_ offset: UInt64) -> UInt32 {
    switch offset {
    case Register.data: return UInt32(popReceived() ?? 0)
    case Register.receiveStatus: return 0
    case Register.flags:
      // TXFE (bit 7) always; RXFE (bit 4) while nothing waits to be read.
      return 0x80 | (hasReceivedData ? 0 : 0x10)
    case Register.lowPower: return lowPower
    case Register.integerBaud: return integerBaud
    case Register.fractionalBaud: return fractionalBaud
    case Register.lineControl: return lineControl
    case Register.control: return control
    case Register.fifoLevel: return fifoLevel
    case Register.interruptMask: return interruptMask
    case Register.rawInterrupt: return rawInterrupts
    case Register.maskedInterrupt: return rawInterrupts & interruptMask
    case Register.dmaControl: return dmaControl
    case 0xfe0...0xffc where offset & 3 == 0: return PL011.identification[Int((offset - 0xfe0) / 4)]
    default: return 0
    }
  }

  public func write(offset: UInt64, size: Int, value: UInt64) -> DeviceAction {
    let value = UInt32(truncatingIfNeeded: value)
    switch offset {
    case Register.data:
      output(UInt8(truncatingIfNeeded: value))
      transmitRaised = true
    case Register.lowPower: lowPower = value & 0xff
    case Register.integerBaud: integerBaud = value & 0xffff
    case Register.fractionalBaud: fractionalBaud = value & 0x3f
    case Register.lineControl: lineControl = value & 0xff
    case Register.control: control = value & 0xff87
    case Register.fifoLevel: fifoLevel = value & 0x3f
    case Register.interruptMask: interruptMask = value & 0x7ff
    case Register.interruptClear:
      if value & Interrupt.transmit != 0 { transmitRaised = false }
    case Register.dmaControl: dmaControl = value & 7
    default: break
    }
    return .none
  }

  private func popReceived() -> UInt8? {
    received.withLock { queue in
      guard receivedCursor < queue.count else { return nil }
      let byte = queue[receivedCursor]
      receivedCursor += 1
      if receivedCursor == queue.count {
        queue.removeAll(keepingCapacity: true)
        receivedCursor = 0
      }
      return byte
    }
  }
}
