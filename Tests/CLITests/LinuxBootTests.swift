import Foundation
import Testing

/// Debian's stock kernel on Hyperstep's own x86-64 CPU (issue 13), from the fixture that
/// scripts/linux-fixture.sh fetches (scripts/test.sh runs it first). The expected output comes
/// from the fixture's sources: /init (scripts/linux-fixture/init.sh) prints the marker and
/// runs what `hyperstep.run=` names; hs-writes (writes.S) prints three 12-byte lines; the
/// kernel prints "reboot: Power down" when ACPI's S5 is entered (kernel/reboot.c) and the
/// `---[ end Kernel panic` line at the end of a panic (kernel/panic.c).
enum LinuxFixture {
  /// The fixture's directory, when complete.
  static let directory: String? = {
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("scripts/linux-fixture.sh").path
    guard let run = try? CLI.runProgram("/bin/bash", [script, "--check"], timeout: 30), run.status == 0 else {
      return nil
    }
    let path = run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    return path.isEmpty ? nil : path
  }()

  /// The release build of `hyperstep` that scripts/test.sh makes before the tests: a debug
  /// build's interpreter is some 20 times slower, too slow for 2 billion instructions a boot.
  static let executable: String? = {
    let path = CLI.executable.deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("release/hyperstep").path
    return FileManager.default.isExecutableFile(atPath: path) ? path : nil
  }()

  static func run(_ arguments: [String], timeout: TimeInterval = 300) throws -> CLIRun {
    try CLI.runProgram(executable!, arguments, timeout: timeout)
  }

  static var kernel: String { directory! + "/vmlinuz" }
  static var initrd: String { directory! + "/initrd.gz" }

  /// The flags every boot here shares: the interpreter, a fixed clock (repeatable runs), the
  /// symbols' addresses (nokaslr; the host-unpacked path has no KASLR anyway).
  static func arguments(cpus: Int = 1, commandLine: String) -> [String] {
    [
      "run", "--accel", "emu", "--cpus", String(cpus), "--memory", "512M", "--rtc-base", "2026-01-01T00:00:00",
      "--kernel", kernel, "--initrd", initrd, "--cmdline", "console=ttyS0 nokaslr " + commandLine,
    ]
  }

  static let marker = "HYPERSTEP-INIT: /init is running"
}

let requiresLinuxFixture = ConditionTrait.enabled(
  if: LinuxFixture.directory != nil && LinuxFixture.executable != nil,
  "SKIPPED: the Linux fixture (Debian's kernel and a busybox initramfs) could not be fetched, or there is no release build of hyperstep; run scripts/test.sh (it runs scripts/linux-fixture.sh and swift build -c release), so these tests DID NOT RUN"
)

@Suite(.serialized, requiresLinuxFixture) struct LinuxBootTests {
  @Test func bootsToInitRunsItsProgramAndPowersOff() throws {
    let run = try LinuxFixture.run(LinuxFixture.arguments(commandLine: "hyperstep.run=writes"), timeout: 300)
    #expect(run.status == 0, "stderr: \(run.stderr)")
    #expect(run.stdout.contains(LinuxFixture.marker))
    // Through the console tty, whose ONLCR turns each newline into CR LF.
    #expect(run.stdout.contains("hs-writes 1\r\nhs-writes 2\r\nhs-writes 3\r\n"))
    #expect(run.stdout.contains("ACPI: PM: Preparing to enter system sleep state S5"))
    #expect(run.stdout.contains("reboot: Power down"))
  }

  /// A shell session typed through a pipe: every CPU online, and `poweroff` (a signal to
  /// busybox init, PID 1) ends Hyperstep with status 0.
  @Test func aScriptedShellSessionSeesEveryCPUAndPowersOff() throws {
    let child = try ChildProcess(
      LinuxFixture.executable!, LinuxFixture.arguments(cpus: 2, commandLine: "quiet"), interactive: true)
    #expect(
      child.poll(seconds: 300) { child.outputText.contains("/ # ") }, "no shell prompt: \(child.outputText.suffix(600))"
    )
    child.send("echo hs-$((6*7))\n")
    #expect(child.poll(seconds: 120) { child.outputText.contains("hs-42") })
    child.send("grep -c ^processor /proc/cpuinfo\n")
    #expect(child.poll(seconds: 120) { child.outputText.contains("\n2\r\n") || child.outputText.contains("\n2\n") })
    child.send("poweroff\n")
    #expect(child.wait(timeout: 300))
    #expect(child.status == 0, "stderr: \(child.errorsText)")
    #expect(child.outputText.contains("reboot: Power down"))
  }

  /// `reboot -f` resets through the ACPI reset register (the FADT's, 0xcf9), and Hyperstep
  /// stops on a reset with status 0, saying so (README, "Linux").
  @Test func rebootEndsHyperstepCleanly() throws {
    let child = try ChildProcess(
      LinuxFixture.executable!, LinuxFixture.arguments(commandLine: "quiet"), interactive: true)
    #expect(
      child.poll(seconds: 300) { child.outputText.contains("/ # ") }, "no shell prompt: \(child.outputText.suffix(600))"
    )
    child.send("reboot -f\n")
    #expect(child.wait(timeout: 300))
    #expect(child.status == 0)
    #expect(child.outputText.contains("reboot: Restarting system"))
    #expect(child.errorsText.contains("guest reset the machine; Hyperstep stops on reset"))
  }

  /// Two boots with the same kernel, initrd, command line and clock retire the same number of
  /// instructions and print the same bytes, timestamps included (virtual time is the count
  /// of retired instructions), with two CPUs interleaved.
  @Test func twoBootsAreIdenticalInstructionForInstruction() throws {
    let arguments = LinuxFixture.arguments(cpus: 2, commandLine: "hyperstep.run=poweroff") + ["--stats"]
    let first = try LinuxFixture.run(arguments)
    let second = try LinuxFixture.run(arguments)
    #expect(first.status == 0 && second.status == 0)
    #expect(first.stdout.contains(LinuxFixture.marker))
    #expect(first.stdout == second.stdout)
    func retired(_ run: CLIRun) -> String? {
      run.stderr.split(separator: "\n").first { $0.contains("instructions retired") }
        .map { String($0.split(separator: " ")[2]) }
    }
    #expect(retired(first) != nil)
    #expect(retired(first) == retired(second))
  }

  @Test func aKernelPanicEndsTheRunWithItsReason() throws {
    let run = try LinuxFixture.run(LinuxFixture.arguments(commandLine: "rdinit=/nonexistent"), timeout: 300)
    #expect(run.status == 4)
    #expect(run.stdout.contains("---[ end Kernel panic - not syncing: VFS: Unable to mount root fs"))
    #expect(
      run.stderr.contains(
        "hyperstep: error: the guest's kernel panicked: VFS: Unable to mount root fs on unknown-block(0,0)")
    )
  }
}

/// Bad input around a Linux boot: one line on stderr, exit status 2, before anything runs.
@Suite(requiresLinuxFixture) struct DebianKernelBadInputTests {
  @Test func anInitrdThatIsNoArchiveIsRefused() throws {
    let junk = try CLI.temporaryFile(Array(repeating: 0x42, count: 4096), name: "junk-initrd")
    let run = try CLI.run([
      "run", "--accel", "emu", "--memory", "512M", "--kernel", LinuxFixture.kernel, "--initrd", junk,
    ])
    #expect(run.status == 2)
    #expect(run.stderr.contains("is not a cpio archive (newc) nor one compressed with gzip"))
    #expect(run.stderr.split(separator: "\n").count == 1)
  }

  @Test func aCommandLineLongerThanTheKernelTakesIsRefused() throws {
    let run = try CLI.run([
      "run", "--accel", "emu", "--memory", "512M", "--kernel", LinuxFixture.kernel, "--cmdline",
      String(repeating: "a", count: 3000),
    ])
    #expect(run.status == 2)
    // The bzImage header's cmdline_size is 2047 for this kernel (boot protocol 2.06+).
    #expect(run.stderr.contains("command line is 3000 bytes; at most 2047 fit"))
  }

  @Test func tooLittleMemoryForTheKernelIsRefused() throws {
    let run = try CLI.run([
      "run", "--accel", "emu", "--memory", "64M", "--kernel", LinuxFixture.kernel, "--initrd", LinuxFixture.initrd,
    ])
    #expect(run.status == 2)
    #expect(run.stderr.contains("the Linux kernel needs more than"))
  }

  @Test func aCorruptPayloadIsRefused() throws {
    var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: LinuxFixture.kernel)))
    // Zero 100 bytes inside the compressed payload (payload_offset at 0x248, from the
    // protected-mode code after the setup sectors: boot protocol).
    let setupSectors = Int(bytes[0x1f1] == 0 ? 4 : bytes[0x1f1])
    let payloadOffset = Int(bytes[0x248]) | Int(bytes[0x249]) << 8 | Int(bytes[0x24a]) << 16
    let payload = (setupSectors + 1) * 512 + payloadOffset
    for index in payload + 100..<payload + 200 { bytes[index] = 0 }
    let file = try CLI.temporaryFile(bytes, name: "corrupt-vmlinuz")
    let run = try CLI.run(["run", "--accel", "emu", "--memory", "512M", "--kernel", file])
    #expect(run.status == 2)
    #expect(run.stderr.contains("payload does not unpack"))
  }
}

/// Kernel debugging and tracing on Debian's kernel. Addresses come from the fixture's
/// System.map (the kernel's own kallsyms); the boot runs without KASLR (the host-unpacked path
/// enters the vmlinux at its link address), so they are the addresses the kernel runs at.
@Suite(.serialized, requiresLinuxFixture) struct LinuxDebugTests {
  /// name -> address, from System.map.
  static let symbols: [String: UInt64] = {
    guard let directory = LinuxFixture.directory,
      let text = try? String(contentsOfFile: directory + "/System.map", encoding: .utf8)
    else { return [:] }
    var table: [String: UInt64] = [:]
    for line in text.split(separator: "\n") {
      let fields = line.split(separator: " ")
      if fields.count >= 3, let address = UInt64(fields[0], radix: 16) { table[String(fields[2])] = address }
    }
    return table
  }()

  static func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }

  /// gdb on the booting kernel: a breakpoint at start_kernel (set at the 64-bit entry, before
  /// the kernel's page tables map it), CR3 and EFER there, a string read by virtual address,
  /// and the write system call's handler hit from user space (hs-writes).
  @Test func gdbBreaksInStartKernelAndInTheWriteSystemCall() throws {
    let socket = DebugServerProcess.freshSocketPath()
    let server = try ChildProcess(
      LinuxFixture.executable!,
      ["debug", "--gdb", "unix:" + socket]
        + LinuxFixture.arguments(commandLine: "hyperstep.run=writes").dropFirst(),  // "run" -> "debug"
      stdout: .discard)
    #expect(server.poll(seconds: 30) { server.errorsText.contains("waiting for a debugger on") })
    let directory = LinuxFixture.directory!
    let gdb = try ChildProcess(
      "/usr/bin/gdb",
      [
        "-batch", "-nx", "-ex", "set pagination off", "-ex", "set confirm off", "-ex",
        "file \(directory)/vmlinux-symbols.elf", "-ex", "target remote \(socket)", "-ex", "break start_kernel",
        "-ex", "continue", "-ex", "info registers rip cr3 efer", "-ex", "x/s &linux_banner", "-ex",
        "break __x64_sys_write", "-ex", "continue", "-ex", "bt 3", "-ex", "delete", "-ex", "continue",
      ], stderr: .intoStandardOutput)
    #expect(gdb.wait(timeout: 600), "gdb: \(gdb.outputText.suffix(800))")
    let output = gdb.outputText
    let startKernel = try #require(Self.symbols["start_kernel"])
    let writeHandler = try #require(Self.symbols["__x64_sys_write"])
    // head_64.S loads early_top_pgt's physical address (its link address minus
    // __START_KERNEL_map, 0xffffffff80000000) into CR3 before jumping to C.
    let earlyTables = try #require(Self.symbols["early_top_pgt"]) - 0xffff_ffff_8000_0000
    #expect(output.contains("Breakpoint 1, \(Self.hex(startKernel)) in start_kernel ()"), "\(output)")
    #expect(output.contains("cr3            \(Self.hex(earlyTables))"))
    // EFER in long mode: LME (bit 8) and LMA (bit 10) set, as the SDM requires of IA-32e mode.
    let eferLine = output.split(separator: "\n").first { $0.hasPrefix("efer") }
    let efer = eferLine.flatMap { UInt64($0.split(separator: " ")[1].dropFirst(2), radix: 16) }
    #expect(efer.map { $0 & 0x500 == 0x500 } == true, "\(eferLine ?? "no efer line")")
    let version = try String(contentsOfFile: directory + "/version", encoding: .utf8)
    // The package is linux-image-6.1.0-N-amd64: the banner names that release.
    let release = String(version.split(separator: " ")[0].dropFirst("linux-image-".count))
    #expect(output.contains("\"Linux version \(release) "))
    #expect(output.contains("Breakpoint 2, \(Self.hex(writeHandler)) in __x64_sys_write ()"))
    #expect(output.contains("in do_syscall_64 ()"))
    #expect(output.contains("exited normally"))
    #expect(server.wait(timeout: 60))
    #expect(server.status == 0)
  }

  /// A symbolized trace of one system call, from entry_SYSCALL_64 to the SYSRET path, with
  /// its call tree: the kernel's entry code calls do_syscall_64, which dispatches through
  /// x64_sys_call (arch/x86/entry/common.c in 6.1).
  @Test func aSystemCallIsTracedFromEntryToReturnWithItsCallTree() throws {
    let directory = LinuxFixture.directory!
    let output = NSTemporaryDirectory() + "hyperstep-syscall-\(UUID().uuidString.prefix(8)).trace"
    defer { try? FileManager.default.removeItem(atPath: output) }
    let run = try LinuxFixture.run(
      ["trace"] + LinuxFixture.arguments(commandLine: "hyperstep.run=writes").dropFirst() + [
        "--symbols", directory + "/System.map", "--from", "entry_SYSCALL_64", "--until",
        "entry_SYSRETQ_unsafe_stack", "--format", "calltree", "--output", output,
      ])
    #expect(run.status == 0, "\(run.stderr.suffix(400))")
    let tree = try String(contentsOfFile: output, encoding: .utf8)
    let lines = tree.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
    #expect(lines.first?.hasPrefix("entry_SYSCALL_64  calls=1") == true, "\(tree.prefix(400))")
    #expect(lines.contains { $0.hasPrefix("do_syscall_64  calls=1") })
    #expect(lines.contains { $0.hasPrefix("x64_sys_call  calls=1") })
    #expect(lines.contains { $0.hasPrefix("syscall_return_via_sysret  calls=1") })
    // Nothing from user space: the trace ends at the return path.
    #expect(!tree.contains("__per_cpu"))
  }

  /// LSTAR is written with entry_SYSCALL_64 by syscall_init (arch/x86/kernel/cpu/common.c),
  /// seen as an MSR event in a trace of that function.
  @Test func lstarIsWrittenWithTheSystemCallEntry() throws {
    let directory = LinuxFixture.directory!
    let entry = try #require(Self.symbols["entry_SYSCALL_64"])
    let run = try LinuxFixture.run(
      ["trace"] + LinuxFixture.arguments(commandLine: "hyperstep.run=poweroff").dropFirst() + [
        "--symbols", directory + "/System.map", "--from", "syscall_init", "--limit", "200", "--msr-events", "LSTAR",
      ])
    #expect(run.status == 0, "\(run.stderr.suffix(400))")
    #expect(run.stdout.contains("msr-write LSTAR \(Self.hex(entry))"), "\(run.stdout.prefix(2000))")
  }

  /// The event console's breakpoint on the write system call's handler (through `--symbols`),
  /// with hs-writes as init (`rdinit=`): the boot's only user process, it makes exactly three
  /// write calls (writes.S). The breakpoint stops before each handler runs, so after three
  /// `c` the console has seen three stops and two lines; `q` then ends it before the third
  /// line is written.
  @Test func theWriteSystemCallBreakpointStopsBeforeEachWrite() throws {
    let directory = LinuxFixture.directory!
    let handler = try #require(Self.symbols["__x64_sys_write"])
    let child = try ChildProcess(
      LinuxFixture.executable!,
      ["monitor"] + LinuxFixture.arguments(commandLine: "rdinit=/bin/hs-writes").dropFirst() + [
        "--symbols", directory + "/System.map",
      ], input: "b __x64_sys_write\nc\nc\nc\nq\n")
    #expect(child.wait(timeout: 300))
    #expect(child.status == 0, "\(child.errorsText)")
    // By Character: the guest's console ends lines with CR LF, one Character in Swift.
    let lines = child.outputText.split(whereSeparator: \.isNewline).map { String($0) }
    let hit = "stop: \(Self.hex(handler)) __x64_sys_write breakpoint"
    let events = lines.filter { $0 == hit || $0.hasPrefix("hs-writes ") }
    #expect(events == [hit, "hs-writes 1", hit, "hs-writes 2", hit], "\(lines.suffix(20))")
  }
}
