import Foundation
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// A program the tests start, read and wait for with posix_spawn, poll and waitpid on the
/// calling thread alone.
///
/// Foundation's `Process` is not used: on Linux it learns of a child's exit through a run loop
/// and a dispatch source, and with many tests starting processes at once on a two-core machine
/// `waitUntilExit()` was seen to wait for ever (a CI run timed out after 90 minutes with every
/// test reported so far passing). Here a wait always ends: at the deadline the child is killed
/// with SIGKILL and reaped, and the caller records the overrun.
final class ChildProcess {
  enum Output {
    /// Kept in `output` / `errors`.
    case capture
    /// Sent to /dev/null.
    case discard
    /// Standard error goes where standard output goes (for gdb, whose messages interleave).
    case intoStandardOutput
  }

  private static let spawnLock = NSLock()

  let pid: pid_t
  let commandLine: String
  /// What the child wrote to standard output (and standard error, when merged) so far.
  private(set) var output: [UInt8] = []
  private(set) var errors: [UInt8] = []
  /// The exit status, or 128 + the signal number when a signal ended it; nil while it runs.
  private(set) var status: Int32?
  /// Whether the last `wait` had to kill the child at its deadline.
  private(set) var wasKilled = false

  private var outputFD: Int32 = -1
  private var errorsFD: Int32 = -1
  /// The write end of the child's standard input, with `interactive` (see `send`).
  private var inputFD: Int32 = -1

  /// Starts `path` with `arguments`; `input` (if any) is its whole standard input, else /dev/null;
  /// with `interactive`, standard input is a pipe the test writes to with `send` as it goes
  /// (for a guest shell, which must see its input after its prompt, as a user types it).
  init(
    _ path: String, _ arguments: [String], input: String? = nil, interactive: Bool = false,
    stdout: Output = .capture, stderr: Output = .capture
  ) throws {
    commandLine = ([path] + arguments).joined(separator: " ")
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }

    // Standard input: a file holding `input`, so no write can block on a full pipe.
    var inputPath = "/dev/null"
    if let input {
      inputPath = try CLI.temporaryFile(Array(input.utf8), name: "stdin-\(UUID().uuidString.prefix(8))")
    }
    if !interactive { posix_spawn_file_actions_addopen(&actions, 0, inputPath, O_RDONLY, 0) }

    // Every pipe end is close-on-exec, and pipes are made and children spawned under one lock,
    // so a child another test starts at the same moment never inherits a write end (which
    // would keep this reader from seeing end of file until that child ended).
    Self.spawnLock.lock()
    defer { Self.spawnLock.unlock() }
    // Descriptors the test process holds without close-on-exec (sockets a test opened, say)
    // would otherwise live on in the child, and a long-lived child would keep a peer from
    // ever seeing the hang-up it waits for. Mark them all; the test process never execs.
    Self.markEverythingCloseOnExec()
    var childEnds: [Int32] = []
    func pipeFor(_ target: Int32) throws -> Int32 {
      var ends: [Int32] = [0, 0]
      guard pipe(&ends) == 0 else { throw POSIXError(.EMFILE) }
      for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
      posix_spawn_file_actions_adddup2(&actions, ends[1], target)
      childEnds.append(ends[1])
      return ends[0]
    }
    if interactive {
      var ends: [Int32] = [0, 0]
      guard pipe(&ends) == 0 else { throw POSIXError(.EMFILE) }
      for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
      posix_spawn_file_actions_adddup2(&actions, ends[0], 0)
      childEnds.append(ends[0])
      inputFD = ends[1]
    }
    switch stdout {
    case .capture, .intoStandardOutput: outputFD = try pipeFor(1)
    case .discard: posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    }
    switch stderr {
    case .capture: errorsFD = try pipeFor(2)
    case .discard: posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    case .intoStandardOutput: posix_spawn_file_actions_adddup2(&actions, 1, 2)
    }

    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    defer { for pointer in argv { free(pointer) } }
    // The child starts with no signals blocked and default handling for the usual ones: a
    // test thread's mask (worker threads block most signals) would otherwise be inherited,
    // and the child would ignore SIGTERM and SIGINT.
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var none = sigset_t()
    sigemptyset(&none)
    posix_spawnattr_setsigmask(&attributes, &none)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    for signal in [SIGTERM, SIGINT, SIGPIPE, SIGHUP, SIGQUIT] { sigaddset(&defaults, signal) }
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    var child: pid_t = 0
    let result = posix_spawn(&child, path, &actions, &attributes, argv, environ)
    for end in childEnds { close(end) }
    guard result == 0 else {
      if outputFD >= 0 { close(outputFD) }
      if errorsFD >= 0 { close(errorsFD) }
      if inputFD >= 0 { close(inputFD) }
      throw POSIXError(POSIXErrorCode(rawValue: result) ?? .ENOENT)
    }
    pid = child
    Self.record(child)
  }

  /// The file scripts/test.sh collects the tests' children in (HYPERSTEP_TEST_PIDS), so that
  /// at the end it can end those a failed test left running, and nothing else on the machine.
  private static let pidsFile = ProcessInfo.processInfo.environment["HYPERSTEP_TEST_PIDS"].flatMap {
    $0.isEmpty ? nil : $0
  }

  /// Appends "PID STARTTIME" to the pids file. The start time tells this child from a later
  /// process that is given the same pid after it ended (scripts/end-test-processes.sh checks it).
  private static func record(_ pid: pid_t) {
    guard let pidsFile else { return }
    guard let start = startTime(of: pid) else {
      // Not reaped yet, so its /proc entry is there; if not, it cannot be checked later either.
      FileHandle.standardError.write(Data("ChildProcess: no start time for pid \(pid); not recorded\n".utf8))
      return
    }
    // One write(2) of a short line with O_APPEND: lines from tests spawning at once, in this
    // process or another, never interleave.
    let fd = open(pidsFile, O_WRONLY | O_APPEND | O_CLOEXEC)
    guard fd >= 0 else {
      FileHandle.standardError.write(Data("ChildProcess: cannot open \(pidsFile) to record pid \(pid)\n".utf8))
      return
    }
    defer { close(fd) }
    let line = Array("\(pid) \(start)\n".utf8)
    _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
  }

  /// Field 22 of /proc/PID/stat: when the process started, in clock ticks after boot.
  static func startTime(of pid: pid_t) -> String? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
      let nameEnd = stat.lastIndex(of: ")")
    else { return nil }
    // Field 2, the command name in parentheses, may hold spaces: count from the last ')'.
    // The fields after it start with field 3, so field 22 is the 20th.
    let fields = stat[stat.index(after: nameEnd)...].split(separator: " ")
    return fields.count > 19 ? String(fields[19]) : nil
  }

  private static func markEverythingCloseOnExec() {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return }
    for name in names {
      guard let fd = Int32(name), fd > 2 else { continue }
      let flags = fcntl(fd, F_GETFD)
      if flags >= 0 && flags & FD_CLOEXEC == 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
    }
  }

  deinit {
    if status == nil {
      kill(pid, SIGKILL)
      reap(blocking: true)
    }
    closePipes()
  }

  /// Reads what the child writes until it exits and its pipes reach end of file, or until
  /// `timeout` seconds have passed, when it is killed. Returns false if it had to be killed.
  @discardableResult
  func wait(timeout: Double) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    var exitedAt: Date?
    while true {
      drain(milliseconds: 20)
      if status == nil { reap(blocking: false) }
      if status != nil {
        if outputFD < 0 && errorsFD < 0 { return !wasKilled }
        // A grandchild may still hold a pipe open; what the child wrote has been read by now.
        if let exitedAt, Date().timeIntervalSince(exitedAt) > 2 {
          closePipes()
          return !wasKilled
        }
        if exitedAt == nil { exitedAt = Date() }
      } else if Date() > deadline {
        kill(pid, SIGKILL)
        wasKilled = true
        reap(blocking: true)
      }
    }
  }

  /// Polls until `done()` is true or the time is up, reading the child's output meanwhile so
  /// that it can never block on a full pipe. Returns `done()`.
  func poll(seconds: Double, until done: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while !done() && Date() < deadline {
      drain(milliseconds: 10)
      if status == nil { reap(blocking: false) }
      if status != nil { break }
    }
    return done()
  }

  /// Writes `text` to the child's standard input (an `interactive` child's); false when it
  /// cannot (the child closed its end, or it was not started interactive).
  @discardableResult
  func send(_ text: String) -> Bool {
    guard inputFD >= 0 else { return false }
    _ = Self.ignoreBrokenPipes
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
      let count = bytes.withUnsafeBytes { write(inputFD, $0.baseAddress, $0.count) }
      if count < 0 && errno == EINTR { continue }
      guard count > 0 else { return false }
      bytes = bytes.dropFirst(count)
    }
    return true
  }

  /// A write to a child that has gone must fail with EPIPE, not kill the test process.
  private static let ignoreBrokenPipes: Void = { signal(SIGPIPE, SIG_IGN) }()

  /// Ends the child's standard input (an `interactive` child's).
  func closeInput() {
    if inputFD >= 0 { close(inputFD) }
    inputFD = -1
  }

  var outputText: String { String(decoding: output, as: UTF8.self) }
  var errorsText: String { String(decoding: errors, as: UTF8.self) }

  private func drain(milliseconds: Int32) {
    var entries: [pollfd] = []
    if outputFD >= 0 { entries.append(pollfd(fd: outputFD, events: Int16(POLLIN), revents: 0)) }
    if errorsFD >= 0 { entries.append(pollfd(fd: errorsFD, events: Int16(POLLIN), revents: 0)) }
    guard !entries.isEmpty else {
      usleep(UInt32(milliseconds) * 1000)
      return
    }
    guard Glibc.poll(&entries, nfds_t(entries.count), milliseconds) > 0 else { return }
    var buffer = [UInt8](repeating: 0, count: 65536)
    for entry in entries where entry.revents != 0 {
      let count = buffer.withUnsafeMutableBytes { read(entry.fd, $0.baseAddress, $0.count) }
      if count > 0 {
        if entry.fd == outputFD { output += buffer[..<count] } else { errors += buffer[..<count] }
      } else if count == 0 || (errno != EINTR && errno != EAGAIN) {
        // Never close a descriptor that is no longer ours (EBADF): its number may be another
        // test's by now.
        if count == 0 || errno != EBADF { close(entry.fd) }
        if entry.fd == outputFD { outputFD = -1 } else { errorsFD = -1 }
      }
    }
  }

  private func closePipes() {
    if inputFD >= 0 { close(inputFD) }
    inputFD = -1
    if outputFD >= 0 { close(outputFD) }
    if errorsFD >= 0 { close(errorsFD) }
    outputFD = -1
    errorsFD = -1
  }

  private func reap(blocking: Bool) {
    var raw: Int32 = 0
    var result: pid_t
    repeat { result = waitpid(pid, &raw, blocking ? 0 : WNOHANG) } while result < 0 && errno == EINTR
    guard result == pid else { return }
    // The <sys/wait.h> macros by hand: low 7 bits are the signal (0 for a normal exit),
    // bits 8-15 the exit status.
    let signal = raw & 0x7f
    status = signal == 0 ? (raw >> 8) & 0xff : 128 + signal
  }
}
