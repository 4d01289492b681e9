import AArch64Guests
import Foundation
import Machine
import Testing

/// `hyperstep trace` on AArch64 guests, expected lines from the guests' sources (every A64
/// instruction is 4 bytes, so each label's offsets follow from the listing).
@Suite struct AArch64TraceTests {
  /// One iteration of a64_exclusive's loop whose STXR succeeds: LDXR, ADD, STXR, CBZ taken to
  /// `1:` (store + 0x10: past ADD and B), SUBS at store + 0x10, B.NE at store + 0x14.
  @Test func anExclusiveIncrementIterationFromItsListing() throws {
    let kernel = try CLI.temporaryFile(AArch64Guests.a64Exclusive.elf, name: "a64-exclusive-trace.elf")
    let run = try CLI.run(["trace", "--kernel", kernel, "--from", "increment", "--until", "store+0x14"])
    let symbols = try ELFSymbols(AArch64Guests.a64Exclusive.elf)
    let increment = try #require(symbols["increment"])
    let store = try #require(symbols["store"])
    func line(_ address: UInt64, _ name: String) -> String { "0x\(String(address, radix: 16)) \(name)\n" }
    #expect(
      run.stdout
        == line(increment, "increment") + line(increment + 4, "increment+0x4") + line(store, "store")
        + line(store + 4, "store+0x4") + line(store + 0x10, "store+0x10") + line(store + 0x14, "store+0x14"))
    #expect(run.status == 0)
  }

  /// SVC #0x42 in a64_checks: the step after it is at the vector (VBAR_EL1 + 0x200, current EL
  /// with SP_ELx), with the exception class of SVC, 0x15 = 21 (ARM ARM D17.2.37).
  @Test func anSVCShowsAsItsExceptionClass() throws {
    let kernel = try CLI.temporaryFile(AArch64Guests.a64Checks.elf, name: "a64-checks-trace.elf")
    let run = try CLI.run(["trace", "--kernel", kernel, "--from", "svc_at", "--limit", "2"])
    let symbols = try ELFSymbols(AArch64Guests.a64Checks.elf)
    let svc = try #require(symbols["svc_at"])
    let vectors = try #require(symbols["vectors"])
    #expect(
      run.stdout
        == "0x\(String(svc, radix: 16)) svc_at\n0x\(String(vectors + 0x200, radix: 16)) vectors+0x200 exception 21\n")
    #expect(run.status == 0)
  }

  /// The whole run, to its semihosting exit: the last line is the exit, and the status the
  /// guest's code (0).
  @Test func aTraceToTheEndShowsTheExit() throws {
    let kernel = try CLI.temporaryFile(AArch64Guests.a64Exclusive.elf, name: "a64-exclusive-end.elf")
    let run = try CLI.run(["trace", "--kernel", kernel, "--format", "jsonl"])
    let last = try #require(run.stdout.split(separator: "\n").last)
    #expect(last.contains("\"event\":\"exit\"") && last.contains("\"exit_value\":0"), "\(last)")
    #expect(run.status == 0)
    #expect(run.stderr.contains("exclusive: counter=0000000000000005"))
  }

  /// --from request on a64_request: the trace starts after its `hvc #0x4853` with W0 = 1 and
  /// ends at the one with W0 = 0, the store loop's four iterations between (listing: ADR, MOV,
  /// then STR, SUBS, B.NE at start_request + 0xc, + 0x10, + 0x14; MOV W0 and the HVC at
  /// stop_request); the guest runs on to its output and exit.
  @Test func aTraceFromTheGuestsRequestToItsRequestToStop() throws {
    let kernel = try CLI.temporaryFile(AArch64Guests.a64Request.elf, name: "a64-request.elf")
    let run = try CLI.run(["trace", "--kernel", kernel, "--from", "request"])
    let lines = run.stdout.split(separator: "\n").map(String.init)
    let loop = ["start_request+0xc", "start_request+0x10", "start_request+0x14"]
    let expected =
      ["start_request+0x4", "start_request+0x8"] + Array([[String]](repeating: loop, count: 4).joined())
      + ["start_request+0x18", "stop_request", "stop_request+0x4 request 0"]
    #expect(lines.map { $0.split(separator: " ", maxSplits: 1).last.map(String.init) ?? "" } == expected)
    #expect(run.stderr == "request: done\n")
    #expect(run.status == 0)
  }

  @Test func x86OnlyOptionsAreRefused() throws {
    let kernel = try CLI.temporaryFile(AArch64Guests.a64Exclusive.elf, name: "a64-msr.elf")
    let run = try CLI.run(["trace", "--kernel", kernel, "--msr-events", "LSTAR"])
    #expect(run.status == 2)
    #expect(run.stderr == "hyperstep: error: --msr-events is for x86 guests; this one is AArch64\n")
  }
}

/// The symbols of an AArch64 guest's ELF by name.
func ELFSymbols(_ elf: [UInt8]) throws -> [String: UInt64] {
  let file = try ELFFile(elf, for: .aarch64)
  return Dictionary(file.symbols().map { ($0.name, $0.address) }, uniquingKeysWith: { first, _ in first })
}
