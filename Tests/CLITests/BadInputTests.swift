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

  @Test func elfForAnotherMachine() throws {
    var elf = SyntheticELF.haltAtOneMiB
    elf.machine = 183
    let path = try CLI.temporaryFile(elf.bytes, name: "aarch64.elf")
    try expectRefused(["run", "--kernel", path], mentioning: [path, "AArch64"])
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
    try expectRefused(["run", "--memory", "0"], mentioning: ["too small"])
  }

  @Test func absurdMemory() throws {
    try expectRefused(["run", "--memory", "64T"], mentioning: ["more than this host has"])
    try expectRefused(["run", "--memory", "99999999999999999999G"], mentioning: ["--memory"])
  }

  @Test func memoryThatIsNotASize() throws {
    try expectRefused(["run", "--memory", "lots"], mentioning: ["--memory 'lots' is not a size"])
  }

  @Test func badCPUCounts() throws {
    try expectRefused(["run", "--cpus", "0"], mentioning: ["--cpus must be at least 1"])
    try expectRefused(["run", "--cpus", "-1"], mentioning: ["cpus"])
    try expectRefused(["run", "--cpus", "many"], mentioning: ["cpus"])
    try expectRefused(["run", "--cpus", "100000"], mentioning: ["255"])
  }

  @Test func badFormatAndAddress() throws {
    try expectRefused(["run", "--kernel-format", "pe"], mentioning: ["--kernel-format 'pe'"])
    try expectRefused(["run", "--load-address", "here"], mentioning: ["--load-address"])
  }

  @Test func unknownOption() throws {
    try expectRefused(["run", "--bogus"], mentioning: ["--bogus"])
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
    let initrd = try CLI.temporaryFile([UInt8](repeating: 0, count: 8 << 20), name: "big.initrd")
    try expectRefused(
      ["run", "--kernel", kernel, "--initrd", initrd, "--memory", "24M"], mentioning: "the initrd (8 MiB) does not fit")
  }

  @Test func aCommandLineLongerThanTheKernelTakes() throws {
    let kernel = try CLI.temporaryFile(syntheticBzImage(), name: "bzImage-cmdline")
    try expectRefused(
      ["run", "--kernel", kernel, "--cmdline", String(repeating: "x", count: 3000)],
      mentioning: "command line is 3000 bytes; at most 2047 fit")
  }

  @Test func aMissingInitrd() throws {
    let kernel = try CLI.temporaryFile(syntheticBzImage(), name: "bzImage-noinitrd")
    try expectRefused(["run", "--kernel", kernel, "--initrd", "/nonexistent.cpio"], mentioning: "/nonexistent.cpio")
  }
}
