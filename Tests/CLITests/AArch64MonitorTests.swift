import AArch64Guests
import Foundation
import Machine
import Testing

/// `hyperstep monitor` on an AArch64 guest: the x86 console's commands and lines, with
/// addresses from the guest's symbols and its source's layout.
@Suite struct AArch64MonitorTests {
  /// A breakpoint at a64_exclusive's STXR (`store`), a continue to it, memory by symbol (the
  /// counter, still 0 before the first STXR), three steps through the successful STXR (CBZ
  /// taken to store + 0x10, SUBS, B.NE), a continue to the next hit, and the end of input.
  @Test func breakpointMemoryAndStepsOnAnAArch64Guest() throws {
    let guest = AArch64Guests.a64Exclusive
    let symbols = try ELFSymbols(guest.elf)
    let start = try #require(symbols["_start"])
    let store = try #require(symbols["store"])
    let counter = try #require(symbols["counter"])
    let kernel = try CLI.temporaryFile(guest.elf, name: "a64-monitor.elf")
    let run = try CLI.run(
      ["monitor", "--kernel", kernel], input: "b store\nc\nm counter 8\ns 3\nc\nb nowhere\nx\n")
    func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }
    let expected = [
      "stop: \(hex(start)) _start",
      "breakpoint at \(hex(store))",
      "stop: \(hex(store)) store breakpoint",
      "\(hex(counter)): 00 00 00 00 00 00 00 00",
      "step: \(hex(store + 4)) store+0x4",
      "step: \(hex(store + 0x10)) store+0x10",
      "stop: \(hex(store + 0x14)) store+0x14",
      "stop: \(hex(store)) store breakpoint",
      "no such symbol 'nowhere' in \(kernel) (SYMBOL or SYMBOL+0xOFFSET)",
      "unknown command 'x': s [N], c, r, m ADDR LEN, b ADDR|SYMBOL, q",
    ].map { $0 + "\n" }.joined()
    #expect(run.stdout == expected)
    #expect(run.status == 0)
  }

  /// `r` shows the AArch64 registers: X0-X30, SP, PC and PSTATE (EL1h at entry, DAIF masked:
  /// 0x3c5), then the EL1 system registers (SCTLR_EL1 at its reset value).
  @Test func registersAtTheEntryPoint() throws {
    let guest = AArch64Guests.a64Exclusive
    let start = try #require(try ELFSymbols(guest.elf)["_start"])
    let kernel = try CLI.temporaryFile(guest.elf, name: "a64-monitor-r.elf")
    let run = try CLI.run(["monitor", "--kernel", kernel], input: "r\nq\n")
    let lines = run.stdout.split(separator: "\n").map(String.init)
    #expect(lines.count == 1 + 8 + 3, "\(run.stdout)")
    #expect(lines.contains { $0.hasPrefix("PC=\(String(format: "%016llx", start)) PSTATE=00000000000003c5 ---- EL1h") })
    #expect(lines.contains { $0.hasPrefix("SCTLR_EL1=0000000030d00800 ") })
    #expect(run.status == 0)
  }

  /// Continued to the end: the guest's output, then the exit, and its status.
  @Test func continuedToTheEnd() throws {
    let kernel = try CLI.temporaryFile(AArch64Guests.a64Exclusive.elf, name: "a64-monitor-end.elf")
    let run = try CLI.run(["monitor", "--kernel", kernel], input: "c\n")
    #expect(run.stdout.contains("exclusive: counter=0000000000000005"))
    #expect(run.stdout.hasSuffix(" exit debug-exit\n"), "\(run.stdout)")
    #expect(run.status == 0)
  }
}
