/// A minimal Intel 8042 keyboard controller at ports 0x60 (data) and 0x64 (status/command),
/// enough for a kernel's probes to finish and for its reset path to work; no keys are ever
/// typed and no mouse is attached. Commands and replies follow the IBM PC/AT keyboard
/// controller's documented interface (the same one Linux's i8042.c and atkbd.c speak).
///
/// - Controller commands at 0x64: 0x20/0x60 read/write the command byte, 0xa7/0xa8 and
///   0xad/0xae disable/enable the ports, 0xaa self-test (0x55), 0xab and 0xa9 interface tests
///   (0x00), 0xd0/0xd1 read/write the output port, 0xd2/0xd3 echo a byte as keyboard/mouse
///   data, 0xd4 (to the absent mouse: dropped), 0xf0-0xff pulse output lines: those that
///   pulse bit 0 (0xfe, the usual) reset the machine and return `DeviceAction.reset`.
/// - Keyboard commands at 0x60: acknowledged with 0xfa; reset (0xff) also reports its
///   self-test passed (0xaa), identify (0xf2) reports an MF2 keyboard (0xab 0x83), echo
///   (0xee) answers 0xee.
/// Each byte made available raises IRQ 1 (or 12 for mouse data) through `interrupt` when
/// the command byte enables it.
public final class I8042: PlatformPortDevice {
  public static let dataPort: UInt16 = 0x60
  public static let commandPort: UInt16 = 0x64
  public static let portRanges: [ClosedRange<UInt16>] = [0x60...0x60, 0x64...0x64]
  public static let keyboardInterrupt = 1
  public static let mouseInterrupt = 12

  enum Status {
    static let outputFull: UInt8 = 0x01
    static let systemFlag: UInt8 = 0x04
    static let lastWasCommand: UInt8 = 0x08
    static let notInhibited: UInt8 = 0x10
    static let mouseData: UInt8 = 0x20
  }

  /// Told the IRQ (1 or 12) to pulse when a byte becomes readable.
  public var interrupt: ((Int) -> Void)?

  /// Bit 0 keyboard interrupt, bit 1 mouse interrupt, bit 2 system flag, bit 4/5 port
  /// disables, bit 6 scan-code translation: what a BIOS leaves.
  public private(set) var commandByte: UInt8 = 0x47
  /// Bit 0 is the reset line (high: running), bit 1 the A20 gate.
  public private(set) var outputPort: UInt8 = 0x03
  private var output: [(byte: UInt8, mouse: Bool)] = []
  private var lastRead: UInt8 = 0
  private var lastWasCommand = false
  /// A controller command waiting for its data byte at 0x60.
  private var pendingCommand: UInt8?
  /// A keyboard command waiting for its parameter byte.
  private var keyboardAwaitsParameter = false

  public init() {}

  public func read(port: UInt16, size: Int) -> UInt32 {
    switch port {
    case Self.dataPort:
      guard !output.isEmpty else { return UInt32(lastRead) }  // an empty buffer repeats the last byte
      lastRead = output.removeFirst().byte
      if let next = output.first { signal(mouse: next.mouse) }
      return UInt32(lastRead)
    case Self.commandPort:
      var status = Status.notInhibited | (commandByte & Status.systemFlag)
      if lastWasCommand { status |= Status.lastWasCommand }
      if let next = output.first {
        status |= Status.outputFull
        if next.mouse { status |= Status.mouseData }
      }
      return UInt32(status)
    default:
      return 0xff
    }
  }

  public func write(port: UInt16, size: Int, value: UInt32) -> DeviceAction {
    let byte = UInt8(truncatingIfNeeded: value)
    switch port {
    case Self.commandPort:
      lastWasCommand = true
      return command(byte)
    case Self.dataPort:
      lastWasCommand = false
      return data(byte)
    default:
      return .none
    }
  }

  private func command(_ byte: UInt8) -> DeviceAction {
    pendingCommand = nil
    switch byte {
    case 0x20: enqueue(commandByte)
    case 0x60, 0xd1, 0xd2, 0xd3, 0xd4: pendingCommand = byte
    case 0xa7: commandByte |= 0x20
    case 0xa8: commandByte &= ~0x20
    case 0xa9, 0xab: enqueue(0x00)  // interface test: no clock or data line stuck
    case 0xaa: enqueue(0x55)  // self-test passed
    case 0xad: commandByte |= 0x10
    case 0xae: commandByte &= ~0x10
    case 0xc0: enqueue(0x00)  // input port
    case 0xd0: enqueue(outputPort)
    case 0xf0...0xff:
      // Pulse the output lines whose bits are clear in the low nibble; bit 0 is reset.
      if byte & 0x01 == 0 { return .reset }
    default: break
    }
    return .none
  }

  private func data(_ byte: UInt8) -> DeviceAction {
    if let command = pendingCommand {
      pendingCommand = nil
      switch command {
      case 0x60: commandByte = byte
      case 0xd1:
        outputPort = byte
        if byte & 0x01 == 0 { return .reset }  // the reset line driven low
      case 0xd2: enqueue(byte)
      case 0xd3: enqueue(byte, mouse: true)
      default: break  // 0xd4: no mouse to send it to
      }
      return .none
    }
    keyboard(byte)
    return .none
  }

  /// A byte for the keyboard itself.
  private func keyboard(_ byte: UInt8) {
    if keyboardAwaitsParameter {
      keyboardAwaitsParameter = false
      enqueue(0xfa)
      return
    }
    switch byte {
    case 0xff: enqueue(0xfa, 0xaa)  // reset: acknowledged, basic assurance test passed
    case 0xf2: enqueue(0xfa, 0xab, 0x83)  // identify: MF2 keyboard
    case 0xee: enqueue(0xee)  // echo
    case 0xed, 0xf0, 0xf3:  // LEDs, scan-code set, typematic rate: a parameter follows
      keyboardAwaitsParameter = true
      enqueue(0xfa)
    default: enqueue(0xfa)
    }
  }

  private func enqueue(_ bytes: UInt8..., mouse: Bool = false) {
    let wasEmpty = output.isEmpty
    for byte in bytes { output.append((byte, mouse)) }
    if wasEmpty { signal(mouse: mouse) }
  }

  private func signal(mouse: Bool) {
    if mouse {
      if commandByte & 0x02 != 0 { interrupt?(Self.mouseInterrupt) }
    } else if commandByte & 0x01 != 0 {
      interrupt?(Self.keyboardInterrupt)
    }
  }
}
