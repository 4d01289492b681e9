import AArch64
import AArch64Guests
import Machine
import Testing

/// Guests that check their own results, each expected value worked out from the ARM ARM's
/// pseudocode in the guest's source: the interpreter must pass every check.
@Suite struct GuestCheckTests {
  @Test func integerLoadStoreExclusiveAndExceptionChecksAllPass() throws {
    let guest = AArch64Guests.a64Checks
    let (board, cpu) = try TestBoard.run(guest)
    // As many checks as the source has CHECK and CHECKFLAGS lines (outside the macros'
    // own definitions, whose lines name a macro argument), none failed.
    let checks = try TestBoard.source(of: guest).split(separator: "\n")
      .filter {
        let line = $0.trimmingPrefix(while: \.isWhitespace)
        return (line.hasPrefix("CHECK ") || line.hasPrefix("CHECKFLAGS ")) && !line.contains("\\")
      }.count
    let hex = { (value: Int) in
      String(String(value, radix: 16).reversed()).padding(toLength: 16, withPad: "0", startingAt: 0)
    }
    let expected = "a64_checks: \(String(hex(checks).reversed())) checks, failed 0000000000000000\n"
    #expect(board.text == expected)
    #expect(board.exitCode == 0)
    #expect(checks > 90)
    // The one UNDEFINED instruction the guest runs on purpose, `udf #0`, is the one reported.
    let udf = try ELFFile(guest.elf, for: .aarch64).symbols().first { $0.name == "udf_at" }
    #expect(cpu.takeUndefinedInstruction() == udf?.address)
  }
}
