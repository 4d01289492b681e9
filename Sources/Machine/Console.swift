import KVM
import Synchronization

/// Where the guest's serial output goes.
public protocol ConsoleSink: AnyObject, Sendable {
  func write(_ byte: UInt8)
  /// Pushes buffered output out; called when the run ends and whenever the guest
  /// does something other than printing, so prompts without a newline appear.
  func flush()
}

/// Standard output, line-buffered: one write(2) per line instead of one per byte.
public final class StandardOutputConsole: ConsoleSink, @unchecked Sendable {
  private var buffer: [UInt8] = []
  private let fd: Int32

  public init(fd: Int32 = 1) {
    self.fd = fd
    buffer.reserveCapacity(4096)
  }

  public func write(_ byte: UInt8) {
    buffer.append(byte)
    if byte == 0x0a || buffer.count >= 4096 { flush() }
  }

  public func flush() {
    guard !buffer.isEmpty else { return }
    HostIO.write(fd, buffer[...])
    buffer.removeAll(keepingCapacity: true)
  }
}

/// Keeps everything the guest printed, for tests and benchmarks.
public final class CapturedConsole: ConsoleSink {
  private let bytes = Mutex<[UInt8]>([])

  public init() {}

  public func write(_ byte: UInt8) { bytes.withLock { $0.append(byte) } }
  public func flush() {}

  public var text: String { bytes.withLock { String(decoding: $0, as: UTF8.self) } }
}
