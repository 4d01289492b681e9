import Testing

@testable import Devices

/// Register behaviour from the 16550A data sheet (National Semiconductor PC16550D).
@Suite struct Serial8250Tests {
  final class Wire: @unchecked Sendable {
    var sent: [UInt8] = []
  }

  func makeUART() -> (Serial8250, Wire) {
    let wire = Wire()
    return (Serial8250(output: { wire.sent.append($0) }), wire)
  }

  @Test func transmitGoesToOutputAndTransmitterIsAlwaysEmpty() {
    let (uart, wire) = makeUART()
    _ = uart.write(offset: 0, size: 1, value: 0x41)
    _ = uart.write(offset: 0, size: 1, value: 0x0a)
    #expect(wire.sent == [0x41, 0x0a])
    let lsr = uart.read(offset: 5, size: 1)
    #expect(lsr & 0x60 == 0x60)  // THRE and TEMT
    #expect(lsr & 0x01 == 0)  // no data ready
  }

  @Test func divisorLatchIsReachedOnlyWithDLAB() {
    let (uart, wire) = makeUART()
    _ = uart.write(offset: 3, size: 1, value: 0x80)
    _ = uart.write(offset: 0, size: 1, value: 0x01)
    _ = uart.write(offset: 1, size: 1, value: 0x02)
    #expect(uart.read(offset: 0, size: 1) == 0x01)
    #expect(uart.read(offset: 1, size: 1) == 0x02)
    _ = uart.write(offset: 3, size: 1, value: 0x03)
    #expect(uart.read(offset: 1, size: 1) == 0x00)  // IER again, untouched
    #expect(uart.read(offset: 3, size: 1) == 0x03)
    #expect(wire.sent.isEmpty)  // divisor writes are not data
  }

  @Test func scratchRegisterHoldsAByte() {
    let (uart, _) = makeUART()
    _ = uart.write(offset: 7, size: 1, value: 0x5a)
    #expect(uart.read(offset: 7, size: 1) == 0x5a)
  }

  @Test func receivedBytesSetDataReadyAndReadInOrder() {
    let (uart, _) = makeUART()
    uart.receive([0x68, 0x69])
    #expect(uart.read(offset: 5, size: 1) & 0x01 == 0x01)
    #expect(uart.read(offset: 0, size: 1) == 0x68)
    #expect(uart.read(offset: 0, size: 1) == 0x69)
    #expect(uart.read(offset: 5, size: 1) & 0x01 == 0)
  }

  @Test func loopbackRoutesTransmitToReceiveAndModemLines() {
    let (uart, wire) = makeUART()
    // Linux's 8250 probe: MCR = LOOP | OUT2 | RTS must read back MSR = DCD | CTS = 0x90.
    _ = uart.write(offset: 4, size: 1, value: 0x1a)
    #expect(uart.read(offset: 6, size: 1) & 0xf0 == 0x90)
    _ = uart.write(offset: 0, size: 1, value: 0x55)
    #expect(wire.sent.isEmpty)
    #expect(uart.read(offset: 0, size: 1) == 0x55)
  }

  @Test func interruptIdentificationFollowsPriority() {
    let (uart, _) = makeUART()
    #expect(uart.read(offset: 2, size: 1) == 0x01)  // nothing pending
    _ = uart.write(offset: 1, size: 1, value: 0x02)  // enable THRE interrupt: THR is empty
    #expect(uart.interruptPending)
    #expect(uart.read(offset: 2, size: 1) == 0x02)
    #expect(uart.read(offset: 2, size: 1) == 0x01)  // reading IIR acknowledged THRE
    _ = uart.write(offset: 1, size: 1, value: 0x03)
    uart.receive([0x31])
    #expect(uart.read(offset: 2, size: 1) == 0x04)  // received data outranks THRE
    _ = uart.read(offset: 0, size: 1)
    #expect(uart.interruptPending == false)
  }

  @Test func fifoControlReportsEnabledFIFOsAndClearsReceive() {
    let (uart, _) = makeUART()
    uart.receive([1, 2, 3])
    _ = uart.write(offset: 2, size: 1, value: 0x03)  // enable + clear receive FIFO
    #expect(uart.read(offset: 2, size: 1) & 0xc0 == 0xc0)
    #expect(uart.read(offset: 5, size: 1) & 0x01 == 0)
  }

  @Test func irqLineFollowsPendingInterruptsGatedByOUT2() {
    // On a PC the 16550's INTRPT reaches the interrupt controller through MCR OUT2 (bit 3).
    let (uart, _) = makeUART()
    final class Levels: @unchecked Sendable { var values: [Bool] = [] }
    let levels = Levels()
    uart.interruptChanged = { levels.values.append($0) }
    _ = uart.write(offset: 4, size: 1, value: 0x00)  // OUT2 off
    _ = uart.write(offset: 1, size: 1, value: 0x01)  // received-data interrupt
    uart.receive([0x42])
    uart.updateInterruptLine()
    #expect(uart.interruptPending && !uart.interruptOutput)
    #expect(levels.values.isEmpty)
    _ = uart.write(offset: 4, size: 1, value: 0x08)
    #expect(levels.values == [true])
    #expect(uart.read(offset: 0, size: 1) == 0x42)  // reading the byte drops the line
    #expect(levels.values == [true, false])
    _ = uart.write(offset: 1, size: 1, value: 0x03)  // THRE now: the holding register is empty
    #expect(levels.values == [true, false, true])
    _ = uart.write(offset: 0, size: 1, value: 0x21)  // sent at once: THRE again, line stays up
    #expect(uart.read(offset: 2, size: 1) == 0x02)
    #expect(levels.values == [true, false, true, false])
  }
}
