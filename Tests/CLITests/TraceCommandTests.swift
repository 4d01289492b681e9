import Foundation
import Machine
import TestGuests
import Testing

/// `hyperstep trace` end to end. Expected lines come from `llvm-objdump -d` of each guest's ELF.
@Suite struct TraceCommandTests {
  func kernel(_ guest: GuestImage) throws -> String {
    try CLI.temporaryFile(guest.image, name: "\(guest.name).elf")
  }

  @Test(arguments: Engines.all) func everyInstructionOnceWithSymbols(engine: TestEngine) throws {
    let run = try CLI.run(["trace", "--accel", engine.accelerator, "--kernel", try kernel(TestGuests.stepExits)])
    #expect(run.status == 0, "\(run.stderr)")
    #expect(
      run.stdout == """
        0x100000 _start
        0x100004 _start+0x4
        0x100006 _start+0x6
        0x100007 _start+0x7
        0x100008 _start+0x8
        0x10000f _start+0xf
        0x100010 _start+0x10
        0x100015 _start+0x15
        0x100015 _start+0x15
        0x100017 _start+0x17
        0x10001e _start+0x1e
        0x10001f _start+0x1f
        0x100024 _start+0x24
        0x10002a _start+0x2a
        0x10002c _start+0x2c
        0x10002e _start+0x2e
        0x100030 _start+0x30
        0x100032 _start+0x32
        0x100037 _start+0x37
        0x100039 _start+0x39
        0x10003b _start+0x3b
        0x10003e _start+0x3e
        0x100041 _start+0x41
        0x100043 _start+0x43
        0x100048 _start+0x48
        0x100048 _start+0x48
        0x10004a _start+0x4a
        0x10004b _start+0x4b
        0x10004c _start+0x4c halt

        """)
  }

  @Test(arguments: Engines.all) func theGuestCanAskForItsOwnTrace(engine: TestEngine) throws {
    let run = try CLI.run([
      "trace", "--accel", engine.accelerator, "--kernel", try kernel(TestGuests.guestRequest), "--from", "request",
    ])
    #expect(run.status == 33)  // the guest goes on to its debug exit after the trace
    #expect(
      run.stdout == """
        0x10000a traced
        0x10000b traced+0x1
        0x10000e traced+0x4
        0x100010 traced+0x6
        0x100011 untraced request 0

        """)
  }

  @Test(arguments: Engines.all) func fromAndUntilAreTheFirstAndLastLines(engine: TestEngine) throws {
    let run = try CLI.run([
      "trace", "--accel", engine.accelerator, "--kernel", try kernel(TestGuests.longEvents), "--from", "events",
      "--until", "report",
    ])
    #expect(run.status == 0, "\(run.stderr)")
    let lines = run.stdout.split(separator: "\n")
    let symbols = try ELFFile(TestGuests.longEvents.elf).symbols()
    let events = symbols.first { $0.name == "events" }!.address
    let report = symbols.first { $0.name == "report" }!.address
    #expect(lines.first == "0x\(String(events, radix: 16)) events")
    #expect(lines.last == "0x\(String(report, radix: 16)) report")
    #expect(
      lines.contains(
        "0x\(String(symbols.first { $0.name == "gp_handler" }!.address, radix: 16)) gp_handler exception 13"))
  }

  /// Guests/tests/calls.S: _start runs 6 instructions of its own and calls leaf (3
  /// instructions), middle (3 of its own, calling leaf) and leaf again: 18 in all.
  @Test(arguments: Engines.all) func profilesCountInstructionsPerFunctionAndCall(engine: TestEngine) throws {
    let kernel = try kernel(TestGuests.calls)
    let summary = try CLI.run(["trace", "--accel", engine.accelerator, "--kernel", kernel, "--format", "summary"])
    #expect(summary.status == 33)  // the guest's own debug exit
    #expect(summary.stdout == "9 leaf\n6 _start\n3 middle\n")
    let tree = try CLI.run(["trace", "--accel", engine.accelerator, "--kernel", kernel, "--format", "calltree"])
    #expect(
      tree.stdout == """
        _start  calls=1  instructions=18 (self 6)
          leaf  calls=2  instructions=6 (self 6)
          middle  calls=1  instructions=6 (self 3)
            leaf  calls=1  instructions=3 (self 3)

        """)
    let folded = try CLI.run(["trace", "--accel", engine.accelerator, "--kernel", kernel, "--format", "folded"])
    #expect(folded.stdout == "_start 6\n_start;leaf 6\n_start;middle 3\n_start;middle;leaf 3\n")
  }

  @Test(arguments: Engines.all) func chromeTraceEventsOpenInPerfetto(engine: TestEngine) throws {
    let run = try CLI.run([
      "trace", "--accel", engine.accelerator, "--kernel", try kernel(TestGuests.calls), "--format", "chrome",
    ])
    let object = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
    let events = try #require(object["traceEvents"] as? [[String: Any]])
    let spans = events.filter { $0["ph"] as? String == "X" }.map {
      "\($0["name"] as? String ?? "?") \($0["ts"] as? Int ?? -1)+\($0["dur"] as? Int ?? -1)"
    }
    // Start and length in instructions: leaf is called at instruction 2, middle at 6 (its
    // leaf at 8), leaf again at 13.
    #expect(spans == ["_start 0+18", "leaf 2+3", "middle 6+6", "leaf 8+3", "leaf 13+3"])
    #expect(events.contains { $0["ph"] as? String == "M" })
  }

  @Test(arguments: Engines.all) func filtersKeepOnlyTheirStops(engine: TestEngine) throws {
    let kernel = try kernel(TestGuests.calls)
    // leaf is 0x10001a-0x10001c (llvm-objdump); it runs three times, and the exit lands at
    // its address too (the OUT before it is the last instruction of _start).
    let leaf = try CLI.run([
      "trace", "--accel", engine.accelerator, "--kernel", kernel, "--filter-range", "0x10001a-0x10001c",
    ])
    #expect(leaf.stdout.split(separator: "\n").count == 10)
    #expect(!leaf.stdout.contains("_start") && !leaf.stdout.contains("middle"))
    // Ring 0 with Hyperstep's identity-map CR3 (0x9000): everything; ring 3: nothing.
    let kernelRing = try CLI.run([
      "trace", "--accel", engine.accelerator, "--kernel", kernel, "--filter-ring", "kernel", "--filter-cr3", "0x9000",
    ])
    #expect(kernelRing.stdout.split(separator: "\n").count == 19)
    let user = try CLI.run(["trace", "--accel", engine.accelerator, "--kernel", kernel, "--filter-ring", "user"])
    #expect(user.stdout.isEmpty)
  }

  @Test(arguments: Engines.all) func progressShowsOnATerminalOnly(engine: TestEngine) throws {
    let kernel = try kernel(TestGuests.forever)
    let path = NSTemporaryDirectory() + "hyperstep-progress-\(getpid())-\(engine).trace"
    // The first progress line comes after half a second of stepping: the trace must last
    // longer than that. The interpreter steps it on either engine (a KVM machine moves to it
    // where tracing begins), many times faster than KVM.
    let limit = 3_000_000
    let command =
      "\(CLI.executable.path) trace --accel \(engine.accelerator) --kernel \(kernel) --limit \(limit) --output \(path)"
    // util-linux's script gives the command a terminal for its stderr.
    let terminal = try CLI.runProgram("/usr/bin/script", ["-qec", command, "/dev/null"])
    #expect(terminal.stdout.contains(" steps/s, "), "\(terminal.stdout)")
    let piped = try CLI.run([
      "trace", "--accel", engine.accelerator, "--kernel", kernel, "--limit", "\(limit)", "--output", path,
    ])
    // No progress line without a terminal: only the note that --limit ended the trace.
    #expect(
      piped.stderr == "hyperstep: note: the trace stopped at its limit of \(limit) lines; raise --limit for more\n")
  }

  /// Determinism: the interpreter's time is its instruction count, so the timer guest
  /// (Guests/tests/timer.S: PIT at about 1 kHz, three ticks counted) traced twice with ticks
  /// let in while stepping gives the same trace byte for byte, ticks at the same instructions.
  @Test func twoTracesOfATimerGuestOnTheInterpreterAreIdentical() throws {
    let kernel = try kernel(TestGuests.timer)
    let first = try CLI.run(["trace", "--accel", "emu", "--irq", "deliver", "--kernel", kernel])
    let second = try CLI.run(["trace", "--accel", "emu", "--irq", "deliver", "--kernel", kernel])
    #expect(first.status == 33, "\(first.stderr)")  // the handler counted three ticks: exit 0x10
    #expect(second.status == 33)
    let handler = try #require(try ELFFile(TestGuests.timer.elf).symbols().first { $0.name == "timer_handler" })
    let ticks = first.stdout.split(separator: "\n").filter {
      $0 == "0x\(String(handler.address, radix: 16)) timer_handler interrupt 32"
    }
    #expect(ticks.count == 3, "\(first.stdout.suffix(500))")
    #expect(first.stdout == second.stdout)
  }

  @Test(arguments: Engines.all) func msrWritesAreReportedAndStillTakeEffect(engine: TestEngine) throws {
    let symbols = try ELFFile(TestGuests.msrWrites.elf).symbols()
    let entry = symbols.first { $0.name == "syscall_entry" }!.address
    let checks = symbols.first { $0.name == "checks" }!.address
    let run = try CLI.run([
      "trace", "--accel", engine.accelerator, "--kernel", try kernel(TestGuests.msrWrites), "--msr-events",
      "lstar,EFER",
    ])
    #expect(run.status == 33, "\(run.stderr)")  // the guest read both MSRs back as written
    #expect(run.stderr.contains("msrs ok"))  // its console, on stderr beside a trace on stdout
    let events = run.stdout.split(separator: "\n").filter { $0.contains("msr-write") }
    // LSTAR gets the address of syscall_entry; EFER goes from 0x500 (LME, LMA at entry) to 0x501
    // (SCE), and the stop is at the next instruction, the one labelled `checks`.
    #expect(events.count == 2)
    #expect(events.first?.hasSuffix("msr-write LSTAR 0x\(String(entry, radix: 16))") == true, "\(events)")
    #expect(events.last == "0x\(String(checks, radix: 16)) checks msr-write EFER 0x501")
  }

  @Test(arguments: Engines.all) func limitStopsTheTrace(engine: TestEngine) throws {
    let run = try CLI.run([
      "trace", "--accel", engine.accelerator, "--kernel", try kernel(TestGuests.stepExits), "--limit", "3",
    ])
    #expect(run.status == 0)
    #expect(run.stdout == "0x100000 _start\n0x100004 _start+0x4\n0x100006 _start+0x6\n")
    // A trace cut short by the limit says so: it would otherwise look complete.
    #expect(run.stderr == "hyperstep: note: the trace stopped at its limit of 3 lines; raise --limit for more\n")
  }

  @Test(arguments: Engines.all) func jsonLinesCarryStepRipEventAndVCPU(engine: TestEngine) throws {
    let path = NSTemporaryDirectory() + "hyperstep-trace-\(getpid())-\(engine).jsonl"
    let run = try CLI.run([
      "trace", "--accel", engine.accelerator, "--kernel", try kernel(TestGuests.stepExits), "--format", "jsonl",
      "--output", path,
    ])
    #expect(run.status == 0)
    #expect(run.stdout.isEmpty)
    let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
    #expect(lines.count == 29)
    for (index, line) in lines.enumerated() {
      let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
      #expect(object["step"] as? Int == index)
      #expect(object["vcpu"] as? Int == 0)
      #expect((object["rip"] as? String)?.hasPrefix("0x") == true)
      #expect(object["event"] as? String == (index == 28 ? "halt" : "step"))
    }
  }

  @Test(arguments: Engines.all) func aTripleFaultEndsTheTraceWithTheFaultAndKeepsTheLines(engine: TestEngine) throws {
    let run = try CLI.run(["trace", "--accel", engine.accelerator, "--kernel", try kernel(TestGuests.tripleFault)])
    #expect(run.status == 4)
    let lines = run.stdout.split(separator: "\n")
    #expect(lines.first == "0x100000 _start")
    #expect(lines.last?.hasSuffix("exit triple-fault") == true, "\(lines.last ?? "")")
    // With the trace on stdout, the guest's console is on stderr, ahead of the error line.
    #expect(
      run.stderr.hasPrefix("about to triple fault\nhyperstep: error: the guest stopped: triple-fault on vCPU 0\n"))
    #expect(run.stdout.contains("about to triple fault") == false)
  }
}

/// Bad input for `hyperstep trace`: one line, a defined status, no crash.
@Suite struct TraceBadInputTests {
  func expectRefused(_ arguments: [String], status: Int32 = 2, mentioning fragment: String) throws {
    let run = try CLI.run(arguments)
    #expect(run.status == status, "\(arguments): \(run.stderr)")
    #expect(run.stderr.split(separator: "\n").count == 1, "\(run.stderr)")
    #expect(run.stderr.contains(fragment), "\(run.stderr)")
  }

  @Test(arguments: Engines.all) func unknownSymbolSaysWhichFileWasSearched(engine: TestEngine) throws {
    let path = try CLI.temporaryFile(TestGuests.longEvents.image, name: "symbols.elf")
    try expectRefused(
      ["trace", "--accel", engine.accelerator, "--kernel", path, "--from", "no_such_function"],
      mentioning: "no such symbol in \(path)")
  }

  @Test func aZeroLimitIsRefused() throws {
    try expectRefused(["trace", "--limit", "0"], mentioning: "--limit 0: must be at least 1")
  }

  @Test func anUnwritableOutputIsRefused() throws {
    try expectRefused(
      ["trace", "--output", "/nonexistent/dir/trace.txt"], mentioning: "/nonexistent/dir/trace.txt: cannot write")
  }

  @Test func unknownMSRNamesAreRefused() throws {
    try expectRefused(["trace", "--msr-events", "LSTAR,NOSUCH"], mentioning: "unknown MSR 'NOSUCH'")
  }

  @Test func badFiltersAreRefused() throws {
    try expectRefused(
      ["trace", "--filter-range", "0x2000-0x1000"], mentioning: "--filter-range 0x2000-0x1000: inverted")
    try expectRefused(["trace", "--filter-range", "here"], mentioning: "--filter-range here: not START-END")
    try expectRefused(["trace", "--filter-cr3", "0x9001"], mentioning: "--filter-cr3 0x9001: not page-aligned")
    try expectRefused(["trace", "--filter-ring", "2"], mentioning: "--filter-ring '2' is not kernel or user")
  }

  @Test func badPolicyAndFormatAreRefused() throws {
    try expectRefused(["trace", "--irq", "sometimes"], mentioning: "--irq 'sometimes'")
    try expectRefused(["trace", "--format", "xml"], mentioning: "--format 'xml' is not text, jsonl, summary")
  }

  @Test(arguments: Engines.all) func untilReachedBeforeFromIsAnError(engine: TestEngine) throws {
    let path = try CLI.temporaryFile(TestGuests.longEvents.image, name: "order.elf")
    try expectRefused(
      ["trace", "--accel", engine.accelerator, "--kernel", path, "--from", "report", "--until", "events"],
      mentioning: "was reached before --from")
  }

  @Test(arguments: Engines.all) func fromNeverReachedHasItsOwnStatus(engine: TestEngine) throws {
    let path = try CLI.temporaryFile(TestGuests.stepExits.image, name: "never.elf")
    // 0x10001d is the UD2 after the final HLT: the guest halts before it.
    try expectRefused(
      ["trace", "--accel", engine.accelerator, "--kernel", path, "--from", "0x10001d"], status: 12,
      mentioning: "before reaching --from 0x10001d")
  }
}
