import Foundation
import Machine
import TestGuests
import Testing

/// `hyperstep trace` writes plain steps in batches when a line's fate depends on its PC alone
/// (no filter, or an address range), and one stop at a time otherwise (a CR3 or ring filter
/// needs each stop's registers). Both must give the same bytes: a ring filter that keeps
/// everything (these guests run in ring 0 throughout) takes the one-at-a-time path, so each
/// trace here is compared with the same trace under `--filter-ring kernel`. What each trace
/// holds is checked against the disassembly in TraceCommandTests and TraceOutputTests.
@Suite struct TraceBatchTests {
  func kernel(_ guest: GuestImage) throws -> String {
    try CLI.temporaryFile(guest.image, name: "\(guest.name).elf")
  }

  static let variants: [[String]] = [
    [],  // every stop: plain steps, exceptions, the guest's own #DB, the exit
    ["--format", "jsonl"],
    ["--from", "events", "--until", "report"],
    ["--limit", "25"],
    ["--filter-range", "0x100000-0x10003f"],
    ["--filter-range", "0x100000-0x10003f", "--format", "jsonl", "--limit", "40"],
  ]

  @Test(arguments: Engines.all, variants) func batchedLinesAreTheLinesOfSingleStops(
    engine: TestEngine, variant: [String]
  )
    throws
  {
    let kernel = try kernel(TestGuests.longEvents)
    let arguments = ["trace", "--accel", engine.accelerator, "--kernel", kernel] + variant
    let batched = try CLI.run(arguments)
    let single = try CLI.run(arguments + ["--filter-ring", "kernel"])
    #expect(batched.status == single.status)
    #expect(batched.stderr == single.stderr)
    #expect(!batched.stdout.isEmpty)
    #expect(batched.stdout == single.stdout)
  }
}
