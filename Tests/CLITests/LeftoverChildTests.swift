import Foundation
import Testing

/// Only for scripts/check-end-test-processes.sh, which sets HYPERSTEP_TEST_LEAVE_CHILD: leaves
/// a `hyperstep debug` server running after the test process ends, as a test that crashed or
/// was killed would, so that the check can see scripts/test.sh end it. Skipped otherwise.
@Suite struct LeftoverChildTests {
  static let pidPath = ProcessInfo.processInfo.environment["HYPERSTEP_TEST_LEAVE_CHILD"]

  @Test(
    .enabled(if: pidPath != nil, "only scripts/check-end-test-processes.sh runs this"), requiresKVM)
  func leaveAServerRunning() throws {
    let socket = DebugServerProcess.freshSocketPath()
    let server = try ChildProcess(CLI.executable.path, ["debug", "--gdb", "unix:\(socket)"], stdout: .discard)
    let listening = server.poll(seconds: 30) { server.errorsText.contains("waiting for a debugger on") }
    #expect(listening, "the server did not start: \(server.errorsText)")
    // Never released, so its deinit never kills the child: it outlives this process.
    _ = Unmanaged.passRetained(server)
    // The pid, then the socket for the check to remove once the server is gone.
    try Data("\(server.pid)\n\(socket)\n".utf8).write(to: URL(fileURLWithPath: try #require(Self.pidPath)))
  }
}
