#if canImport(Glibc)
  import Glibc
#endif

/// The few host services the tester's command line needs that touch pointers, kept in this
/// bottom module so the tool itself compiles with no unsafe constructs.
public enum HostProcess {
  /// CLOCK_MONOTONIC in seconds.
  public static func monotonicSeconds() -> Double {
    var now = timespec()
    // SAFETY: clock_gettime fills the one timespec it is lent for the call.
    unsafe clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
  }

  /// Writes a line to standard error.
  public static func printError(_ line: String) {
    var bytes = Array((line + "\n").utf8)[...]
    while !bytes.isEmpty {
      // SAFETY: write(2) reads at most `count` bytes of the buffer it is lent for the call.
      let written = unsafe bytes.withUnsafeBytes { unsafe write(2, $0.baseAddress, $0.count) }
      if written < 0 && errno == EINTR { continue }
      if written <= 0 { return }  // nowhere left to report to
      bytes = bytes.dropFirst(written)
    }
  }
}
