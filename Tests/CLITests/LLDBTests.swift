import Foundation
import KVM
import Machine
import TestGuests
import Testing

/// Debian's LLDB (package lldb-16, which scripts/test.sh installs): the one place the tests
/// look for it. The toolchain's own lldb links a libpython3.10 Debian 12 lacks, and does not
/// start.
enum LLDB {
  static let path = "/usr/bin/lldb-16"
  static let isInstalled = FileManager.default.isExecutableFile(atPath: path)
}

extension DebugServerProcess {
  /// Runs LLDB in batch mode: `gdb-remote` to the server's TCP port, then `commands`; returns
  /// what it printed. A failing command ends the batch (and LLDB kills the process on its way
  /// out). LLDB is killed, and the overrun recorded, if it has not finished within `timeout`
  /// seconds.
  ///
  /// - `program`: the guest's file, as LLDB's target (`lldb KERNEL.elf`), for its symbols.
  /// - `afterAbnormalStop`: commands for a stop that ends the batch early (LLDB's
  ///   `--one-line-on-crash`); LLDB counts a stop with an exception reason as one.
  func lldb(
    _ commands: [String], program: String? = nil, afterAbnormalStop: [String] = [], timeout: Double = 120
  ) throws -> String {
    let port = try #require(port, "the server listens on TCP for LLDB: \(server.errorsText)")
    var arguments = ["--no-lldbinit", "--no-use-colors", "--batch"] + (program.map { [$0] } ?? [])
    // LLDB gives up on a reply after 5 s by default; a loaded two-core machine running the
    // whole suite can be slower than that.
    arguments += ["-O", "settings set plugin.process.gdb-remote.packet-timeout 30"]
    for command in ["gdb-remote 127.0.0.1:\(port)"] + commands { arguments += ["-o", command] }
    for command in afterAbnormalStop { arguments += ["-k", command] }
    let lldb = try ChildProcess(LLDB.path, arguments, stderr: .intoStandardOutput)
    if !lldb.wait(timeout: timeout) {
      Issue.record("lldb did not finish within \(timeout) s; it was killed. It printed: \(lldb.outputText)")
    }
    return lldb.outputText
  }
}

/// Values LLDB printed for `register`, in order: "     rip = 0x0000000000100000" -> 0x100000.
func lldbRegisterValues(_ output: String, _ register: String) -> [UInt64] {
  output.split(separator: "\n").compactMap { line in
    let trimmed = line.drop { $0 == " " }
    guard trimmed.hasPrefix("\(register) = 0x") else { return nil }
    return UInt64(trimmed.dropFirst("\(register) = 0x".count).prefix { $0.isHexDigit }, radix: 16)
  }
}

/// The values of `memory read --format x` lines at `address` and after, in order:
/// "0x00100000: 0x48 0x8d ..." -> [0x48, 0x8d, ...].
func lldbMemoryValues(_ output: String) -> [UInt64] {
  output.split(separator: "\n").filter { $0.hasPrefix("0x") && $0.contains(": 0x") }.flatMap { line in
    line.split(separator: ":", maxSplits: 1)[1].split(separator: " ").compactMap { UInt64($0.dropFirst(2), radix: 16) }
  }
}

/// The stop reasons LLDB showed ("* thread #1, stop reason = breakpoint 1.1"), in order.
func lldbStopReasons(_ output: String) -> [String] {
  output.split(separator: "\n").compactMap { line in
    line.range(of: "stop reason = ").map { String(line[$0.upperBound...]) }
  }
}

/// The guest's own bytes at `address`, from its ELF file.
func elfBytes(_ elf: ELFFile, at address: UInt64, count: Int) -> [UInt8]? {
  guard
    let segment = elf.segments.first(where: {
      $0.virtualAddress <= address && address + UInt64(count) <= $0.virtualAddress + $0.fileSize
    })
  else { return nil }
  let start = elf.fileBytes(of: segment).startIndex + Int(address - segment.virtualAddress)
  return Array(elf.fileBytes(of: segment)[start..<start + count])
}

/// Real LLDB against `hyperstep debug`. Expected values come from the guests' sources and their
/// disassembly (`llvm-objdump -d memory_accesses.elf`), never from Hyperstep's own output.
@Suite(
  .enabled(
    if: LLDB.isInstalled,
    "SKIPPED: \(LLDB.path) is missing (scripts/test.sh, the README's test command, installs Debian's lldb-16)"))
struct LLDBTests {
  let guest = TestGuests.memoryAccesses

  func symbol(_ name: String) throws -> UInt64 {
    try #require(try ELFFile(guest.elf).symbols().first { $0.name == name }, "no symbol \(name)").address
  }

  func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }

  /// Registers, memory and its map, software and hardware breakpoints by address, single
  /// steps, register writes and their effect, and the run to the guest's own exit status.
  @Test(arguments: Engines.all) func registersMemoryBreakpointsStepsAndTheExit(engine: TestEngine) throws {
    let elf = try ELFFile(guest.elf)
    let afterStore = try symbol("after_store")
    let varRMW = try symbol("var_rmw")
    let server = try DebugServerProcess(engine: engine, guest, listen: "127.0.0.1:0")
    let output = try server.lldb([
      "register read rip",
      "memory read --format x --size 1 --count 16 \(hex(elf.entry))",
      "memory region \(hex(elf.entry))", "memory region 0x100000000",
      "process plugin packet monitor registers",
      "breakpoint set --address \(hex(afterStore))",
      "process continue",
      "register read rip",
      "thread step-inst",
      "register read rip", "register read rbx",
      "register write rax 0x100",
      "thread step-inst",
      "memory read --format x --size 8 --count 1 \(hex(varRMW))",
      "register write rflags 0x8c3",
      "register read rflags",
      "breakpoint set --hardware --address \(hex(try symbol("after_push")))",
      "process continue",
      "register read rip",
      "process continue",
    ])
    #expect(server.finish() == 33, "\(output)")  // (0x10 << 1) | 1: the guest's debug exit
    // The ELF's entry, then where the breakpoint stopped, then one instruction on:
    // `mov var_read(%rip), %rbx` is 7 bytes (48 8b 1d a1 00 00 00), which ends at after_load.
    #expect(
      lldbRegisterValues(output, "rip") == [elf.entry, afterStore, afterStore + 7, try symbol("after_push")],
      "\(output)")
    #expect(try symbol("after_load") == afterStore + 7)
    #expect(lldbRegisterValues(output, "rbx") == [0x0123_4567_89ab_cdef], "\(output)")  // var_read's .quad
    let memory = lldbMemoryValues(output)
    let entryBytes = try #require(elfBytes(elf, at: elf.entry, count: 16))
    #expect(memory.prefix(16).map { UInt8($0) } == entryBytes, "\(output)")
    // `add %rax, var_rmw(%rip)` with rax set to 0x100 by LLDB: var_rmw was 1.
    #expect(memory.dropFirst(16) == [0x101], "\(output)")
    // eflags (LLDB's rflags) as written: CF, ZF, SF, OF and the reserved bit 1 (SDM vol. 1, 3.4.3).
    #expect(lldbRegisterValues(output, "eflags") == [0x8c3], "\(output)")
    #expect(
      lldbStopReasons(output).suffix(4) == [
        "breakpoint 1.1", "instruction step into", "instruction step into", "breakpoint 2.1",
      ], "\(output)")
    #expect(output.contains("Process 1 exited with status = 33"), "\(output)")
    // Hyperstep's long-mode boot map (Machine/X86_64/PageTables.swift): 4 GiB of present,
    // writable 2 MiB pages with no XD bit, so the first 1 GiB past them is one missing PDPT entry.
    #expect(output.contains("[0x0000000000000000-0x0000000000200000) rwx"), "\(output)")
    #expect(output.contains("[0x0000000100000000-0x0000000140000000) ---"), "\(output)")
    // Monitor output reaches LLDB as console text: CR0 as Hyperstep's long-mode entry sets it
    // (PE | MP | ET | NE | WP | PG).
    #expect(output.contains("cr0=0x80010033"), "\(output)")
  }

  /// A write watchpoint stops right after the storing instruction: exact on the interpreter,
  /// by stepping and comparing on KVM (this host delivers no data breakpoints).
  @Test(arguments: Engines.all) func writeWatchpointStopsAfterTheStore(engine: TestEngine) throws {
    let varWrite = try symbol("var_write")
    let server = try DebugServerProcess(engine: engine, guest, listen: "127.0.0.1:0")
    let output = try server.lldb([
      "watchpoint list",
      "watchpoint set expression -w write -s 8 -- \(hex(varWrite))",
      "process continue",
      "register read rip",
      "memory read --format x --size 8 --count 1 \(hex(varWrite))",
      "watchpoint delete 1",
      "process continue",
    ])
    #expect(server.finish() == 33, "\(output)")
    #expect(lldbStopReasons(output).last == "watchpoint 1", "\(output)")
    #expect(lldbRegisterValues(output, "rip") == [try symbol("after_store")], "\(output)")
    #expect(lldbMemoryValues(output) == [0x1122_3344_5566_7788], "\(output)")  // the stored rax
    // qWatchpointSupportInfo: four slots on KVM when watchpoints are stepped (shared with
    // hardware breakpoints, as in DR7); no fixed number on the interpreter, nor on a KVM with
    // read-only memory slots, where their pages are write-protected: LLDB prints none then.
    let kvmStepsWatchpoints = (try? Hypervisor())?.check(.readOnlyMemory) == 0
    #expect(
      output.contains("Number of supported hardware watchpoints: 4") == (engine == .kvm && kvmStepsWatchpoints),
      "\(output)")
    #expect(output.contains("Process 1 exited with status = 33"), "\(output)")
  }

  /// With the guest's file as LLDB's target, symbols work: a breakpoint by name, then a write
  /// watchpoint on the counter that handler's first instruction increments.
  @Test(arguments: Engines.all) func symbolsFromTheGuestFile(engine: TestEngine) throws {
    let guest = TestGuests.longEvents
    let symbols = try ELFFile(guest.elf).symbols()
    let handler = try #require(symbols.first { $0.name == "bp_handler" }).address
    let counter = try #require(symbols.first { $0.name == "bp_count" }).address
    let program = try CLI.temporaryFile(guest.elf, name: "\(guest.name)-lldb.elf")
    let server = try DebugServerProcess(engine: engine, guest, listen: "127.0.0.1:0")
    let output = try server.lldb(
      [
        "breakpoint set --name bp_handler", "process continue", "register read rip", "breakpoint delete 1",
        "watchpoint set expression -w write -s 4 -- \(hex(counter))", "process continue", "register read rip",
        "memory read --format x --size 4 --count 1 \(hex(counter))", "kill",
      ], program: program)
    #expect(server.finish() == 0, "\(output)")
    #expect(output.contains("Breakpoint 1: where = \(URL(fileURLWithPath: program).lastPathComponent)`bp_handler"))
    // `incl bp_count(%rip)` is 6 bytes (llvm-objdump: ff 05 10 01 00 00); the counter starts at 0.
    #expect(lldbRegisterValues(output, "rip") == [handler, handler + 6], "\(output)")
    #expect(lldbStopReasons(output).suffix(2) == ["breakpoint 1.1", "watchpoint 1"], "\(output)")
    #expect(lldbMemoryValues(output) == [1], "\(output)")
  }

  /// Read and read-write watchpoints on the interpreter, which sees every data access: each
  /// stops right after the accessing instruction (the label after it in memory_accesses.S).
  @Test func readAndAccessWatchpointsOnTheInterpreter() throws {
    let server = try DebugServerProcess(engine: .emu, guest, listen: "127.0.0.1:0")
    let output = try server.lldb([
      "watchpoint set expression -w read -s 8 -- \(hex(try symbol("var_read")))",
      "watchpoint set expression -w read_write -s 8 -- \(hex(try symbol("var_rmw")))",
      "process continue", "register read rip",
      "process continue", "register read rip",
      "process continue",
    ])
    #expect(server.finish() == 33, "\(output)")
    #expect(lldbStopReasons(output).suffix(2) == ["watchpoint 1", "watchpoint 2"], "\(output)")
    #expect(lldbRegisterValues(output, "rip") == [try symbol("after_load"), try symbol("after_rmw")], "\(output)")
  }

  /// On KVM, pinned there (`monitor accel kvm`), read and read-write watchpoints are served
  /// through pages KVM sees absent: each stops right after the accessing instruction, and
  /// the vCPU never leaves KVM.
  @Test(requiresKVM) func readAndAccessWatchpointsOnKVM() throws {
    let server = try DebugServerProcess(engine: .kvm, guest, listen: "127.0.0.1:0")
    let output = try server.lldb([
      "process plugin packet monitor accel kvm",
      "watchpoint set expression -w read -s 8 -- \(hex(try symbol("var_read")))",
      "watchpoint set expression -w read_write -s 8 -- \(hex(try symbol("var_rmw")))",
      "process continue", "register read rip",
      "process continue", "register read rip",
      "process continue",
    ])
    #expect(server.finish() == 33, "\(output)")
    #expect(lldbStopReasons(output).suffix(2) == ["watchpoint 1", "watchpoint 2"], "\(output)")
    #expect(lldbRegisterValues(output, "rip") == [try symbol("after_load"), try symbol("after_rmw")], "\(output)")
    #expect(!server.server.errorsText.contains("moved the vCPUs"), "\(server.server.errorsText)")
  }

  /// A 32-bit guest is shown as i386 (the server's i386 layout, chosen from the ELF32 image):
  /// LLDB takes the architecture from qHostInfo/qProcessInfo and target.xml alike.
  @Test(arguments: Engines.all) func anELF32GuestIsI386(engine: TestEngine) throws {
    let guest = TestGuests.protectedElf32
    let entry = try ELFFile(guest.elf).entry
    let server = try DebugServerProcess(engine: engine, guest, listen: "127.0.0.1:0")
    let output = try server.lldb(["target list", "register read eip", "thread step-inst", "register read eip", "kill"])
    #expect(server.finish() == 0, "\(output)")
    #expect(output.contains("arch=i386-unknown-unknown"), "\(output)")
    // protected_elf32.S starts with `pushf` (llvm-objdump: 9c, one byte).
    #expect(lldbRegisterValues(output, "eip") == [entry, entry + 1], "\(output)")
  }

  /// vCPUs are threads; LLDB names the thread of each register packet (`p10;thread:2;`). The
  /// second vCPU is an application processor in its reset state (SDM vol. 3, 9.1.1: CS
  /// selector 0xf000, IP 0xfff0) waiting for INIT/SIPI, which step_exits never sends: a step
  /// runs nothing, and says so, where LLDB would otherwise repeat it for ever.
  @Test(arguments: Engines.all) func vCPUsAreThreadsAndAHaltedOneSaysSo(engine: TestEngine) throws {
    let server = try DebugServerProcess(
      engine: engine, TestGuests.stepExits, extra: ["--cpus", "2"], listen: "127.0.0.1:0")
    let output = try server.lldb(
      ["thread list", "thread select 2", "register read rip cs", "thread step-inst"],
      afterAbnormalStop: ["register read rip", "kill"], timeout: 60)
    #expect(server.finish() == 0, "\(output)")
    #expect(output.contains("thread #2: tid = 0x0002, 0x000000000000fff0"), "\(output)")
    #expect(lldbRegisterValues(output, "rip") == [0xfff0, 0xfff0], "\(output)")
    #expect(lldbRegisterValues(output, "cs") == [0xf000], "\(output)")
    #expect(
      lldbStopReasons(output).last
        == "vCPU halted: no instruction runs until an NMI, INIT or start-up IPI wakes it", "\(output)")
  }

  /// `process interrupt` (LLDB's Ctrl-C, byte 0x03) stops a guest that never ends, inside its
  /// loop (forever.S: `add $1, %rax` at 0x100000, `jmp` at 0x100004, from llvm-objdump) and
  /// after it has counted. LLDB is made asynchronous through its Python for the interrupt.
  @Test(arguments: Engines.all) func interruptStopsARunningGuest(engine: TestEngine) throws {
    let server = try DebugServerProcess(engine: engine, TestGuests.forever, listen: "127.0.0.1:0")
    let output = try server.lldb([
      "script lldb.debugger.SetAsync(True)", "process continue", "script import time; time.sleep(1.5)",
      "process interrupt", "script time.sleep(1)", "script lldb.debugger.SetAsync(False)", "thread list",
      "register read rip", "register read rax", "kill",
    ])
    #expect(server.finish() == 0, "\(output)")
    #expect(lldbStopReasons(output).last == "signal SIGINT", "\(output)")
    let rip = lldbRegisterValues(output, "rip")
    #expect(rip.count == 1 && [0x10_0000, 0x10_0004].contains(rip[0]), "\(output)")
    #expect((lldbRegisterValues(output, "rax").first ?? 0) > 0, "\(output)")
  }

  /// A second debugger is turned away at once (LLDB 16 hangs on the half-closed connection
  /// that serves gdb), the reason printed by the server; the first is still served.
  @Test(arguments: Engines.all) func aSecondLLDBIsTurnedAwayAtOnce(engine: TestEngine) throws {
    let server = try DebugServerProcess(engine: engine, guest, listen: "127.0.0.1:0")
    let first = try RawClient(server)
    first.sendPacket("qC")
    #expect(first.read(until: "#").contains("$QC1#"))
    let output = try server.lldb(["register read rip"], timeout: 30)
    #expect(
      output.contains("Connection shut down by remote side while waiting for reply to initial handshake packet"),
      "\(output)")
    first.sendPacket("qC")
    #expect(first.read(until: "#").contains("$QC1#"))
    first.sendPacket("k")
    #expect(server.finish() == 0)
    #expect(
      server.server.errorsText.contains("turned a second debugger away: one is attached to this VM already"),
      "\(server.server.errorsText)")
  }

  /// Memory the guest's page tables do not map: LLDB says so, and the session goes on (a
  /// failing command ends LLDB's batch, and LLDB kills the guest on its way out).
  @Test(arguments: Engines.all) func unmappedMemoryIsAClearError(engine: TestEngine) throws {
    let server = try DebugServerProcess(engine: engine, guest, listen: "127.0.0.1:0")
    // Hyperstep's long-mode identity map covers the low 4 GiB only.
    let output = try server.lldb(["register read rip", "memory read 0x100000000"], timeout: 60)
    #expect(server.finish() == 0, "\(output)")
    #expect(output.contains("error: memory read failed for 0x100000000"), "\(output)")
    #expect(lldbRegisterValues(output, "rip") == [try ELFFile(guest.elf).entry], "\(output)")
  }
}
