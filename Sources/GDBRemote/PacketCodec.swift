/// GDB Remote Serial Protocol framing: `$payload#cs`, acks (`+`/`-`), the interrupt byte
/// (0x03), and `}` escaping. Pure byte handling: sockets live elsewhere.
public enum PacketEvent: Equatable, Sendable {
  /// A well-formed packet's payload, unescaped (run-length encoding is not expanded: clients
  /// do not send it).
  case packet([UInt8])
  /// A packet whose checksum did not match: answer with `-` and wait for the retransmit.
  case badChecksum
  /// A packet longer than the decoder accepts: dropped whole.
  case overlong
  /// Ctrl-C from the client.
  case interrupt
  case ack
  case nack
}

/// Turns a byte stream into packet events. Bytes between packets other than acks and 0x03
/// are ignored, as gdb's own stub does.
public struct PacketDecoder: Sendable {
  private enum State: Sendable {
    case idle
    case payload
    case escape
    case checksumHigh
    case checksumLow(UInt8)
  }

  private var state = State.idle
  private var payload: [UInt8] = []
  private var sum: UInt8 = 0
  private var tooLong = false
  /// Payloads beyond this many bytes are refused (PacketSize in qSupported).
  public let maximumPayload: Int

  public init(maximumPayload: Int = 16384) {
    self.maximumPayload = maximumPayload
    payload.reserveCapacity(256)
  }

  /// Feeds bytes; returns every event they complete.
  public mutating func feed<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> [PacketEvent] {
    var events: [PacketEvent] = []
    for byte in bytes {
      if let event = feed(byte) { events.append(event) }
    }
    return events
  }

  public mutating func feed(_ byte: UInt8) -> PacketEvent? {
    switch state {
    case .idle:
      switch byte {
      case UInt8(ascii: "$"):
        state = .payload
        payload.removeAll(keepingCapacity: true)
        sum = 0
        tooLong = false
      case UInt8(ascii: "+"): return .ack
      case UInt8(ascii: "-"): return .nack
      case 0x03: return .interrupt
      default: break
      }
    case .payload:
      if byte == UInt8(ascii: "#") {
        state = .checksumHigh
      } else {
        sum &+= byte
        if byte == UInt8(ascii: "}") {
          state = .escape
        } else {
          append(byte)
        }
      }
    case .escape:
      sum &+= byte
      append(byte ^ 0x20)
      state = .payload
    case .checksumHigh:
      guard let high = hexValue(byte) else {
        state = .idle
        return .badChecksum
      }
      state = .checksumLow(high)
    case .checksumLow(let high):
      state = .idle
      guard let low = hexValue(byte), high << 4 | low == sum else { return .badChecksum }
      return tooLong ? .overlong : .packet(payload)
    }
    return nil
  }

  private mutating func append(_ byte: UInt8) {
    if payload.count < maximumPayload { payload.append(byte) } else { tooLong = true }
  }
}

/// Frames a payload as `$...#cs`, escaping the four bytes that must be.
public func framePacket(_ payload: [UInt8]) -> [UInt8] {
  var out: [UInt8] = [UInt8(ascii: "$")]
  out.reserveCapacity(payload.count + 4)
  var sum: UInt8 = 0
  for byte in payload {
    if byte == UInt8(ascii: "$") || byte == UInt8(ascii: "#") || byte == UInt8(ascii: "}") || byte == UInt8(ascii: "*")
    {
      out.append(UInt8(ascii: "}"))
      out.append(byte ^ 0x20)
      sum &+= UInt8(ascii: "}") &+ (byte ^ 0x20)
    } else {
      out.append(byte)
      sum &+= byte
    }
  }
  out.append(UInt8(ascii: "#"))
  out.append(hexDigit(sum >> 4))
  out.append(hexDigit(sum & 0xf))
  return out
}

@inline(__always)
func hexDigit(_ value: UInt8) -> UInt8 { value < 10 ? 0x30 + value : 0x57 + value }

@inline(__always)
func hexValue(_ byte: UInt8) -> UInt8? {
  switch byte {
  case 0x30...0x39: byte - 0x30
  case 0x61...0x66: byte - 0x57
  case 0x41...0x46: byte - 0x37
  default: nil
  }
}
