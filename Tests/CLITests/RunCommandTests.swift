import Foundation
import TestGuests
import Testing

/// `hyperstep run` end to end, as a user would call it.
@Suite(requiresKVM) struct RunCommandTests {
  @Test func demoGuestPrintsItsBannerAndExitsZero() throws {
    let run = try CLI.run(["run"])
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.hasPrefix("Hyperstep demo guest: hello from a Multiboot kernel running under KVM\n"))
    #expect(run.stdout.contains("guest memory: 64 MiB\n"))
    #expect(run.stderr.isEmpty)
  }

  @Test func demoGuestSeesTheCommandLineAndMemorySize() throws {
    let run = try CLI.run(["run", "--memory", "128M", "--cmdline", "hello there"])
    #expect(run.status == 0)
    #expect(run.stdout.contains("guest memory: 128 MiB\n"))
    #expect(run.stdout.contains("command line: \"hello there\"\n"))
  }

  @Test func noSubcommandRunsTheDemoToo() throws {
    let run = try CLI.run([])
    #expect(run.status == 0)
    #expect(run.stdout.hasPrefix("Hyperstep demo guest"))
  }

  @Test func debugExitStatusIsPassedThrough() throws {
    let kernel = try CLI.temporaryFile(TestGuests.longMode.image, name: "long_mode.elf")
    let run = try CLI.run(["run", "--kernel", kernel])
    #expect(run.status == 33)  // (0x10 << 1) | 1
    #expect(run.stdout.hasPrefix("long mode:"))
    let mapped = try CLI.run(["run", "--kernel", kernel, "--debug-exit-success", "0x10"])
    #expect(mapped.status == 0)
  }

  @Test func aCommandLineForAKernelThatCannotReceiveOneIsFlagged() throws {
    let kernel = try CLI.temporaryFile(TestGuests.halt.image, name: "halt-cmdline.elf")
    let run = try CLI.run(["run", "--kernel", kernel, "--cmdline", "quiet"])
    #expect(run.status == 0)
    #expect(run.stderr == "hyperstep: warning: --cmdline is ignored: ELF64 kernels are given no command line\n")
  }

  @Test func flatBinaryNeedsItsFormat() throws {
    let kernel = try CLI.temporaryFile(TestGuests.realMode.image, name: "real_mode.bin")
    let run = try CLI.run(["run", "--kernel", kernel, "--kernel-format", "flat-real"])
    #expect(run.status == 33)
    #expect(run.stdout == "real mode: msw=00000010 cs=00000000\n")
  }

  @Test func cleanHaltExitsZero() throws {
    let kernel = try CLI.temporaryFile(TestGuests.halt.image, name: "halt.elf")
    let run = try CLI.run(["run", "--kernel", kernel])
    #expect(run.status == 0)
    #expect(run.stdout == "halting with interrupts off\n")
  }

  @Test func tripleFaultGivesAOneLineErrorAndARegisterDump() throws {
    let kernel = try CLI.temporaryFile(TestGuests.tripleFault.image, name: "triple_fault.elf")
    let run = try CLI.run(["run", "--kernel", kernel])
    #expect(run.status == 4, "stderr: \(run.stderr)")
    #expect(run.stdout == "about to triple fault\n", "stderr: \(run.stderr)")  // output before the crash is not lost
    let lines = run.stderr.split(separator: "\n")
    #expect(lines.first == "hyperstep: error: guest triple-faulted (shutdown) on vCPU 0")
    #expect(run.stderr.contains("RIP="))
    #expect(run.stderr.contains("CR0="))
  }

  @Test func haltWithInterruptsOnIsReportedNotHung() throws {
    let kernel = try CLI.temporaryFile(TestGuests.haltInterruptsOn.image, name: "halt_sti.elf")
    let run = try CLI.run(["run", "--kernel", kernel])
    #expect(run.status == 6)
    #expect(run.stderr.hasPrefix("hyperstep: error: guest halted with interrupts enabled"))
  }

  @Test func aGuestSpinningOnPortsIsStoppedByTimeout() throws {
    let kernel = try CLI.temporaryFile(TestGuests.spinOnPort.image, name: "spin.elf")
    let run = try CLI.run(["run", "--kernel", kernel, "--timeout", "0.5"])
    #expect(run.status == 8)
    #expect(run.stderr == "hyperstep: error: guest still running after --timeout 0.5 s; stopped it\n")
  }

  @Test func romAndUnmappedWritesDoNotCrash() throws {
    let kernel = try CLI.temporaryFile(TestGuests.mmio.image, name: "mmio.elf")
    let run = try CLI.run(["run", "--kernel", kernel])
    #expect(run.status == 33)
    #expect(run.stdout == "MMIO checks passed\n")
  }
}
