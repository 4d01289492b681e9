import Foundation
import TestGuests
import Testing

/// Every kind of bad input gets one line on stderr naming the problem, exit status 2, and
/// no crash. None of these need KVM: they are refused before /dev/kvm is opened.
@Suite struct BadInputTests {
  func expectRefused(
    _ arguments: [String], mentioning fragments: [String], timeout: Double = 60,
    sourceLocation: SourceLocation = #_sourceLocation
  ) throws {
    let run = try CLI.run(arguments, timeout: timeout)
    #expect(run.status == 2, "status \(run.status) for \(arguments)", sourceLocation: sourceLocation)
    #expect(run.stdout.isEmpty, sourceLocation: sourceLocation)
    let lines = run.stderr.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
    #expect(lines.count == 1, "expected one line, got: \(run.stderr)", sourceLocation: sourceLocation)
    #expect(run.stderr.hasPrefix("hyperstep: error: "), sourceLocation: sourceLocation)
    for fragment in fragments {
      #expect(
        run.stderr.contains(fragment), "'\(fragment)' missing from: \(run.stderr)", sourceLocation: sourceLocation)
    }
  }

  @Test func missingFile() throws {
    try expectRefused(
      ["run", "--kernel", "/nonexistent/kernel.elf"], mentioning: ["/nonexistent/kernel.elf", "No such file"])
  }

  @Test func directoryInsteadOfFile() throws {
    try expectRefused(["run", "--kernel", "/tmp"], mentioning: ["/tmp", "directory"])
  }

  /// Devices used to say "Invalid argument" (the errno HostIO chose), which names no problem.
  @Test func devicesInsteadOfFiles() throws {
    for device in ["/dev/zero", "/dev/null"] {
      try expectRefused(
        ["run", "--kernel", device],
        mentioning: ["\(device): not a regular file (a character device); give a kernel image file"])
    }
    try expectRefused(
      ["run", "--initrd", "/dev/zero"],
      mentioning: ["/dev/zero: not a regular file (a character device); give an initrd"])
    try expectRefused(
      ["trace", "--symbols", "/dev/null"],
      mentioning: ["/dev/null: not a regular file (a character device); give an ELF or System.map file"])
  }

  /// Opening a FIFO for reading waits for a writer; the kernel must be refused at once instead.
  @Test func fifoInsteadOfFileIsRefusedWithoutWaiting() throws {
    let path = NSTemporaryDirectory() + "hyperstep-fifo-\(getpid())-\(UUID().uuidString.prefix(8))"
    #expect(mkfifo(path, 0o600) == 0)
    defer { unlink(path) }
    try expectRefused(["run", "--kernel", path], mentioning: ["\(path): not a regular file (a FIFO)"], timeout: 15)
  }

  @Test func emptyFile() throws {
    let path = try CLI.temporaryFile([], name: "empty.elf")
    try expectRefused(["run", "--kernel", path], mentioning: [path, "empty"])
  }

  @Test func badMagic() throws {
    let path = try CLI.temporaryFile(Array("MZ this is not a kernel".utf8), name: "bad-magic.bin")
    try expectRefused(["run", "--kernel", path], mentioning: [path, "bad magic: 4d 5a 20 74"])
  }

  @Test func truncatedELF() throws {
    let path = try CLI.temporaryFile(Array(TestGuests.longMode.elf.prefix(100)), name: "truncated.elf")
    try expectRefused(["run", "--kernel", path], mentioning: [path, "truncated"])
  }

  /// An ELF for a machine Hyperstep has no CPU for (AArch64 ones boot: AArch64BadInputTests).
  @Test func elfForAnotherMachine() throws {
    var elf = SyntheticELF.haltAtOneMiB
    elf.machine = 243
    let path = try CLI.temporaryFile(elf.bytes, name: "riscv.elf")
    try expectRefused(["run", "--kernel", path], mentioning: [path, "RISC-V"])
  }

  @Test func segmentOutsideGuestRAM() throws {
    let elf = SyntheticELF(entry: 0x10_0000, segments: [.init(at: 0x8000_0000, bytes: [0xf4])])
    let path = try CLI.temporaryFile(elf.bytes, name: "high.elf")
    try expectRefused(["run", "--kernel", path, "--memory", "64M"], mentioning: [path, "outside guest RAM"])
  }

  @Test func entryOutsideGuestRAM() throws {
    let elf = SyntheticELF(entry: 0x9000_0000, segments: [.init(at: 0x10_0000, bytes: [0xf4])])
    let path = try CLI.temporaryFile(elf.bytes, name: "entry.elf")
    try expectRefused(["run", "--kernel", path], mentioning: [path, "entry point 0x90000000"])
  }

  @Test func overlappingSegments() throws {
    let elf = SyntheticELF(
      entry: 0x10_0000, segments: [.init(at: 0x10_0000, bytes: [0xf4, 0xf4]), .init(at: 0x10_0001, bytes: [0xf4])])
    let path = try CLI.temporaryFile(elf.bytes, name: "overlap.elf")
    try expectRefused(["run", "--kernel", path], mentioning: [path, "overlap"])
  }

  @Test func zeroMemory() throws {
    try expectRefused(["run", "--memory", "0"], mentioning: ["--memory 0: too small; Hyperstep needs at least 2 MiB"])
  }

  @Test func absurdMemory() throws {
    try expectRefused(["run", "--memory", "64T"], mentioning: ["--memory 64T: more than this host has"])
    try expectRefused(
      ["run", "--memory", "99999999999999999999G"],
      mentioning: ["--memory 99999999999999999999G: more than this host has"])
  }

  @Test func memoryThatIsNotASize() throws {
    try expectRefused(["run", "--memory", "lots"], mentioning: ["--memory lots: not a size (try 64M, 1G or 512K)"])
    try expectRefused(["run", "--memory", "-5"], mentioning: ["--memory -5: not a size (try 64M, 1G or 512K)"])
    try expectRefused(["run", "--memory", ""], mentioning: ["--memory '': not a size"])
    try expectRefused(["run", "--memory", "2049K"], mentioning: ["--memory 2049K: not a whole number of 4 KiB pages"])
  }

  @Test func badCPUCounts() throws {
    try expectRefused(["run", "--cpus", "0"], mentioning: ["--cpus 0: must be at least 1"])
    try expectRefused(["run", "--cpus", "-1"], mentioning: ["--cpus -1: must be at least 1"])
    try expectRefused(["run", "--cpus", "many"], mentioning: ["--cpus many: not a whole number"])
    try expectRefused(["run", "--cpus", "1.5"], mentioning: ["--cpus 1.5: not a whole number"])
    try expectRefused(["run", "--cpus", "100000"], mentioning: ["--cpus 100000: at most 255"])
    try expectRefused(
      ["run", "--cpus", "99999999999999999999"], mentioning: ["--cpus 99999999999999999999: at most 255"])
  }

  /// The shared machine options are refused alike by every subcommand, and the default one.
  @Test func everySubcommandRefusesNegativeNumbers() throws {
    for command in [["run"], ["trace"], ["debug"], ["monitor"], []] {
      try expectRefused(command + ["--cpus", "-1"], mentioning: ["--cpus -1: must be at least 1"], timeout: 15)
      try expectRefused(command + ["--memory", "-5"], mentioning: ["--memory -5: not a size"], timeout: 15)
      try expectRefused(command + ["--timeout", "-1"], mentioning: ["--timeout -1: must be more than 0"], timeout: 15)
    }
  }

  @Test func badTimeouts() throws {
    let refusals: [(String, String)] = [
      ("1e308", "at most 10000000 seconds"),
      ("10000001", "at most 10000000 seconds"),
      ("inf", "at most 10000000 seconds"),
      ("nan", "not a number of seconds"),
      ("soon", "not a number of seconds"),
      ("0", "must be more than 0 seconds"),
      ("-1", "must be more than 0 seconds"),
      ("-inf", "must be more than 0 seconds"),
    ]
    for (value, problem) in refusals {
      try expectRefused(["run", "--timeout", value], mentioning: ["--timeout \(value): \(problem)"])
    }
  }

  @Test func badFormatAndAddress() throws {
    try expectRefused(["run", "--kernel-format", "pe"], mentioning: ["--kernel-format 'pe'"])
    try expectRefused(
      ["run", "--load-address", "here"], mentioning: ["--load-address here: not an address (try 0x7c00)"])
    try expectRefused(["run", "--load-address", "-5"], mentioning: ["--load-address -5: must not be negative"])
    try expectRefused(
      ["run", "--load-address", "0x10000000000000000"],
      mentioning: ["--load-address 0x10000000000000000: at most 0xffffffffffffffff (64 bits)"])
  }

  @Test func badDebugExitSuccessValues() throws {
    try expectRefused(
      ["run", "--debug-exit-success", "-1"], mentioning: ["--debug-exit-success -1: must not be negative"])
    try expectRefused(
      ["run", "--debug-exit-success", "0x100000000"],
      mentioning: ["--debug-exit-success 0x100000000: at most 0xffffffff (32 bits)"])
    try expectRefused(["run", "--debug-exit-success", "yes"], mentioning: ["--debug-exit-success yes: not a number"])
  }

  @Test func badTraceNumbers() throws {
    let refusals: [([String], String)] = [
      (["--limit", "-3"], "--limit -3: must be at least 1"),
      (["--limit", "0"], "--limit 0: must be at least 1"),
      (["--limit", "99999999999999999999"], "--limit 99999999999999999999: at most 9223372036854775807"),
      (["--limit", "lots"], "--limit lots: not a whole number"),
      (["--from", "-5"], "--from -5: must not be negative"),
      (["--until", "-0x10"], "--until -0x10: must not be negative"),
      (["--from", "0x1ffffffffffffffff"], "--from 0x1ffffffffffffffff: at most 0xffffffffffffffff"),
      (["--filter-range", "-5"], "--filter-range -5: not START-END"),
      (["--filter-range", "0x10--5"], "--filter-range 0x10--5: the end -5 must not be negative"),
      (["--filter-range", "0x1-0x1ffffffffffffffff"], "the end 0x1ffffffffffffffff is more than 64 bits"),
      (["--filter-cr3", "-4096"], "--filter-cr3 -4096: must not be negative"),
      (["--filter-cr3", "0xfff0000000000000"], "--filter-cr3 0xfff0000000000000: above the 52-bit physical"),
      (["--msr-events", "LSTAR,-1"], "--msr-events -1: must not be negative"),
      (["--msr-events", "0x1ffffffff"], "--msr-events 0x1ffffffff: at most 0xffffffff (32 bits)"),
    ]
    for (arguments, fragment) in refusals {
      try expectRefused(["trace"] + arguments, mentioning: [fragment])
    }
  }

  // ArgumentParser's own refusals: one line with its wording, status 2.

  @Test func unknownOption() throws {
    try expectRefused(["run", "--bogus"], mentioning: ["Unknown option '--bogus'"])
  }

  @Test func missingValues() throws {
    try expectRefused(["run", "--cpus"], mentioning: ["Missing value for '--cpus <cpus>'"])
    try expectRefused(["trace", "--limit"], mentioning: ["Missing value for '--limit <limit>'"])
    try expectRefused(["run", "--kernel"], mentioning: ["Missing value for '--kernel <file>'"])
  }

  @Test func unexpectedArgument() throws {
    try expectRefused(["run", "extra"], mentioning: ["Unexpected argument 'extra'"])
  }

  // `hyperstep debug --gdb`: checked before the VM is made (so no KVM is needed). A server
  // that did start instead would wait for a debugger: the short timeout ends such a failure.

  @Test func gdbSocketPathOverARegularFileIsRefusedAndTheFileKept() throws {
    let path = try CLI.temporaryFile(Array("a user's notes\n".utf8), name: "notes.txt")
    try expectRefused(
      ["debug", "--gdb", "unix:\(path)"], mentioning: ["--gdb unix:\(path)", "not a socket", "regular file"],
      timeout: 15)
    #expect(FileManager.default.contents(atPath: path) == Data("a user's notes\n".utf8))
  }

  @Test func gdbSocketPathOnADirectoryIsRefused() throws {
    let directory = NSTemporaryDirectory() + "hyperstep-dir-\(getpid())-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    try expectRefused(["debug", "--gdb", "unix:\(directory)"], mentioning: ["not a socket", "directory"], timeout: 15)
    var isDirectory: ObjCBool = false
    #expect(FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) && isDirectory.boolValue)
  }

  @Test func gdbSocketPathThatIsEmptyIsRefused() throws {
    try expectRefused(["debug", "--gdb", "unix:"], mentioning: ["--gdb unix:", "no socket path"], timeout: 15)
  }

  @Test func gdbSocketSomeoneListensOnIsRefused() throws {
    let path = DebugServerProcess.freshSocketPath()
    let listener = boundUnixSocket(path, listening: true)
    defer {
      close(listener)
      unlink(path)
    }
    try expectRefused(
      ["debug", "--gdb", "unix:\(path)"], mentioning: [path, "something is listening on it"], timeout: 15)
    // Still the test's own socket: a client reaches it.
    #expect((try? RawClient(path: path)) != nil)
  }

  @Test func badGDBAddresses() throws {
    let refusals: [(String, String)] = [
      ("[::1]", "not HOST:PORT"),
      ("::1:1234", "IPv6 addresses go in brackets"),
      ("[::1:1234", "no closing ']'"),
      ("[localhost]:1234", "'localhost' is not an IPv6 address"),
      ("[]:1234", "not HOST:PORT"),
      ("localhost:", "is not a port number"),
      ("127.0.0.1:99999", "'99999' is not a port number"),
      ("127.0.0.1:http", "'http' is not a port number"),
      ("1234", "not HOST:PORT"),
    ]
    for (address, fragment) in refusals {
      try expectRefused(["debug", "--gdb", address], mentioning: ["--gdb \(address)", fragment], timeout: 15)
    }
  }

  @Test func badGDBArchitecture() throws {
    try expectRefused(["debug", "--gdb-arch", "arm"], mentioning: ["--gdb-arch 'arm'", "i386, x86-64 or auto"])
  }

  @Test func helpIsNotAnError() throws {
    let run = try CLI.run(["run", "--help"])
    #expect(run.status == 0)
    #expect(run.stdout.contains("--kernel"))
  }
}

/// Linux kernels that cannot be booted: one line, status 2.
@Suite struct LinuxBadInputTests {
  func expectRefused(_ arguments: [String], mentioning fragment: String) throws {
    let run = try CLI.run(arguments)
    #expect(run.status == 2, "\(run.stderr)")
    #expect(run.stderr.split(separator: "\n").count == 1, "\(run.stderr)")
    #expect(run.stderr.contains(fragment), "\(run.stderr)")
  }

  @Test func aBzImageTooOldFor64BitBoot() throws {
    let path = try CLI.temporaryFile(syntheticBzImage(version: 0x20a), name: "old-bzImage")
    try expectRefused(
      ["run", "--kernel", path],
      mentioning: "\(path): unsupported image: Linux boot protocol 2.10 has no 64-bit entry point")
  }

  @Test func aBzImageWithoutItsBootSectorSignature() throws {
    var bytes = syntheticBzImage()
    bytes[0x1fe] = 0
    let path = try CLI.temporaryFile(bytes, name: "unsigned-bzImage")
    try expectRefused(["run", "--kernel", path], mentioning: "0xaa55")
  }

  @Test func anInitrdLargerThanMemoryAllows() throws {
    let kernel = try CLI.temporaryFile(syntheticBzImage(), name: "bzImage")
    // A gzip member's magic first, so that it passes for an initrd (InitrdFormat).
    let initrd = try CLI.temporaryFile([0x1f, 0x8b] + [UInt8](repeating: 0, count: (8 << 20) - 2), name: "big.initrd")
    try expectRefused(
      ["run", "--kernel", kernel, "--linux-decompressor", "guest", "--initrd", initrd, "--memory", "24M"],
      mentioning: "the initrd (8 MiB) does not fit")
  }

  @Test func aCommandLineLongerThanTheKernelTakes() throws {
    let kernel = try CLI.temporaryFile(syntheticBzImage(), name: "bzImage-cmdline")
    try expectRefused(
      ["run", "--kernel", kernel, "--linux-decompressor", "guest", "--cmdline", String(repeating: "x", count: 3000)],
      mentioning: "command line is 3000 bytes; at most 2047 fit")
  }

  @Test func aMissingInitrd() throws {
    let kernel = try CLI.temporaryFile(syntheticBzImage(), name: "bzImage-noinitrd")
    try expectRefused(["run", "--kernel", kernel, "--initrd", "/nonexistent.cpio"], mentioning: "/nonexistent.cpio")
  }
}
