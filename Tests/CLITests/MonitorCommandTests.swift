import Foundation
import TestGuests
import Testing

/// `hyperstep monitor`, driven by a script on standard input as xen-access can be.
@Suite(requiresKVM) struct MonitorCommandTests {
  @Test func theGuestsRequestStartsAnInspectableSession() throws {
    let kernel = try CLI.temporaryFile(TestGuests.guestRequest.image, name: "monitor.elf")
    let run = try CLI.run(
      ["monitor", "--kernel", kernel], input: "s\ns 2\nm traced 4\nb untraced\nc\nbogus\nr\nc\n")
    #expect(run.status == 33, "\(run.stderr)")  // the guest ran on to its own debug exit
    let lines = run.stdout.replacingOccurrences(of: "(hyperstep) ", with: "").split(separator: "\n").map(String.init)
    // Addresses from `llvm-objdump -d guest_request.elf`: traced = 0x10000a (nop), 0x10000b
    // (add $2,%ebx), 0x10000e (xor), 0x100010 (out), untraced = 0x100011.
    #expect(lines[0] == "stop: 0x10000a traced request 1")
    #expect(lines[1] == "stop: 0x10000b traced+0x1")
    #expect(lines[2] == "step: 0x10000e traced+0x4")
    #expect(lines[3] == "stop: 0x100010 traced+0x6")
    #expect(lines[4] == "0x10000a: 90 83 c3 02")  // nop; add $2,%ebx
    #expect(lines[5] == "breakpoint at 0x100011")
    #expect(lines[6] == "stop: 0x100011 untraced breakpoint")
    #expect(lines[7].hasPrefix("unknown command 'bogus'"))
    #expect(lines[8].hasPrefix("RAX=") && lines.contains { $0.hasPrefix("RIP=0000000000100011") })
    #expect(lines.last == "stop: 0x100017 untraced+0x6 exit debug-exit")
  }

  @Test func endOfInputQuits() throws {
    let kernel = try CLI.temporaryFile(TestGuests.guestRequest.image, name: "monitor-eof.elf")
    let run = try CLI.run(["monitor", "--kernel", kernel], input: "")
    #expect(run.status == 0)
    #expect(run.stdout.hasPrefix("stop: 0x10000a traced request 1\n"))
  }
}
