import Foundation
import Testing

/// The interpreter against the host CPU (issue 10): x86-difftest runs generated instructions
/// natively and under the interpreter from the same state and compares them. A bounded run
/// here; longer ones by hand (`swift run -c release x86-difftest --seed N --count N`).
@Suite struct DifferentialTests {
  static let tool = CLI.executable.deletingLastPathComponent().appendingPathComponent("x86-difftest").path

  @Test(arguments: [1, 7] as [UInt64]) func theInterpreterAgreesWithTheHostCPU(seed: UInt64) throws {
    let count = 3000
    let run = try CLI.runProgram(Self.tool, ["--seed", "\(seed)", "--count", "\(count)"], timeout: 300)
    // The count compared stays in the test output, as the issue asks.
    print("x86-difftest seed \(seed):\n\(run.stdout)")
    #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
    #expect(run.stdout.contains("interpreter comparison: \(count) instances compared, 0 unexplained differences"))
    #expect(!run.stdout.contains("DIFFERENCE"))
  }
}
