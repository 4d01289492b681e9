/// Notices a Linux kernel's panic on the serial console, so that a run ends there instead of
/// spinning for ever (with the default `panic=0` the kernel loops in `panic()` with nothing a
/// VMM could see as an end). The kernel prints its reason on a line `Kernel panic - not
/// syncing: REASON` and, once done (backtrace, CPUs stopped), closes with `---[ end Kernel
/// panic - not syncing: REASON ]---` (kernel/panic.c); the run ends at the closing line, so
/// everything the kernel had to say is on the console. Lines are matched as they complete;
/// a guest that merely prints the words mid-line elsewhere is not mistaken for a panic,
/// because the closing marker must start the line (after the printk timestamp, if any).
final class KernelPanicWatch: @unchecked Sendable {
  private var line: [UInt8] = []
  /// Called once, on the thread that wrote the closing line.
  var onPanic: ((String) -> Void)?
  private var reported = false

  static let marker = Array("---[ end Kernel panic - not syncing: ".utf8)

  func note(_ byte: UInt8) {
    guard !reported else { return }
    if byte == 0x0a {
      check()
      line.removeAll(keepingCapacity: true)
    } else if byte != 0x0d && line.count < 1024 {
      line.append(byte)
    }
  }

  private func check() {
    var text = line[...]
    // A printk timestamp "[    1.234567] " comes first when the kernel prints times.
    if text.first == UInt8(ascii: "["), let close = text.firstIndex(of: UInt8(ascii: "]")) {
      text = text[(close + 1)...].drop { $0 == 0x20 }
    }
    guard text.starts(with: Self.marker) else { return }
    var reason = text.dropFirst(Self.marker.count)
    if reason.suffix(5).elementsEqual(" ]---".utf8) { reason = reason.dropLast(5) }
    reported = true
    onPanic?(String(decoding: reason, as: UTF8.self))
  }
}
