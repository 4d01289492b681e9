import Foundation
import KVM
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

  /// Runs any program the same way (for wrappers such as `script`).
  static func runProgram(_ path: String, _ arguments: [String], input: String? = nil, timeout: TimeInterval = 60)
    throws -> CLIRun
  {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    let stdin = Pipe()
    process.standardInput = input == nil ? FileHandle.nullDevice : stdin
    try process.run()
    if let input {
      stdin.fileHandleForWriting.write(Data(input.utf8))
      try stdin.fileHandleForWriting.close()
    }
    // Drain both pipes while the process runs so a chatty guest can never block on a full pipe.
    nonisolated(unsafe) var outData = Data()
    nonisolated(unsafe) var errData = Data()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async {
      outData = out.fileHandleForReading.readDataToEndOfFile()
      group.leave()
    }
    group.enter()
    DispatchQueue.global().async {
      errData = err.fileHandleForReading.readDataToEndOfFile()
      group.leave()
    }
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { usleep(10_000) }
    if process.isRunning {
      process.terminate()
      Issue.record("hyperstep \(arguments.joined(separator: " ")) did not finish within \(timeout) s")
    }
    process.waitUntilExit()
    group.wait()
    return CLIRun(
      status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
      stderr: String(decoding: errData, as: UTF8.self))
  }

  /// Writes bytes to a fresh temporary file and returns its path.
  static func temporaryFile(_ bytes: [UInt8], name: String) throws -> String {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hyperstep-tests-\(getpid())")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let url = directory.appendingPathComponent(name)
    try Data(bytes).write(to: url)
    return url.path
  }
}

let requiresKVM = ConditionTrait.enabled(
  if: CLI.hasKVM, "SKIPPED: /dev/kvm is not available here, so this KVM test DID NOT RUN")
