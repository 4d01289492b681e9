import Foundation
import KVM
import TestGuests
import Testing

/// Runs the built `hyperstep` executable and collects what it printed.
struct CLIRun {
  var status: Int32
  var stdout: String
  var stderr: String
}

enum CLI {
  /// The `hyperstep` binary next to this test bundle in the build folder.
  static let executable: URL = {
    let me = URL(
      fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
        ?? CommandLine.arguments[0])
    return me.deletingLastPathComponent().appendingPathComponent("hyperstep")
  }()

  static let hasKVM = Hypervisor.isAvailable

  static func run(_ arguments: [String], input: String? = nil, timeout: TimeInterval = 60) throws -> CLIRun {
    try runProgram(executable.path, arguments, input: input, timeout: timeout)
  }

  /// Runs any program the same way (for wrappers such as `script`). A program still running
  /// after `timeout` seconds is killed, and the overrun recorded as a test issue.
  static func runProgram(_ path: String, _ arguments: [String], input: String? = nil, timeout: TimeInterval = 60)
    throws -> CLIRun
  {
    let child = try ChildProcess(path, arguments, input: input)
    if !child.wait(timeout: timeout) {
      Issue.record("\(child.commandLine) did not finish within \(timeout) s; it was killed")
    }
    return CLIRun(status: child.status ?? -1, stdout: child.outputText, stderr: child.errorsText)
  }

  /// Writes bytes to a fresh temporary file and returns its path.
  static func temporaryFile(_ bytes: [UInt8], name: String) throws -> String {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hyperstep-tests-\(getpid())")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    // A name of its own per call: tests running at once write the same guest, and one must
    // never read a file another is rewriting.
    let url = directory.appendingPathComponent("\(UUID().uuidString.prefix(8))-\(name)")
    try Data(bytes).write(to: url, options: .atomic)
    return url.path
  }
}

let requiresKVM = ConditionTrait.enabled(
  if: CLI.hasKVM, "SKIPPED: /dev/kvm is not available here, so this KVM test DID NOT RUN")

/// The engines each guest test runs on (see `TestEngine`).
enum Engines {
  static let all = TestEngine.available
}

/// Says loudly, where /dev/kvm is missing, that the KVM cases of the parameterized tests did not run.
@Suite struct KVMEngineAvailability {
  @Test(requiresKVM) func kvmCasesRun() {
    #expect(TestEngine.available.contains(.kvm))
  }
}
