import Foundation
import Machine
import TestGuests
import Testing

/// A `hyperstep debug` process, on a Unix socket of its own unless told where to listen.
final class DebugServerProcess {
  let server: ChildProcess
  /// The Unix socket's path (nil when listening on TCP).
  let socket: String?
  /// What gdb's `target remote` takes, from the server's own "waiting for a debugger" line.
  private(set) var remote = ""

  convenience init(engine: TestEngine, _ guest: GuestImage, extra: [String] = [], listen: String? = nil) throws {
    try self.init(engine: engine, kernel: guest.image, name: guest.name, extra: extra, listen: listen)
  }

  /// `listen` is the `--gdb` argument; nil means a fresh Unix socket in the temporary directory.
  /// `output`: what becomes of the guest's serial output (the server's stdout).
  init(
    engine: TestEngine, kernel: [UInt8], name: String, extra: [String] = [], listen: String? = nil,
    output: ChildProcess.Output = .discard
  ) throws {
    let kernelPath = try CLI.temporaryFile(kernel, name: "\(name)-debug.elf")
    let address = listen ?? "unix:" + Self.freshSocketPath()
    socket = address.hasPrefix("unix:") ? String(address.dropFirst("unix:".count)) : nil
    server = try ChildProcess(
      CLI.executable.path, ["debug", "--accel", engine.accelerator, "--kernel", kernelPath, "--gdb", address] + extra,
      stdout: output)
    // The server names its socket on stderr once it listens (the socket file appears a moment
    // earlier, at bind, when a connection is still refused); the wait is generous because a
    // loaded two-core machine runs many of these at once.
    let server = self.server
    let listening = server.poll(seconds: 30) { server.errorsText.contains("waiting for a debugger on") }
    if !listening {
      Issue.record("hyperstep debug made no socket within 30 s: \(server.errorsText)")
    }
    // "... (gdb -ex 'target remote 127.0.0.1:40123')": with port 0 the server picked the port.
    if let start = server.errorsText.range(of: "target remote ") {
      remote = String(server.errorsText[start.upperBound...].prefix { $0 != "'" })
    }
  }

  /// A socket path no other test uses.
  static func freshSocketPath() -> String {
    NSTemporaryDirectory() + "hyperstep-gdb-\(getpid())-\(UUID().uuidString.prefix(8)).sock"
  }

  /// The TCP port the server listens on (from its "waiting for a debugger" line).
  var port: UInt16? { remote.split(separator: ":").last.flatMap { UInt16($0) } }

  /// Runs gdb in batch mode with these commands; returns what it printed. gdb is killed, and
  /// the overrun recorded, if it has not finished within `timeout` seconds.
  func gdb(_ commands: [String], symbols: GuestImage? = nil, timeout: Double = 120) throws -> String {
    try gdb(commands, symbolFile: symbols.map { try CLI.temporaryFile($0.elf, name: "\($0.name)-symbols.elf") })
  }

  /// As above; `program` is given to gdb the usual way, as its argument (`gdb demo.elf`), and
  /// `before` runs ahead of `target remote` (`target` replaces the server's own address).
  func gdb(
    _ commands: [String], program: String? = nil, symbolFile: String? = nil, before: [String] = [],
    target: String? = nil, timeout: Double = 120, binary: String = "/usr/bin/gdb"
  ) throws -> String {
    var arguments = ["-batch", "-nx"] + (program.map { [$0] } ?? [])
    arguments += ["-ex", "set pagination off", "-ex", "set confirm off"]
    if let symbolFile { arguments += ["-ex", "file \(symbolFile)"] }
    for command in before { arguments += ["-ex", command] }
    arguments += ["-ex", "target remote \(target ?? remote)"]
    for command in commands { arguments += ["-ex", command] }
    let gdb = try ChildProcess(binary, arguments, stderr: .intoStandardOutput)
    if !gdb.wait(timeout: timeout) {
      Issue.record("gdb did not finish within \(timeout) s; it was killed. It printed: \(gdb.outputText)")
    }
    return gdb.outputText
  }

  /// Waits for the server to end (gdb's `kill` or the guest's exit end it), killing it after
  /// ten seconds; returns its exit status.
  func finish() -> Int32 {
    if !server.wait(timeout: 10) {
      Issue.record("hyperstep debug was still running 10 s after its session; killed. stderr: \(server.errorsText)")
    }
    if let socket { try? FileManager.default.removeItem(atPath: socket) }
    return server.status ?? -1
  }
}

let hasGDB = FileManager.default.isExecutableFile(atPath: "/usr/bin/gdb")

/// Values gdb printed with `p/x`: "$3 = 0x100004" -> 0x100004, in order.
func printedValues(_ output: String) -> [UInt64] {
  output.split(separator: "\n").compactMap { line in
    guard line.hasPrefix("$"), let range = line.range(of: " = 0x") else { return nil }
    return UInt64(line[range.upperBound...].prefix { $0.isHexDigit }, radix: 16)
  }
}

@Suite(
  .enabled(if: hasGDB, "SKIPPED: /usr/bin/gdb is missing (scripts/test.sh, the README's test command, installs it)"))
struct GDBTests {
  @Test(arguments: Engines.all) func stepiFollowsTheStepContract(engine: TestEngine) throws {
    let server = try DebugServerProcess(engine: engine, TestGuests.stepExits)
    let output = try server.gdb(
      ["p/x $pc"] + Array(repeating: ["stepi", "p/x $pc"], count: 29).flatMap { $0 } + ["kill"])
    #expect(server.finish() == 0)
    // The same trace the stepper tests expect, from `llvm-objdump -d step_exits.elf`.
    #expect(
      printedValues(output) == [
        0x10_0000, 0x10_0004, 0x10_0006, 0x10_0007, 0x10_0008, 0x10_000f, 0x10_0010, 0x10_0015, 0x10_0015,
        0x10_0017, 0x10_001e, 0x10_001f, 0x10_0024, 0x10_002a, 0x10_002c, 0x10_002e, 0x10_0030, 0x10_0032,
        0x10_0037, 0x10_0039, 0x10_003b, 0x10_003e, 0x10_0041, 0x10_0043, 0x10_0048, 0x10_0048, 0x10_004a,
        0x10_004b,  // hlt
        0x10_004c, 0x10_004c,  // halted with interrupts off: never run past, however often stepped
      ], "\(output)")
  }

  @Test(arguments: Engines.all) func stepiIntoHandlersKeepsTheGuestsCounts(engine: TestEngine) throws {
    let server = try DebugServerProcess(engine: engine, TestGuests.longEvents)
    // Step the whole guest: about 1900 instructions; then let it run to its debug exit.
    let output = try server.gdb(
      ["stepi 1950", "p/x $pc", "continue"], symbols: TestGuests.longEvents)
    #expect(server.finish() == 33, "\(output)")
    #expect(output.contains("exited with code 041"), "\(output)")  // (0x10 << 1) | 1 = 33 = 041 octal
  }

  @Test(arguments: Engines.all) func movSSShadowThroughGDB(engine: TestEngine) throws {
    let server = try DebugServerProcess(engine: engine, TestGuests.stepSpecial)
    let output = try server.gdb(["p/x $pc", "stepi", "p/x $pc", "stepi", "p/x $pc", "stepi", "p/x $pc", "kill"])
    #expect(server.finish() == 0)
    // As StepContractTests: the NOP at 0x100007 runs in the MOV SS shadow, without a stop.
    #expect(printedValues(output) == [0x10_0000, 0x10_0005, 0x10_0008, 0x10_0009], "\(output)")
  }

  @Test(arguments: Engines.all) func watchpointsWorkThroughGDBsSteppedWatching(engine: TestEngine) throws {
    // On KVM this host delivers no data breakpoints, so the server watches by stepping and
    // comparing; the interpreter compares every access. Both stop right after the write.
    let server = try DebugServerProcess(engine: engine, TestGuests.longEvents)
    let output = try server.gdb(
      ["watch *(int*)&bp_count", "continue", "p/x $pc", "p *(int*)&bp_count", "kill"], symbols: TestGuests.longEvents)
    #expect(server.finish() == 0)
    let handler = try ELFFile(TestGuests.longEvents.elf).symbols().first { $0.name == "bp_handler" }!.address
    // The stop comes after `incl bp_count(%rip)`, the handler's first instruction (6 bytes).
    #expect(printedValues(output) == [handler + 6], "\(output)")
    #expect(output.contains("New value = 1"), "\(output)")
  }

  /// gdb's watch, rwatch and awatch, through every kind of access in
  /// Guests/tests/memory_accesses.S: a store, a load, a read-modify-write, a PUSH and a string
  /// move. Each stop is right after the accessing instruction (the label after it), with the
  /// kind gdb set: expected stops from the guest's source, one per access. On KVM the
  /// watched variables share their page with the code, so the page KVM sees absent is also
  /// the one it fetches from (the interpreter runs that code): the vCPU stays on KVM.
  @Test(arguments: Engines.all) func watchReadAndAccessWatchpointsStopRightAfterTheAccess(engine: TestEngine) throws {
    let guest = TestGuests.memoryAccesses
    let symbols = try ELFFile(guest.elf).symbols()
    func at(_ name: String) -> UInt64 { symbols.first { $0.name == name }!.address }
    let server = try DebugServerProcess(engine: engine, guest)
    let output = try server.gdb(
      [
        "watch *(long*)&var_write", "rwatch *(long*)&var_read", "awatch *(long*)&var_rmw",
        "watch *(long*)&var_push", "rwatch *(long*)&var_source", "awatch *(long*)&var_copy",
        "continue", "p/x $pc", "continue", "p/x $pc", "continue", "p/x $pc", "continue", "p/x $pc",
        "continue", "p/x $pc", "monitor accel", "continue", "p/x $pc", "kill",
      ], symbols: guest)
    #expect(output.contains("engine: \(engine == .kvm ? "kvm" : "emu")"), "\(output)")
    #expect(!server.server.errorsText.contains("moved the vCPUs"), "\(server.server.errorsText)")
    #expect(server.finish() == 33)  // the last continue runs the guest to its debug exit (0x10)
    // The read-modify-write is one stop for its awatch (read and write by one instruction);
    // MOVSQ reads var_source (rwatch) and writes var_copy (awatch): one stop for both, where gdb
    // reports one of them, so the next continue ends the guest.
    #expect(
      printedValues(output).prefix(5)
        == [at("after_store"), at("after_load"), at("after_rmw"), at("after_push"), at("after_movs")],
      "\(output)")
    #expect(output.contains("Hardware watchpoint 1: *(long*)&var_write"), "\(output)")
    #expect(output.contains("Hardware read watchpoint 2: *(long*)&var_read"), "\(output)")
    #expect(output.contains("Hardware access (read/write) watchpoint 3: *(long*)&var_rmw"), "\(output)")
    #expect(output.contains("Value = 0x123456789abcdef") || output.contains("Value = 81985529216486895"), "\(output)")
  }

  /// gdb's watch, rwatch and awatch on data in a page of its own (Guests/tests/watch_pages.S),
  /// then a read watchpoint on a virtual address whose page-table entry the guest rewrites
  /// between two reads: both reads stop, the second through the new mapping (on KVM the
  /// protection follows the page tables: the entry's page is write-protected, and the write
  /// makes the server translate again). Expected stops and values from the guest's source.
  @Test(arguments: Engines.all) func watchpointsFollowDataOnItsOwnPageAndARemappedPage(engine: TestEngine) throws {
    let guest = TestGuests.watchPages
    let symbols = try ELFFile(guest.elf).symbols()
    func at(_ name: String) -> UInt64 { symbols.first { $0.name == name }!.address }
    let server = try DebugServerProcess(engine: engine, guest)
    let output = try server.gdb(
      [
        "rwatch *(long*)&far_read", "watch *(long*)&far_write", "awatch *(long*)&far_rmw",
        "continue", "p/x $pc", "continue", "p/x $pc", "continue", "p/x $pc", "delete",
        "hbreak remapped", "continue", "p/x $pc", "delete",
        "rwatch *(long*)0x40000000", "continue", "p/x $pc", "p/x $rbx", "continue", "p/x $pc", "p/x $rbx",
        "monitor accel", "delete", "continue",
      ], symbols: guest)
    #expect(server.finish() == 33, "\(output)")  // the guest's debug exit (0x10)
    #expect(
      printedValues(output)
        == [
          at("after_far_read"), at("after_far_write"), at("after_far_rmw"), at("remapped"),
          at("after_read_a"), 0xa0a0_a0a0, at("after_read_b"), 0xb0b0_b0b0,
        ], "\(output)")
    #expect(output.contains("Hardware read watchpoint 5: *(long*)0x40000000"), "\(output)")
    #expect(output.contains("engine: \(engine == .kvm ? "kvm" : "emu")"), "\(output)")
  }

  @Test(arguments: Engines.all) func breakpointsStopWhereSet(engine: TestEngine) throws {
    let server = try DebugServerProcess(engine: engine, TestGuests.longEvents)
    let symbols = try ELFFile(TestGuests.longEvents.elf).symbols()
    let report = symbols.first { $0.name == "report" }!.address
    let gp = symbols.first { $0.name == "gp_handler" }!.address
    let output = try server.gdb(
      [
        "hbreak *0x\(String(gp, radix: 16))", "continue", "p/x $pc", "delete", "break *0x\(String(report, radix: 16))",
        "continue", "p/x $pc", "kill",
      ], symbols: TestGuests.longEvents)
    #expect(server.finish() == 0)
    #expect(printedValues(output) == [gp, report], "\(output)")
  }

  @Test(arguments: Engines.all) func monitorCommandsAnswer(engine: TestEngine) throws {
    let server = try DebugServerProcess(engine: engine, TestGuests.stepExits)
    let output = try server.gdb([
      "monitor help", "monitor dr", "monitor translate 0x100000", "monitor translate 0x100000000",
      "monitor irq deliver", "monitor phys on", "x/2xb 0x100000", "monitor registers", "monitor bogus", "kill",
    ])
    #expect(server.finish() == 0)
    #expect(output.contains("translate ADDR"))
    // DR6 and DR7 as after reset (SDM vol. 3, 18.2.3 and 18.2.4): 0xffff0ff0 and 0x400.
    #expect(output.contains("dr6=0xffff0ff0 dr7=0x400"), "\(output)")
    // The identity map Hyperstep builds for long-mode entry covers the low 4 GiB only.
    #expect(output.contains("0x100000 -> guest-physical 0x100000"))
    #expect(output.contains("0x100000000: 0x100000000 is not mapped"))
    #expect(output.contains("interrupts while stepping: deliver"))
    #expect(output.contains("0x100000:\t0x66\t0xba"))  // mov $0x3ff,%dx by physical address
    #expect(output.contains("cr0=0x80010033") && output.contains("cr3=0x9000"))
    #expect(output.contains("unknown monitor command 'bogus'"))
  }

  @Test(arguments: Engines.all) func vCPUsAreThreads(engine: TestEngine) throws {
    let server = try DebugServerProcess(engine: engine, TestGuests.stepExits, extra: ["--cpus", "2"])
    let output = try server.gdb([
      "info threads", "thread 2", "p/x $pc", "p/x $cs", "stepi", "p/x $pc", "thread 1", "stepi", "p/x $pc", "kill",
    ])
    #expect(server.finish() == 0)
    #expect(output.contains("vCPU 0") && output.contains("vCPU 1"), "\(output)")
    // vCPU 1 is an application processor still in its reset state (SDM vol. 3, 9.1.1:
    // CS selector 0xf000, IP 0xfff0) waiting for INIT/SIPI, which this guest never sends: a
    // step leaves it there. Thread 1 steps on from its entry.
    #expect(printedValues(output) == [0xfff0, 0xf000, 0xfff0, 0x10_0004], "\(output)")
  }

  @Test(arguments: Engines.all) func applicationProcessorsRunAndStopWithTheRest(engine: TestEngine) throws {
    let server = try DebugServerProcess(engine: engine, TestGuests.smp, extra: ["--cpus", "2"])
    let apSeen = try ELFFile(TestGuests.smp.elf).symbols().first { $0.name == "ap_seen" }!.address
    let output = try server.gdb([
      "hbreak *0x\(String(apSeen, radix: 16))", "continue", "p/x $pc", "thread 2", "p/x $cs", "p/x $pc", "stepi",
      "p/x $pc", "thread 1", "delete", "continue",
    ])
    #expect(server.finish() == 33, "\(output)")
    // The BSP stops where it saw the AP; the AP, started by SIPI vector 8 at 0800:0000, has run
    // its trampoline (xor, mov ds, lock incw, cli: 2+2+5+1 bytes) and its HLT: IP 0xb, halted
    // with interrupts off, so a step leaves it there. Then everything runs to the guest's exit.
    #expect(printedValues(output) == [apSeen, 0x800, 0xb, 0xb], "\(output)")
    #expect(output.contains("exited with code 041"), "\(output)")
  }

  @Test(arguments: Engines.all) func registerAndMemoryWritesTakeEffect(engine: TestEngine) throws {
    let server = try DebugServerProcess(engine: engine, TestGuests.longEvents)
    let counter = try ELFFile(TestGuests.longEvents.elf).symbols().first { $0.name == "bp_count" }!.address
    let output = try server.gdb(
      [
        "set $rbx = 0x1234abcd", "p/x $rbx", "set {int}0x\(String(counter, radix: 16)) = 0x2a",
        "p/x *(int*)0x\(String(counter, radix: 16))", "set $xmm1.v2_int64[0] = 0x55", "p/x $xmm1.v2_int64[0]",
        "p/x $cr0", "kill",
      ])
    #expect(server.finish() == 0)
    // CR0 as Hyperstep's long-mode entry sets it: PE | MP | ET | NE | WP | PG.
    #expect(printedValues(output) == [0x1234_abcd, 0x2a, 0x55, 0x8001_0033], "\(output)")
  }
}

/// The server as a new user meets it: a second debugger, host names, IPv6.
@Suite(
  .enabled(if: hasGDB, "SKIPPED: /usr/bin/gdb is missing (scripts/test.sh, the README's test command, installs it)"))
struct GDBConnectionTests {
  @Test(arguments: Engines.all) func aSecondGDBIsToldWhyItIsTurnedAway(engine: TestEngine) throws {
    let server = try DebugServerProcess(engine: engine, TestGuests.stepExits)
    let first = try RawClient(server)
    first.sendPacket("qC")
    _ = first.read(until: "#")
    let output = try server.gdb(["p/x $pc"], timeout: 60)
    #expect(output.contains("another debugger is attached"), "\(output)")
    #expect(!output.contains("Broken pipe") && !output.contains("Connection reset"), "\(output)")
    // The first client is still served.
    first.sendPacket("qC")
    #expect(first.read(until: "#").contains("$QC1#"))
    first.sendPacket("k")
    #expect(server.finish() == 0)
  }

  @Test(arguments: Engines.all) func gdbConnectsByHostName(engine: TestEngine) throws {
    let server = try DebugServerProcess(engine: engine, TestGuests.stepExits, listen: "localhost:0")
    let port = try #require(server.port, "\(server.server.errorsText)")
    let output = try server.gdb(["p/x $pc", "kill"], target: "localhost:\(port)", timeout: 60)
    #expect(server.finish() == 0)
    #expect(printedValues(output) == [0x10_0000], "\(output)")  // step_exits' entry
  }

  @Test(arguments: Engines.all) func gdbConnectsOverIPv6(engine: TestEngine) throws {
    let server = try DebugServerProcess(engine: engine, TestGuests.stepExits, listen: "[::1]:0")
    #expect(server.remote.hasPrefix("[::1]:"), "\(server.server.errorsText)")
    let output = try server.gdb(["p/x $pc", "kill"], timeout: 60)
    #expect(server.finish() == 0)
    #expect(printedValues(output) == [0x10_0000], "\(output)")
  }

  @Test(arguments: Engines.all) func gdbArchI386ShowsALongModeGuestIn32Bits(engine: TestEngine) throws {
    // A 64-bit guest shown through the i386 description (as for a Multiboot kernel that has
    // entered long mode): eip is the low half of rip, and gdb takes the target as i386.
    let server = try DebugServerProcess(engine: engine, TestGuests.stepExits, extra: ["--gdb-arch", "i386"])
    let output = try server.gdb(["show architecture", "p/x $eip", "stepi", "p/x $eip", "p $rip", "kill"], timeout: 60)
    #expect(server.finish() == 0)
    #expect(output.contains("(currently \"i386\")"), "\(output)")
    // The first two stops of step_exits (llvm-objdump -d: a 4-byte mov at the entry).
    #expect(printedValues(output) == [0x10_0000, 0x10_0004], "\(output)")
    #expect(output.contains("= void"), "\(output)")  // no rip in the i386 description
  }
}
