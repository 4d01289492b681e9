import TestGuests
import Testing

@testable import Machine

/// Boots each test guest on each engine and checks what it printed and how it ended. The
/// expected values come from the architecture manuals and the boot protocols, not from a run:
/// see each guest's source in Guests/tests for what it prints.
@Suite struct GuestBootTests {
  struct Result {
    var outcome: RunOutcome
    var output: String
  }

  func boot(
    _ guest: GuestImage, on engine: TestEngine, format: ImageFormat = .auto, memory: UInt64 = 64 << 20,
    cpus: Int = 1, commandLine: String = "", timeoutMilliseconds: Int? = 20_000
  ) throws -> Result {
    var configuration = MachineConfiguration(kernel: guest.image, kernelName: guest.name)
    configuration.accelerator = engine.choice
    configuration.format = format
    configuration.memorySize = memory
    configuration.cpuCount = cpus
    configuration.commandLine = commandLine
    configuration.timeoutMilliseconds = timeoutMilliseconds
    let console = CapturedConsole()
    let machine = try Machine(configuration: configuration, console: console)
    let outcome = machine.run()
    return Result(outcome: outcome, output: console.text)
  }

  static let pass = RunOutcome.debugExit(value: 0x10, status: 33)

  @Test(arguments: Engines.all) func realModeFlatBinary(engine: TestEngine) throws {
    let result = try boot(TestGuests.realMode, on: engine, format: .flatReal)
    // CR0 at reset is 0x60000010 (Intel SDM vol. 3, 9.1.1): its low word has only ET set.
    #expect(result.output == "real mode: msw=00000010 cs=00000000\n")
    #expect(result.outcome == Self.pass)
  }

  @Test(arguments: Engines.all) func protectedModeFlatBinary(engine: TestEngine) throws {
    let result = try boot(TestGuests.protectedFlat, on: engine, format: .flatProtected)
    // Hyperstep's protected-mode entry: CR0 = PE | ET, CS = GDT entry 1.
    #expect(result.output == "protected mode: cr0=00000011 cs=00000008\n")
    #expect(result.outcome == Self.pass)
  }

  @Test(arguments: Engines.all) func elf32EntersWithInterruptsOff(engine: TestEngine) throws {
    let result = try boot(TestGuests.protectedElf32, on: engine)
    #expect(result.output == "ELF32 entry: eflags=00000002\n")
    #expect(result.outcome == Self.pass)
  }

  @Test(arguments: Engines.all) func elf64EntersLongModeWithIdentityPaging(engine: TestEngine) throws {
    let result = try boot(TestGuests.longMode, on: engine)
    // EFER.LME (bit 8) and EFER.LMA (bit 10); CR4.PAE (bit 5); the ROM holds HLT (0xf4) bytes.
    #expect(result.output == "long mode: efer=00000500 cr4=00000020 rom=f4f4f4f4\n")
    #expect(result.outcome == Self.pass)
  }

  @Test(arguments: Engines.all) func multibootKernelGetsTheSpecifiedBootState(engine: TestEngine) throws {
    let result = try boot(TestGuests.multiboot, on: engine, commandLine: "console=ttyS0 answer=42")
    // flags: mem (0x1) | cmdline (0x4) | mods (0x8) | mmap (0x40) | boot_loader_name (0x200).
    // mem_lower: 639 KiB below the EBDA; mem_upper: 63 MiB above 1 MiB = 64512 KiB.
    #expect(
      result.output == """
        multiboot: flags=0000024d mem_lower=0000027f mem_upper=0000fc00
        cmdline=console=ttyS0 answer=42
        loader=Hyperstep
        mmap 00000000 0009fc00 00000001
        mmap 0009fc00 00060400 00000002
        mmap 00100000 03f00000 00000001

        """)
    #expect(result.outcome == Self.pass)
  }

  @Test(arguments: Engines.all) func multibootAddressFieldsBootARawImage(engine: TestEngine) throws {
    let result = try boot(TestGuests.multibootAout, on: engine)
    #expect(result.output == "multiboot a.out kludge: entered\n")
    #expect(result.outcome == Self.pass)
  }

  @Test(arguments: Engines.all) func portIOReachesTheBus(engine: TestEngine) throws {
    let result = try boot(TestGuests.portIo, on: engine)
    #expect(result.output == "rep outsb reached the UART\nport I/O checks passed\n")
    #expect(result.outcome == Self.pass)
  }

  @Test(arguments: Engines.all) func mmioToNothingAndToROMIsHarmless(engine: TestEngine) throws {
    let result = try boot(TestGuests.mmio, on: engine)
    #expect(result.output == "MMIO checks passed\n")
    #expect(result.outcome == Self.pass)
  }

  @Test(arguments: Engines.all) func haltWithInterruptsOffIsACleanEnd(engine: TestEngine) throws {
    let result = try boot(TestGuests.halt, on: engine)
    #expect(result.output == "halting with interrupts off\n")
    #expect(result.outcome == .halted)
  }

  @Test(arguments: Engines.all) func haltWithInterruptsOffIsACleanEndWithSeveralVCPUs(engine: TestEngine) throws {
    // With two vCPUs the in-kernel APIC handles HLT; the quiescence check must still see it.
    let result = try boot(TestGuests.halt, on: engine, cpus: 2)
    #expect(result.output == "halting with interrupts off\n")
    #expect(result.outcome == .halted)
  }

  @Test(arguments: Engines.all) func applicationProcessorsStartThroughINITAndSIPI(engine: TestEngine) throws {
    let result = try boot(TestGuests.smp, on: engine, cpus: 2)
    #expect(result.output == "aps: 00000001\n")  // the AP ran its trampoline once
    #expect(result.outcome == Self.pass)
  }

  @Test(arguments: Engines.all) func haltWithNothingToWakeItIsReported(engine: TestEngine) throws {
    let result = try boot(TestGuests.haltInterruptsOn, on: engine)
    guard case .haltedForever(let state) = result.outcome else {
      Issue.record("expected haltedForever, got \(result.outcome)")
      return
    }
    #expect(state.registers.rip == 0x10_0002)  // after sti (1 byte) and hlt (1 byte)
    #expect(state.registers.rflags & 0x200 != 0)
  }

  @Test(arguments: Engines.all) func tripleFaultIsReportedWithTheFaultingState(engine: TestEngine) throws {
    let result = try boot(TestGuests.tripleFault, on: engine)
    #expect(result.output == "about to triple fault\n")
    guard case .tripleFault(let state) = result.outcome else {
      Issue.record("expected tripleFault, got \(result.outcome)")
      return
    }
    #expect(state.special.idt.limit == 0)
    #expect(state.dump.contains("RIP="))
  }

  @Test(arguments: Engines.all) func aGuestSpinningOnAnUnknownPortIsStoppedByTheTimeout(engine: TestEngine) throws {
    let result = try boot(TestGuests.spinOnPort, on: engine, timeoutMilliseconds: 300)
    #expect(result.outcome == .timedOut)
  }

  @Test(arguments: Engines.all) func largeMemoryIsSplitAroundTheDeviceHole(engine: TestEngine) throws {
    let result = try boot(TestGuests.multiboot, on: engine, memory: 4 << 30)
    // 3 GiB below the hole: mem_upper = 3 GiB - 1 MiB = 3144704 KiB = 0x2ffc00.
    #expect(result.output.contains("mem_upper=002ffc00"))
    #expect(result.output.contains("mmap 00000000 40000000 00000001"))  // the 1 GiB at 4 GiB (low 32 bits)
    #expect(result.outcome == Self.pass)
  }

  /// The benchmark guest of Benchmarks/interp-vs-tcg.sh: N from the last word of the command
  /// line (QEMU's form, "FILE N", as well as a bare N), and the checksums of a model written
  /// from the guest's header comment.
  @Test(arguments: Engines.all, [("3", 3), ("compute.elf 2", 2), ("0", 0)])
  func computeBenchmarkGuestPrintsTheModelsChecksums(engine: TestEngine, run: (String, Int)) throws {
    let (commandLine, iterations) = run
    let result = try boot(TestGuests.compute, on: engine, commandLine: commandLine)
    #expect(result.output == ComputeGuestModel.output(iterations: iterations))
    #expect(result.outcome == Self.pass)
  }
}

/// Guests/bench/compute.S's arithmetic written again in Swift from its header comment (not
/// from its code), so that the checksums it prints are checked independently of both engines.
enum ComputeGuestModel {
  static func output(iterations: Int) -> String {
    let words = 1024
    var x: UInt32 = 1
    var sum: UInt32 = 0
    var ordered: UInt32 = 0
    var histogram = [UInt32](repeating: 0, count: 256)
    var buffer = [UInt32](repeating: 0, count: words)
    for _ in 0..<iterations {
      for j in 0..<words {
        x = x &* 1_103_515_245 &+ 12345
        buffer[j] = x ^ (x >> 16)
      }
      for pair in 0..<words / 2 {
        let a = buffer[2 * pair]
        let b = buffer[2 * pair + 1]
        if a > b {
          buffer.swapAt(2 * pair, 2 * pair + 1)
        } else {
          ordered &+= 1
          let mixed = sum ^ a
          sum = mixed << 5 | mixed >> 27
        }
      }
      for j in 0..<words {
        var v = buffer[j]
        v ^= v >> 15
        v = v &* 0x2c1b_3c6d
        v ^= v >> 12
        buffer[j] = v
        sum = sum &* 33 &+ v
      }
      for word in buffer { histogram[Int(word & 0xff)] &+= 1 }
    }
    let folded = histogram.reduce(UInt32(0)) { $0 &* 31 &+ $1 }
    func hex(_ value: UInt32) -> String {
      let digits = String(value, radix: 16)
      return String(repeating: "0", count: 8 - digits.count) + digits
    }
    return "compute: sum=\(hex(sum)) ordered=\(hex(ordered)) hist=\(hex(folded))\n"
  }
}

@Suite struct GuestEventTests {
  @Test(arguments: Engines.all) func everyHandlerIsReachedOnceInAPlainRun(engine: TestEngine) throws {
    // INT3 and INT n included: where KVM cannot deliver them (an emulation failure), the
    // run loop delivers them through the guest's IDT itself.
    var configuration = MachineConfiguration(kernel: TestGuests.longEvents.image, kernelName: "long_events")
    configuration.timeoutMilliseconds = 20_000
    configuration.accelerator = engine.choice
    let console = CapturedConsole()
    let outcome = try Machine(configuration: configuration, console: console).run()
    #expect(console.text == ExpectedOutput.longEvents)
    #expect(outcome == .debugExit(value: 0x10, status: 33))
  }

  @Test(arguments: Engines.all) func protectedModeHandlersAreReachedOnceInAPlainRun(engine: TestEngine) throws {
    // IRET too: KVM's emulator handles it in real mode only, so the run loop retires it.
    var configuration = MachineConfiguration(kernel: TestGuests.protectedEvents.image, kernelName: "protected_events")
    configuration.timeoutMilliseconds = 20_000
    configuration.accelerator = engine.choice
    let console = CapturedConsole()
    let outcome = try Machine(configuration: configuration, console: console).run()
    #expect(console.text == ExpectedOutput.protectedEvents)
    #expect(outcome == .debugExit(value: 0x10, status: 33))
  }
}
