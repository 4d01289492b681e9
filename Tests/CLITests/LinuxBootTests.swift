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
    #expect(child.poll(seconds: 300) { child.outputText.contains("/ # ") }, "no shell prompt: \(child.outputText.suffix(600))")
    child.send("echo hs-$((6*7))\n")
    #expect(child.poll(seconds: 120) { child.outputText.contains("hs-42") })
    child.send("grep -c ^processor /proc/cpuinfo\n")
    #expect(child.poll(seconds: 120) { child.outputText.contains("\n2\r\n") || child.outputText.contains("\n2\n") })
    child.send("poweroff\n")
    #expect(child.wait(timeout: 300))
    #expect(child.status == 0, "stderr: \(child.errorsText)")
    #expect(child.outputText.contains("reboot: Power down"))
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
      run.stderr.contains("hyperstep: error: the guest's kernel panicked: VFS: Unable to mount root fs on unknown-block(0,0)")
    )
  }
}

/// Bad input around a Linux boot: one line on stderr, exit status 2, before anything runs.
@Suite(requiresLinuxFixture) struct DebianKernelBadInputTests {
  @Test func anInitrdThatIsNoArchiveIsRefused() throws {
    let junk = try CLI.temporaryFile(Array(repeating: 0x42, count: 4096), name: "junk-initrd")
    let run = try CLI.run(["run", "--accel", "emu", "--memory", "512M", "--kernel", LinuxFixture.kernel, "--initrd", junk])
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
