import Foundation
import Machine
import TestGuests
import Testing

/// `hyperstep monitor`, driven by a script on standard input as xen-access can be. Standard
/// input is a pipe here, so no prompt is printed and each line of output is a stop or the
/// answer to one command.
@Suite struct MonitorCommandTests {
  func kernel(_ guest: GuestImage) throws -> String {
    try CLI.temporaryFile(guest.image, name: "\(guest.name).elf")
  }

  /// A symbol's address from the guest's own ELF symbol table, as `0x` and lowercase hex.
  func address(_ name: String, in guest: GuestImage, plus offset: UInt64 = 0) throws -> String {
    let symbol = try #require(try ELFFile(guest.elf).symbols().first { $0.name == name })
    return "0x" + String(symbol.address + offset, radix: 16)
  }

  func outputLines(_ run: CLIRun) -> [String] {
    run.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
  }

  @Test(arguments: Engines.all) func theGuestsRequestStartsAnInspectableSession(engine: TestEngine) throws {
    let kernel = try kernel(TestGuests.guestRequest)
    // `c` from the first stop: the guest runs until it asks for stepping, which is a stop too.
    let run = try CLI.run(
      ["monitor", "--accel", engine.accelerator, "--kernel", kernel],
      input: "c\ns\ns 2\nm traced 4\nb untraced\nc\nbogus\nr\nc\n")
    #expect(run.status == 33, "\(run.stderr)")  // the guest ran on to its own debug exit
    let lines = run.stdout.split(separator: "\n").map(String.init)
    try #require(lines.count >= 11, "\(lines)")
    // Addresses from `llvm-objdump -d guest_request.elf`: _start = 0x100000 (mov $0x600,%dx),
    // traced = 0x10000a (nop), 0x10000b (add $2,%ebx), 0x10000e (xor), 0x100010 (out),
    // untraced = 0x100011.
    #expect(lines[0] == "stop: 0x100000 _start")  // the first instruction, before any ran
    #expect(lines[1] == "stop: 0x10000a traced request 1")
    #expect(lines[2] == "stop: 0x10000b traced+0x1")
    #expect(lines[3] == "step: 0x10000e traced+0x4")
    #expect(lines[4] == "stop: 0x100010 traced+0x6")
    #expect(lines[5] == "0x10000a: 90 83 c3 02")  // nop; add $2,%ebx
    #expect(lines[6] == "breakpoint at 0x100011")
    #expect(lines[7] == "stop: 0x100011 untraced breakpoint")
    #expect(lines[8].hasPrefix("unknown command 'bogus'"))
    #expect(lines[9].hasPrefix("RAX=") && lines.contains { $0.hasPrefix("RIP=0000000000100011") })
    #expect(lines.last == "stop: 0x100017 untraced+0x6 exit debug-exit")
  }

  @Test(arguments: Engines.all) func endOfInputQuits(engine: TestEngine) throws {
    let kernel = try kernel(TestGuests.guestRequest)
    let run = try CLI.run(["monitor", "--accel", engine.accelerator, "--kernel", kernel], input: "")
    #expect(run.status == 0)
    // The first stop is the entry point, _start = 0x100000 (llvm-objdump -d guest_request.elf).
    #expect(run.stdout == "stop: 0x100000 _start\n")
  }

  /// calls.elf never writes the control port: only the first stop lets a breakpoint be set.
  @Test(arguments: Engines.all) func breakpointsCanBeSetBeforeTheFirstInstruction(engine: TestEngine) throws {
    let guest = TestGuests.calls
    let start = try address("_start", in: guest)
    let leaf = try address("leaf", in: guest)
    // _start calls leaf three times in all (once through middle), then leaves through the
    // OUT to 0xf4 just before leaf, so the exit stop is at leaf's address.
    let run = try CLI.run(
      ["monitor", "--accel", engine.accelerator, "--kernel", try kernel(guest)], input: "b leaf\nc\nc\nc\nc\n")
    #expect(run.status == 33, "\(run.stderr)")
    let hit = "stop: \(leaf) leaf breakpoint"
    #expect(
      outputLines(run) == [
        "stop: \(start) _start", "breakpoint at \(leaf)", hit, hit, hit, "stop: \(leaf) leaf exit debug-exit", "",
      ])

    let quit = try CLI.run(["monitor", "--accel", engine.accelerator, "--kernel", try kernel(guest)], input: "q\nc\n")
    #expect(quit.status == 0)  // q at the first stop: nothing ran
    #expect(quit.stdout == "stop: \(start) _start\n")
  }

  /// As in gdb: `c` from a stop on a breakpoint runs that instruction first, however the
  /// stop came about, and stops at the next hit.
  @Test(arguments: Engines.all) func continuingFromABreakpointUnderThePCRunsItFirst(engine: TestEngine) throws {
    let guest = TestGuests.calls
    let start = try address("_start", in: guest)
    let leaf = try address("leaf", in: guest)
    // Two steps from _start (lea, call) reach leaf, its first call; a breakpoint there, then
    // `c` must stop at the second call, from middle: with two return addresses on the stack
    // (llvm-objdump -d calls.elf: the lea sets %rsp to stack_top; middle's call and leaf's
    // each push 8 bytes), so RSP = stack_top - 16.
    let stackTop = try #require(try ELFFile(guest.elf).symbols().first { $0.name == "stack_top" }).address
    let rsp = String(stackTop - 16, radix: 16)
    let run = try CLI.run(
      ["monitor", "--accel", engine.accelerator, "--kernel", try kernel(guest)], input: "s\ns\nb leaf\nc\nr\nc\nc\n")
    #expect(run.status == 33, "\(run.stderr)")
    let lines = outputLines(run)
    #expect(
      Array(lines.prefix(5)) == [
        "stop: \(start) _start", "stop: \(try address("_start", in: guest, plus: 7)) _start+0x7",
        "stop: \(leaf) leaf", "breakpoint at \(leaf)", "stop: \(leaf) leaf breakpoint",
      ])
    #expect(
      lines.contains {
        $0.hasPrefix("RSI=") && $0.hasSuffix("RSP=" + String(repeating: "0", count: 16 - rsp.count) + rsp)
      })
    #expect(Array(lines.suffix(3)) == ["stop: \(leaf) leaf breakpoint", "stop: \(leaf) leaf exit debug-exit", ""])

    // The same at the first stop: a breakpoint at the entry point is not hit by `c` there.
    let first = try CLI.run(
      ["monitor", "--accel", engine.accelerator, "--kernel", try kernel(guest)], input: "b _start\nc\n")
    #expect(first.status == 33, "\(first.stderr)")
    #expect(
      outputLines(first) == [
        "stop: \(start) _start", "breakpoint at \(start)", "stop: \(leaf) leaf exit debug-exit", "",
      ])
  }

  @Test(arguments: Engines.all) func stepCountsBelowOneAreRefused(engine: TestEngine) throws {
    let guest = TestGuests.calls
    let run = try CLI.run(
      ["monitor", "--accel", engine.accelerator, "--kernel", try kernel(guest)],
      input: "s 0\ns -1\ns two\ns 1 2\ns\ns 2\n")
    #expect(run.status == 0)
    // From llvm-objdump -d calls.elf: lea at _start, call leaf at _start+0x7, then leaf's nops.
    #expect(
      outputLines(run) == [
        "stop: \(try address("_start", in: guest)) _start",
        "s: the number of steps must be 1 or more, not '0'",
        "s: the number of steps must be 1 or more, not '-1'",
        "s: the number of steps must be 1 or more, not 'two'",
        "usage: s [N]",
        "stop: \(try address("_start", in: guest, plus: 7)) _start+0x7",
        "step: \(try address("leaf", in: guest)) leaf",
        "stop: \(try address("leaf", in: guest, plus: 1)) leaf+0x1",
        "",
      ])
  }

  @Test(arguments: Engines.all) func unknownSymbolsAreNamed(engine: TestEngine) throws {
    let guest = TestGuests.calls
    let path = try kernel(guest)
    let leaf2 = try address("leaf", in: guest, plus: 2)
    let run = try CLI.run(
      ["monitor", "--accel", engine.accelerator, "--kernel", path],
      input: "b nosuchsym\nm nosuchsym 4\nb leaf+0x2\nb leaf+zz\nb 0x12zz\nc\n")
    #expect(run.status == 0)
    #expect(
      outputLines(run) == [
        "stop: \(try address("_start", in: guest)) _start",
        "no such symbol 'nosuchsym' in \(path) (SYMBOL or SYMBOL+0xOFFSET)",
        "no such symbol 'nosuchsym' in \(path) (SYMBOL or SYMBOL+0xOFFSET)",
        "breakpoint at \(leaf2)",
        "no such symbol 'leaf+zz' in \(path) (SYMBOL or SYMBOL+0xOFFSET)",
        "bad address '0x12zz'",
        "stop: \(leaf2) leaf+0x2 breakpoint",
        "",
      ])

    // A flat binary has no symbols to look in (minimal.S: real mode at 0x7c00).
    let flat = try CLI.temporaryFile(TestGuests.minimal.image, name: "minimal.bin")
    let bare = try CLI.run(
      ["monitor", "--accel", engine.accelerator, "--kernel", flat, "--kernel-format", "flat-real"],
      input: "b _start\nq\n")
    #expect(bare.stdout == "stop: 0x7c00\nno symbols to look up '_start' in: \(flat) has none\n")
  }

  @Test(arguments: Engines.all) func thePromptShowsOnATerminalOnly(engine: TestEngine) throws {
    let path = try kernel(TestGuests.calls)
    let piped = try CLI.run(["monitor", "--accel", engine.accelerator, "--kernel", path], input: "q\n")
    #expect(!piped.stdout.contains("(hyperstep)"), "\(piped.stdout)")
    // util-linux's script gives the command a terminal for its standard input.
    let terminal = try CLI.runProgram(
      "/usr/bin/script",
      ["-qec", "\(CLI.executable.path) monitor --accel \(engine.accelerator) --kernel \(path)", "/dev/null"],
      input: "q\n")
    #expect(terminal.stdout.contains("(hyperstep) "), "\(terminal.stdout)")
  }

  @Test(arguments: Engines.all) func badCommandsGetOneLineAndTheConsoleGoesOn(engine: TestEngine) throws {
    let guest = TestGuests.calls
    let start = try address("_start", in: guest)
    let leaf = try address("leaf", in: guest)
    let middle = try address("middle", in: guest)
    let script = [
      "bogus", "c now", "r x", "q now", "m", "m leaf", "m leaf 0", "m leaf 4097", "m leaf x", "m \(leaf) 3",
      "m 0xffffffffffff0000 4", "b", "b leaf middle", "b leaf", "b leaf", "b middle", "b _start", "b _start+0x7",
      "b _start+0x11", "   ", "s",
    ]
    let run = try CLI.run(
      ["monitor", "--accel", engine.accelerator, "--kernel", try kernel(guest)],
      input: script.joined(separator: "\n") + "\n")
    #expect(run.status == 0)
    let commands = "s [N], c, r, m ADDR LEN, b ADDR|SYMBOL, q"
    let lines = outputLines(run)
    // From llvm-objdump -d calls.elf: leaf = nop, nop, ret (90 90 c3).
    try #require(lines.count == 22, "\(lines)")
    #expect(
      Array(lines.prefix(11)) == [
        "stop: \(start) _start",
        "unknown command 'bogus': \(commands)",
        "usage: c", "usage: r", "usage: q",
        "usage: m ADDR LEN (LEN 1 to 4096)", "usage: m ADDR LEN (LEN 1 to 4096)", "usage: m ADDR LEN (LEN 1 to 4096)",
        "usage: m ADDR LEN (LEN 1 to 4096)", "usage: m ADDR LEN (LEN 1 to 4096)",
        "\(leaf): 90 90 c3",
      ])
    #expect(lines[11].hasPrefix("cannot read 0xffffffffffff0000: "), "\(lines[11])")
    // A blank line is no command; the `s` at the end shows nothing before it ran the guest.
    #expect(
      Array(lines[12...]) == [
        "usage: b ADDR|SYMBOL", "usage: b ADDR|SYMBOL",
        "breakpoint at \(leaf)", "breakpoint at \(leaf) is already set", "breakpoint at \(middle)",
        "breakpoint at \(start)", "breakpoint at \(try address("_start", in: guest, plus: 7))",
        "all four hardware breakpoints are in use",
        "stop: \(try address("_start", in: guest, plus: 7)) _start+0x7", "",
      ])
  }
}
