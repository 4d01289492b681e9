import Foundation
import Machine
import TestGuests
import Testing

/// A trace that cannot be written in full ends with one line and status 14, never a silently
/// truncated file and status 0 (issue 9, item 3); --limit says when it ends a trace (item 8).
@Suite struct TraceOutputTests {
  func kernel(_ guest: GuestImage) throws -> String {
    try CLI.temporaryFile(guest.image, name: "\(guest.name).elf")
  }

  func expectOutputFailure(_ run: CLIRun, naming target: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(run.status == 14, "\(run.stderr)", sourceLocation: sourceLocation)
    #expect(
      run.stderr.hasSuffix("hyperstep: error: cannot write the trace to \(target): \(stringError(target))\n"),
      "\(run.stderr)", sourceLocation: sourceLocation)
  }

  func stringError(_ target: String) -> String {
    target == "/dev/full" ? "No space left on device; it is incomplete" : "Broken pipe; it is incomplete"
  }

  @Test(arguments: Engines.all) func aFullDiskEndsTheTraceWithStatus14(engine: TestEngine) throws {
    let kernel = try kernel(TestGuests.tightLoop)
    for format in ["text", "jsonl", "summary", "chrome"] {
      let run = try CLI.run([
        "trace", "--accel", engine.accelerator, "--kernel", kernel, "--output", "/dev/full", "--format", format,
      ])
      expectOutputFailure(run, naming: "/dev/full")
      // The guest's console (on standard output beside a trace file) still got through.
      #expect(run.stdout.isEmpty || run.stdout.hasSuffix("\n"), "\(format): \(run.stdout)")
    }
  }

  /// The reader of the trace goes away: the trace ends at the next write, instead of
  /// Hyperstep dying of SIGPIPE (status 141 from the shell) or running on unseen.
  @Test(arguments: Engines.all) func aClosedPipeEndsTheTraceWithStatus14(engine: TestEngine) throws {
    let kernel = try kernel(TestGuests.tightLoop)
    // tight_loop runs 300004 instructions (100000 rounds of three, llvm-objdump): far more
    // than a pipe's 64 KiB buffer, so a write must meet the closed pipe.
    let script = "\"$0\" trace --accel \"$2\" --kernel \"$1\" | head -c 0; exit ${PIPESTATUS[0]}"
    let run = try CLI.runProgram("/bin/bash", ["-c", script, CLI.executable.path, kernel, engine.accelerator])
    expectOutputFailure(run, naming: "standard output")
  }

  @Test(arguments: Engines.all) func aTraceThatFitsItsOutputEndsAsTheGuestDoes(engine: TestEngine) throws {
    let path = NSTemporaryDirectory() + "hyperstep-trace-output-\(getpid())-\(engine).txt"
    let run = try CLI.run([
      "trace", "--accel", engine.accelerator, "--kernel", try kernel(TestGuests.tightLoop), "--limit", "2000000",
      "--output", path,
    ])
    // The guest ends through isa-debug-exit with 0x10 (done: in tight_loop.S): (0x10 << 1) | 1.
    #expect(run.status == 33, "\(run.stderr)")
    #expect(run.stderr.isEmpty)
    // _start's two instructions, 100000 rounds of loop's three, done's two (llvm-objdump),
    // and the exit's own line.
    let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
    #expect(lines.count == 2 + 300_000 + 2 + 1)
  }

  @Test(arguments: Engines.all) func theDefaultLimitIsSaidWhenItEndsATrace(engine: TestEngine) throws {
    let path = NSTemporaryDirectory() + "hyperstep-trace-limit-\(getpid())-\(engine).txt"
    // A million steps: a debug build on a loaded two-core machine needs time for them.
    let run = try CLI.run(
      ["trace", "--accel", engine.accelerator, "--kernel", try kernel(TestGuests.forever), "--output", path],
      timeout: 240)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(
      run.stderr
        == "hyperstep: note: the trace stopped at its limit of 1000000 lines (the default); raise --limit for more\n")
    let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
    #expect(lines.count == 1_000_000)
  }

  /// --from and --until take `symbol+0xOFFSET`, the form trace lines print.
  @Test(arguments: Engines.all) func symbolPlusOffsetNamesAnAddress(engine: TestEngine) throws {
    // tight_loop (llvm-objdump): loop at 0x100007, `decl %ecx` at loop+0x4, `jne` at loop+0x6.
    let run = try CLI.run([
      "trace", "--accel", engine.accelerator, "--kernel", try kernel(TestGuests.tightLoop), "--from", "loop+0x4",
      "--until", "loop+6",
    ])
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout == "0x10000b loop+0x4\n0x10000d loop+0x6\n")
  }
}

/// --symbols takes an ELF with symbols or a System.map, nothing else (issue 9, item 7).
@Suite struct SymbolFileTests {
  let kernel = try! CLI.temporaryFile(TestGuests.tightLoop.image, name: "tight_loop.elf")

  func expectRefused(_ symbols: [UInt8], name: String, mentioning fragment: String) throws {
    let path = try CLI.temporaryFile(symbols, name: name)
    try BadInputTests().expectRefused(
      ["trace", "--kernel", kernel, "--symbols", path, "--from", "loop"], mentioning: ["--symbols \(path)", fragment])
  }

  @Test func randomBytesAreNotASystemMap() throws {
    // Noise that is the same on every run (a multiplicative hash), starting with a NUL byte so
    // that the first line is not empty: line 1 is the one refused.
    let bytes = (0..<4096).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 7) }
    #expect(bytes[0] == 0)
    try expectRefused(bytes, name: "random.bin", mentioning: "neither an ELF file nor a System.map: line 1")
  }

  @Test func textThatIsNotNMOutputIsRefusedByLine() throws {
    let text = "ffffffff81000000 T _text\nffffffff81000040 T secondary_startup_64\nthis is not a symbol\n"
    try expectRefused(Array(text.utf8), name: "System.map", mentioning: "line 3 is not 'ADDRESS TYPE NAME'")
  }

  @Test func anEmptyMapAndAStrippedELFHaveNoSymbols() throws {
    try expectRefused(Array("\n\n".utf8), name: "empty.map", mentioning: "the System.map holds no symbols")
    let stripped = SyntheticELF.haltAtOneMiB.bytes  // written without a section table
    try expectRefused(stripped, name: "stripped.elf", mentioning: "no symbol table (is it stripped?)")
  }

  @Test func aBrokenELFSaysWhy() throws {
    try expectRefused(Array(TestGuests.longMode.elf.prefix(80)), name: "cut.elf", mentioning: "not a usable ELF file")
  }
}

/// ELF files of 16-bit guests boot the way they were linked (issue 9, item 10).
@Suite struct RealModeELFRunTests {
  @Test(arguments: Engines.all) func theELFOfAFlatRealModeGuestRunsAsItsBinaryDoes(engine: TestEngine) throws {
    let path = try CLI.temporaryFile(TestGuests.realMode.elf, name: "real_mode.elf")
    for extra in [[], ["--kernel-format", "flat-real"]] {
      let run = try CLI.run(["run", "--accel", engine.accelerator, "--kernel", path] + extra)
      // real_mode.S prints its machine status word (PE clear: real mode, ET set) and CS, then
      // exits through isa-debug-exit with 0x10: status (0x10 << 1) | 1.
      #expect(run.status == 33, "\(extra): \(run.stderr)")
      #expect(run.stdout == "real mode: msw=00000010 cs=00000000\n")
    }
  }
}
