import Glibc
import Synchronization

/// The controlling terminal in the mode a serial console wants: every key goes to the guest
/// as typed (no line editing, no echo, no signals from Ctrl-C or Ctrl-Z), while output keeps
/// its newline translation so Hyperstep's own messages stay readable. The settings found at
/// the start are put back when the process exits, however it exits through `exit`, and by
/// `restore()` before anything else prints on the way out.
public enum TerminalMode {
  /// The settings to put back, once raw mode is on.
  private static let saved = Mutex<termios?>(nil)

  /// Puts `fd` (a terminal) in raw input mode; false when it is not a terminal or refuses.
  @discardableResult
  public static func makeRaw(_ fd: Int32 = 0) -> Bool {
    var settings = termios()
    // SAFETY: tcgetattr writes only the local termios.
    guard unsafe tcgetattr(fd, &settings) == 0 else { return false }
    let original = settings
    settings.c_iflag &= ~tcflag_t(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON)
    settings.c_lflag &= ~tcflag_t(ECHO | ECHONL | ICANON | ISIG | IEXTEN)
    settings.c_cflag &= ~tcflag_t(CSIZE | PARENB)
    settings.c_cflag |= tcflag_t(CS8)
    // One byte at a time, as soon as it is typed: VMIN (index 6 on Linux) 1, VTIME (5) 0.
    settings.c_cc.6 = 1
    settings.c_cc.5 = 0
    // SAFETY: tcsetattr reads only the local termios.
    guard unsafe tcsetattr(fd, TCSANOW, &settings) == 0 else { return false }
    let first = saved.withLock { value -> Bool in
      defer { if value == nil { value = original } }
      return value == nil
    }
    if first { atexit { TerminalMode.restore() } }
    return true
  }

  /// Puts the terminal back as it was found (once raw mode was set; otherwise nothing).
  public static func restore(_ fd: Int32 = 0) {
    guard var original = saved.withLock({ $0 }) else { return }
    // SAFETY: tcsetattr reads only the local termios.
    _ = unsafe tcsetattr(fd, TCSANOW, &original)
  }
}
