import DemoGuest
import Foundation
import Machine
import TestGuests
import Testing

/// gdb on the bundled demo guest, a 32-bit Multiboot kernel, given its ELF the usual way
/// (`gdb demo.elf -ex 'target remote ...'`). This file imports DemoGuest alone: TestGuests
/// has a `GuestImage` of its own.
@Suite(
  .enabled(if: hasGDB, "SKIPPED: /usr/bin/gdb is missing (scripts/test.sh, the README's test command, installs it)"))
struct DemoGuestGDBTests {
  let elf: String
  let symbols: [ELFFile.Symbol]

  init() throws {
    elf = try CLI.temporaryFile(DemoGuest.demo.elf, name: "demo.elf")
    symbols = try ELFFile(DemoGuest.demo.elf).symbols()
  }

  func address(_ name: String) throws -> UInt64 {
    try #require(symbols.first { $0.name == name }?.address, "no \(name) in demo.elf")
  }

  @Test(arguments: Engines.all) func breakpointAndRegistersInThe32BitDemo(engine: TestEngine) throws {
    let server = try DebugServerProcess(engine: engine, kernel: DemoGuest.demo.image, name: "demo")
    let putdec = try address("putdec")
    let output = try server.gdb(
      [
        "break putdec", "continue", "p/x $pc", "p/x $eip", "p/x $eax", "p/x $edi", "p/x $ebp", "info registers eip",
        "stepi", "p/x $eip", "p/x $ecx", "kill",
      ], program: elf)
    #expect(server.finish() == 0, "\(output)")
    #expect(!output.contains("not compatible") && !output.contains("badly formatted"), "\(output)")
    // From demo.S and the Multiboot specification: putdec is called with the memory size in
    // MiB in %eax ((mem_upper + 1024) >> 10 = 64 for the default 64 MiB), %edi keeps the
    // loader's magic 0x2BADB002 and %ebp its information pointer (0xf000, see the README's
    // boot state). putdec's first instruction, `mov $10, %ecx`, is B9 id: 5 bytes.
    #expect(printedValues(output) == [putdec, putdec, 64, 0x2bad_b002, 0xf000, putdec + 5, 10], "\(output)")
    #expect(output.contains("eip            0x\(String(putdec, radix: 16))"), "\(output)")
    #expect(output.contains("<putdec>"), "\(output)")
  }

  @Test(arguments: Engines.all) func the32BitDemoThroughTheX86_64Description(engine: TestEngine) throws {
    // --gdb-arch x86-64, for a 32-bit kernel that will enter long mode: gdb is told to expect
    // x86-64 before it reads the ELF32 symbols, and sees 64-bit registers.
    let server = try DebugServerProcess(
      engine: engine, kernel: DemoGuest.demo.image, name: "demo", extra: ["--gdb-arch", "x86-64"])
    let start = try address("_start")
    let output = try server.gdb(
      ["show architecture", "p/x $rip", "p/x $rax", "kill"], symbolFile: elf, before: ["set architecture i386:x86-64"])
    #expect(server.finish() == 0, "\(output)")
    #expect(output.contains("i386:x86-64"), "\(output)")
    // The Multiboot entry state: EAX = 0x2BADB002 (README, Multiboot specification 3.2).
    #expect(printedValues(output) == [start, 0x2bad_b002], "\(output)")
  }
}
