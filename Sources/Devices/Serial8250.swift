import Synchronization

/// A 16550A-compatible UART (the 8250 family), as found at COM1 on every PC.
///
/// Transmission is instantaneous: a byte written to THR goes straight to `output`, and the
/// transmitter always reads as empty. Received bytes queue in a host-side buffer that
/// `receive(_:)` fills from any thread, so input typed faster than the guest reads is never lost.
public final class Serial8250: PortDevice, @unchecked Sendable {
  /// Port base and interrupt line of the first serial port on a PC.
  public static let com1Base: UInt16 = 0x3f8
  public static let com1Interrupt: UInt32 = 4

  // Register offsets.
  enum Register {
    static let data: UInt16 = 0  // RBR (read) / THR (write); DLL when DLAB is set
    static let interruptEnable: UInt16 = 1  // IER; DLM when DLAB is set
    static let interruptIdentification: UInt16 = 2  // IIR (read) / FCR (write)
    static let lineControl: UInt16 = 3
    static let modemControl: UInt16 = 4
    static let lineStatus: UInt16 = 5
    static let modemStatus: UInt16 = 6
    static let scratch: UInt16 = 7
  }

  // Bits, named as in the 16550 data sheet.
  enum Bit {
    static let dlab: UInt8 = 0x80  // LCR
    static let ierReceivedData: UInt8 = 0x01
    static let ierTransmitterEmpty: UInt8 = 0x02
    static let lsrDataReady: UInt8 = 0x01
    static let lsrTransmitterHoldingEmpty: UInt8 = 0x20
    static let lsrTransmitterEmpty: UInt8 = 0x40
    static let mcrLoopback: UInt8 = 0x10
    static let mcrOut2: UInt8 = 0x08
    static let fcrEnable: UInt8 = 0x01
    static let fcrClearReceive: UInt8 = 0x02
    static let iirNoInterrupt: UInt8 = 0x01
    static let iirFIFOsEnabled: UInt8 = 0xc0
  }

  private let output: (UInt8) -> Void
  private let received = Mutex<[UInt8]>([])
  private var receivedCursor = 0

  private var divisor: UInt16 = 12  // 9600 baud, the reset value
  private var interruptEnable: UInt8 = 0
  private var lineControl: UInt8 = 0x03
  private var modemControl: UInt8 = 0x08
  private var scratch: UInt8 = 0
  private var fifoControl: UInt8 = 0
  /// THRE interrupt latch: set when THR empties, cleared by reading IIR or writing THR.
  private var transmitterInterruptPending = false

  /// - Parameter output: receives every byte the guest transmits (not in loopback mode).
  public init(output: @escaping (UInt8) -> Void) {
    self.output = output
  }

  /// Queues bytes as if they arrived on the wire. Safe to call from any thread.
  public func receive<Bytes: Sequence<UInt8>>(_ bytes: Bytes) {
    received.withLock { $0.append(contentsOf: bytes) }
  }

  /// Whether received bytes wait for the guest to read them. Safe to call from any thread.
  public var hasPendingInput: Bool { hasReceivedData }

  /// Whether the UART's interrupt output is asserted (level-triggered, IRQ 4 on COM1).
  public var interruptPending: Bool { pendingInterrupt != nil }

  /// Told the IRQ line's new level whenever a register access changes it (see
  /// `interruptOutput`). Called on the thread that accesses the registers, never from
  /// `receive(_:)`: the owner calls `updateInterruptLine()` on its own thread to notice input.
  public var interruptChanged: ((Bool) -> Void)?
  private var reportedInterrupt = false

  /// The IRQ line as a PC wires it: the UART's interrupt, gated by MCR OUT2 (bit 3), which
  /// drivers set to connect the UART to the interrupt controller.
  public var interruptOutput: Bool { interruptPending && modemControl & Bit.mcrOut2 != 0 }

  /// Re-evaluates the IRQ line and reports a change to `interruptChanged`.
  public func updateInterruptLine() {
    let level = interruptOutput
    guard level != reportedInterrupt else { return }
    reportedInterrupt = level
    interruptChanged?(level)
  }

  private var hasReceivedData: Bool {
    received.withLock { $0.count > receivedCursor }
  }

  /// The highest-priority pending interrupt's IIR code, or nil.
  private var pendingInterrupt: UInt8? {
    if interruptEnable & Bit.ierReceivedData != 0 && hasReceivedData { return 0x04 }
    if interruptEnable & Bit.ierTransmitterEmpty != 0 && transmitterInterruptPending { return 0x02 }
    return nil
  }

  private var dlab: Bool { lineControl & Bit.dlab != 0 }

  public func read(offset: UInt16, size: Int) -> UInt32 {
    let value = UInt32(readRegister(offset))
    updateInterruptLine()
    return value
  }

  public func write(offset: UInt16, size: Int, value: UInt32) -> DeviceAction {
    writeRegister(offset, UInt8(truncatingIfNeeded: value))
    updateInterruptLine()
    return .none
  }

  func readRegister(_ offset: UInt16) -> UInt8 {
    switch offset {
    case Register.data:
      if dlab { return UInt8(truncatingIfNeeded: divisor) }
      return popReceived() ?? 0
    case Register.interruptEnable:
      return dlab ? UInt8(truncatingIfNeeded: divisor >> 8) : interruptEnable
    case Register.interruptIdentification:
      let fifoBits = fifoControl & Bit.fcrEnable != 0 ? Bit.iirFIFOsEnabled : 0
      guard let code = pendingInterrupt else { return Bit.iirNoInterrupt | fifoBits }
      if code == 0x02 { transmitterInterruptPending = false }  // reading IIR acknowledges THRE
      return code | fifoBits
    case Register.lineControl:
      return lineControl
    case Register.modemControl:
      return modemControl
    case Register.lineStatus:
      var status = Bit.lsrTransmitterHoldingEmpty | Bit.lsrTransmitterEmpty
      if hasReceivedData { status |= Bit.lsrDataReady }
      return status
    case Register.modemStatus:
      if modemControl & Bit.mcrLoopback != 0 {
        // Loopback wires the outputs back to the inputs: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD.
        let m = modemControl
        return (m & 0x01) << 5 | (m & 0x02) << 3 | (m & 0x04) << 4 | (m & 0x08) << 4
      }
      return 0xb0  // DCD, DSR and CTS asserted: a terminal is attached and ready
    case Register.scratch:
      return scratch
    default:
      return 0xff
    }
  }

  func writeRegister(_ offset: UInt16, _ value: UInt8) {
    switch offset {
    case Register.data:
      if dlab {
        divisor = divisor & 0xff00 | UInt16(value)
      } else {
        if modemControl & Bit.mcrLoopback != 0 {
          receive(CollectionOfOne(value))
        } else {
          output(value)
        }
        transmitterInterruptPending = true  // sent at once, so the holding register is empty again
      }
    case Register.interruptEnable:
      if dlab {
        divisor = divisor & 0x00ff | UInt16(value) << 8
      } else {
        let enablingTransmit = value & Bit.ierTransmitterEmpty != 0 && interruptEnable & Bit.ierTransmitterEmpty == 0
        interruptEnable = value & 0x0f
        if enablingTransmit { transmitterInterruptPending = true }  // THR is empty, so THRE fires at once
      }
    case Register.interruptIdentification:
      fifoControl = value
      if value & Bit.fcrClearReceive != 0 {
        received.withLock { $0.removeAll() }
        receivedCursor = 0
      }
    case Register.lineControl:
      lineControl = value
    case Register.modemControl:
      modemControl = value & 0x1f
    case Register.scratch:
      scratch = value
    default:
      break  // LSR and MSR are read-only
    }
  }

  private func popReceived() -> UInt8? {
    received.withLock { queue in
      guard receivedCursor < queue.count else { return nil }
      let byte = queue[receivedCursor]
      receivedCursor += 1
      if receivedCursor >= 4096 {  // compact now and then instead of shifting on every byte
        queue.removeFirst(receivedCursor)
        receivedCursor = 0
      }
      return byte
    }
  }
}
