import Foundation
import KVM
import Machine
import TestGuests
import Testing

/// `hyperstep trace` on a KVM machine moves the vCPU to the interpreter where tracing begins
/// (`--trace-accel emu`, the default), or keeps it on KVM (`--trace-accel kvm`). The line
/// for each instruction is the same whichever engine steps it: the three traces here (KVM
/// switched to the interpreter, KVM throughout, the interpreter throughout) must be equal
/// byte for byte, with the same exit status and console output. What a trace holds is
/// checked against the disassembly in TraceCommandTests and TraceOutputTests.
@Suite struct TraceEngineSwitchTests {
  func kernel(_ guest: GuestImage) throws -> String {
    try CLI.temporaryFile(guest.image, name: "\(guest.name).elf")
  }

  static let cases: [(String, [String])] = [
    // exceptions through the IDT, IRET, a page fault, the guest's own TF traps
    ("long_events", []),
    ("protected_events", []),
    // instructions KVM's emulator fails on, and BOUND's #BR
    ("kvm_failures32", []),
    ("kvm_failures64", ["--format", "jsonl"]),
    // switched at --from, after a run at full speed on KVM
    ("long_events", ["--from", "events", "--until", "report"]),
    ("tight_loop", ["--from", "loop+0x4", "--limit", "300"]),
  ]

  static func guest(_ name: String) -> GuestImage {
    switch name {
    case "long_events": TestGuests.longEvents
    case "protected_events": TestGuests.protectedEvents
    case "kvm_failures32": TestGuests.kvmFailures32
    case "kvm_failures64": TestGuests.kvmFailures64
    default: TestGuests.tightLoop
    }
  }

  @Test(requiresKVM, arguments: 0..<cases.count)
  func aTraceIsTheSameOnEitherEngine(caseIndex: Int) throws {
    let (name, options) = Self.cases[caseIndex]
    let kernel = try kernel(Self.guest(name))
    let switched = try CLI.run(["trace", "--accel", "kvm", "--kernel", kernel] + options)
    let onKVM = try CLI.run(["trace", "--accel", "kvm", "--trace-accel", "kvm", "--kernel", kernel] + options)
    let onInterpreter = try CLI.run(["trace", "--accel", "emu", "--kernel", kernel] + options)
    #expect(!switched.stdout.isEmpty, "\(name)")
    #expect(switched.stdout == onKVM.stdout, "\(name) \(options): switched vs KVM")
    #expect(switched.stdout == onInterpreter.stdout, "\(name) \(options): switched vs interpreter")
    #expect(switched.status == onKVM.status && switched.status == onInterpreter.status, "\(name)")
    #expect(switched.stderr == onInterpreter.stderr, "\(name): console and notes")
  }

  /// A one-vCPU machine with KVM's in-kernel interrupt controllers (`--irqchip`) moves to the
  /// interpreter with their state (Guests/tests/timer.S from `lapic_read`, where KVM has run
  /// the guest at full speed to its local APIC read, before it programs the 8259s and the PIT,
  /// so that no tick can come on KVM's host time first). The trace is the interpreter's own
  /// from the same point: the APIC read and the chips programmed through the models KVM's
  /// state moved into, the busy loop, then one tick per HLT, three times, each through the
  /// handler, and the debug exit.
  @Test(requiresKVM) func aMachineWithKVMsInterruptControllersTracesOnTheInterpreter() throws {
    let kernel = try kernel(TestGuests.timer)
    let options = ["--from", "lapic_read", "--format", "jsonl"]
    let switched = try CLI.run(
      ["trace", "--accel", "kvm", "--irqchip", "--trace-accel", "emu", "--kernel", kernel] + options)
    let onInterpreter = try CLI.run(["trace", "--accel", "emu", "--kernel", kernel] + options)
    #expect(switched.status == 33 && onInterpreter.status == 33)
    #expect(switched.stderr.isEmpty, "\(switched.stderr)")
    #expect(switched.stdout == onInterpreter.stdout)
    // Three interrupts in the trace, each at the handler.
    #expect(switched.stdout.components(separatedBy: "\"interrupt\"").count - 1 == 3, "\(switched.stdout.suffix(2000))")
  }

  @Test(requiresKVM) func explicitInterpreterTracingExplainsWhyAMachineCannotMove() throws {
    // Two vCPUs on KVM's in-kernel interrupt controllers: they would have to move together.
    let kernel = try kernel(TestGuests.smp)
    let refused = try CLI.run(["trace", "--accel", "kvm", "--cpus", "2", "--trace-accel", "emu", "--kernel", kernel])
    #expect(refused.status == 2)
    #expect(refused.stdout.isEmpty)
    #expect(refused.stderr.contains("--trace-accel emu: this machine uses KVM's in-kernel interrupt controllers"))
    #expect(refused.stderr.split(separator: "\n").count == 1)
    // Without the option, the trace runs on KVM and says so once.
    let noted = try CLI.run(["trace", "--accel", "kvm", "--cpus", "2", "--limit", "5", "--kernel", kernel])
    #expect(noted.status == 0)
    #expect(noted.stderr.contains("note: tracing on KVM: this machine uses KVM's in-kernel interrupt controllers"))
    #expect(noted.stdout.split(separator: "\n").count == 5)
  }

  @Test func badTraceEngineValuesAreRefused() throws {
    let kernel = try kernel(TestGuests.tightLoop)
    let bad = try CLI.run(["trace", "--accel", "emu", "--trace-accel", "tcg", "--kernel", kernel])
    #expect(bad.status == 2)
    #expect(bad.stderr == "hyperstep: error: --trace-accel 'tcg' is not kvm or emu\n")
    let wrongEngine = try CLI.run(["trace", "--accel", "emu", "--trace-accel", "kvm", "--kernel", kernel])
    #expect(wrongEngine.status == 2)
    #expect(
      wrongEngine.stderr
        == "hyperstep: error: --trace-accel kvm: the machine runs on the interpreter (--accel emu), which traces it\n")
  }
}
