import Glibc
import KVM

/// The host's standard input as the guest's serial console input, the way QEMU's
/// `-nographic` serial works:
/// - from a terminal, the terminal is put in raw mode (put back on exit), every key goes to
///   the guest (Ctrl-C included), and Ctrl-A starts a command for Hyperstep: Ctrl-A X quits
///   (exit status 0, as QEMU's), Ctrl-A H lists the commands, Ctrl-A Ctrl-A sends one Ctrl-A;
/// - from a pipe or a file, the bytes go to the guest as they come (scripted input), with no
///   escape; at the end of the input the console closes.
/// `deliver` queues bytes at the UART (from this thread); `opened`/`closed` tell the machine.
/// The guest's output is flushed by the run loop whenever the guest idles, so a quit loses
/// nothing the guest printed before it waited for input.
enum ConsoleReader {
  static let escape: UInt8 = 0x01  // Ctrl-A

  static let help = """
    \r
    Hyperstep console: Ctrl-A X  quit (exit status 0)\r
                       Ctrl-A H  this help\r
                       Ctrl-A Ctrl-A  send Ctrl-A to the guest\r

    """

  /// Starts the reader thread when standard input is a terminal, a pipe or a file.
  static func start(
    deliver: @escaping @Sendable ([UInt8]) -> Void, opened: @escaping @Sendable (_ paced: Bool) -> Void,
    closed: @escaping @Sendable () -> Void
  ) {
    var status = stat()
    guard fstat(0, &status) == 0 else { return }
    let terminal = HostIO.isTerminal(0)
    let kind = status.st_mode & S_IFMT
    // /dev/null (a character device that is no terminal) and the like give nothing to read.
    guard terminal || kind == S_IFIFO || kind == S_IFREG || kind == S_IFSOCK else { return }
    if terminal && !TerminalMode.makeRaw(0) { return }
    opened(terminal)
    _ = HostThread(name: "console-in") {
      var afterEscape = false
      while let bytes = HostIO.readSome(0) {
        guard terminal else {
          deliver(bytes)
          continue
        }
        var forward: [UInt8] = []
        for byte in bytes {
          if afterEscape {
            afterEscape = false
            switch byte {
            case UInt8(ascii: "x"), UInt8(ascii: "X"):
              TerminalMode.restore(0)
              HostIO.write(2, Array("\nhyperstep: terminated (Ctrl-A X)\n".utf8)[...])
              Glibc.exit(0)
            case UInt8(ascii: "h"), UInt8(ascii: "H"), UInt8(ascii: "?"):
              HostIO.write(2, Array(help.utf8)[...])
            case escape:
              forward.append(escape)
            default:
              break  // an unknown command is dropped, as QEMU's muxer does
            }
          } else if byte == escape {
            afterEscape = true
          } else {
            forward.append(byte)
          }
        }
        if !forward.isEmpty { deliver(forward) }
      }
      closed()
    }
  }
}
