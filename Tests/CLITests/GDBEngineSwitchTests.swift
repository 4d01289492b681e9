import Foundation
import KVM
import Machine
import TestGuests
import Testing

/// `monitor accel` in the GDB server: a KVM machine's vCPU moved to the interpreter and back
/// in the middle of a gdb session (Guests/tests/memory_accesses.S; expected stops from its
/// source: each watchpoint stops at the label right after the accessing instruction).
@Suite struct GDBEngineSwitchTests {
  @Test(requiresKVM) func aSessionSwitchesEnginesAndEndsWithTheGuestsStatus() throws {
    let guest = TestGuests.memoryAccesses
    let symbols = try ELFFile(guest.elf).symbols()
    func at(_ name: String) -> UInt64 { symbols.first { $0.name == name }!.address }
    let server = try DebugServerProcess(engine: .kvm, guest)
    let output = try server.gdb(
      [
        // gdb keeps breakpoints and watchpoints in the target while stopped, so that the
        // server sees the read watchpoint when asked to go back to KVM.
        "set breakpoint always-inserted on",
        "monitor accel",
        // On KVM to the store, then to the interpreter, where a read watchpoint stops.
        "hbreak *0x\(String(at("after_store"), radix: 16))", "continue", "p/x $pc", "delete",
        "monitor accel emu", "monitor accel",
        "rwatch *(long*)&var_read", "continue", "p/x $pc",
        // Back to KVM with the read watchpoint still set: KVM serves it through its page.
        "monitor accel kvm", "monitor accel", "delete",
        "hbreak *0x\(String(at("after_push"), radix: 16))", "continue", "p/x $pc", "delete",
        "continue",
      ], symbols: guest)
    #expect(server.finish() == 33)  // the guest's own debug exit (0x10): (0x10 << 1) | 1
    #expect(printedValues(output) == [at("after_store"), at("after_load"), at("after_push")], "\(output)")
    // "engine: kvm" when first asked, when set again and when asked after; "engine: emu" when set and asked.
    #expect(output.components(separatedBy: "engine: kvm").count == 4, "\(output)")
    #expect(output.components(separatedBy: "engine: emu").count == 3, "\(output)")
    #expect(!output.contains("cannot switch to kvm"), "\(output)")
    #expect(output.contains("exited with code 041"), "\(output)")
  }

  /// `monitor accel` on a machine with KVM's in-kernel interrupt controllers (`--irqchip`;
  /// Guests/tests/timer.S, whose PIT ticks at about 1 kHz): the chips' state moves with the
  /// vCPU, so the ticks reach the guest's handler on the interpreter and on KVM again. Stopped
  /// at `enable` (the STI: no tick can have been taken yet, whatever KVM's PIT raised on host
  /// time meanwhile), moved, run to the handler, moved back, run to it again. From the source:
  /// the handler counts ticks, so it finds 0 then 1 in `ticks`, and the guest ends with its
  /// debug exit 0x10 once it has counted three.
  @Test(requiresKVM) func aMachineWithKVMsInterruptControllersSwitchesBothWays() throws {
    let guest = TestGuests.timer
    let symbols = try ELFFile(guest.elf).symbols()
    func at(_ name: String) -> String { "0x" + String(symbols.first { $0.name == name }!.address, radix: 16) }
    let server = try DebugServerProcess(engine: .kvm, guest, extra: ["--irqchip"])
    let output = try server.gdb(
      [
        "hbreak *\(at("enable"))", "continue", "delete",
        "monitor accel emu", "monitor accel",
        "hbreak *\(at("timer_handler"))", "continue", "p/x $pc", "p/x *(int*)\(at("ticks"))",
        "monitor accel kvm", "monitor accel",
        "continue", "p/x $pc", "p/x *(int*)\(at("ticks"))", "delete",
        "continue",
      ], symbols: guest)
    #expect(server.finish() == 33)  // (0x10 << 1) | 1
    let handler = symbols.first { $0.name == "timer_handler" }!.address
    #expect(printedValues(output) == [handler, 0, handler, 1], "\(output)")
    #expect(output.contains("engine: emu") && output.contains("engine: kvm"), "\(output)")
    #expect(!output.contains("cannot switch"), "\(output)")
    #expect(output.contains("exited with code 041"), "\(output)")
  }

  @Test(arguments: Engines.all) func accelRefusesWhatItCannotDo(engine: TestEngine) throws {
    let server = try DebugServerProcess(engine: engine, TestGuests.smp, extra: ["--cpus", "2"])
    let output = try server.gdb([
      "monitor accel", "monitor accel tcg", "monitor accel emu kvm",
      "monitor accel \(engine == .kvm ? "emu" : "kvm")", "kill",
    ])
    _ = server.finish()
    #expect(output.contains("engine: \(engine == .kvm ? "kvm" : "emu")"), "\(output)")
    #expect(output.components(separatedBy: "usage: monitor accel [emu|kvm]").count == 3, "\(output)")
    // Two vCPUs on KVM's in-kernel chips move together (see below); an interpreter machine
    // has no KVM vCPUs to move.
    let reason =
      engine == .kvm ? "engine: emu" : "cannot switch engines: this machine runs on the interpreter (--accel emu)"
    #expect(output.contains(reason), "\(output)")
  }

  /// Two vCPUs on KVM's in-kernel chips (Guests/tests/smp.S, which starts its second vCPU with
  /// INIT and a start-up IPI through the local APIC; the AP increments the word at 0x7000 once
  /// and halts) move between the engines together, with the chips' state: moved at the start,
  /// the INIT/SIPI goes through the interpreter's models of KVM's APICs and the AP starts on
  /// the interpreter; moved at `wait_ap`, after KVM sent them, the AP goes on wherever it was.
  /// Either way the bootstrap processor sees the count 1 at `ap_seen`, back on KVM the guest
  /// ends with its debug exit 0x10, and a vCPU cannot be left behind on KVM.
  @Test(requiresKVM, arguments: ["_start", "wait_ap"])
  func twoVCPUsWithKVMsInterruptControllersMoveTogether(at label: String) throws {
    let guest = TestGuests.smp
    let symbols = try ELFFile(guest.elf).symbols()
    func at(_ name: String) -> UInt64 { symbols.first { $0.name == name }!.address }
    let server = try DebugServerProcess(engine: .kvm, guest, extra: ["--cpus", "2"])
    var commands = ["hbreak *0x\(String(at(label), radix: 16))", "continue", "delete"]
    if label == "_start" { commands = [] }
    commands += [
      "monitor accel emu", "monitor accel",
      "hbreak *0x\(String(at("ap_seen"), radix: 16))", "continue", "p/x $pc", "p/x *(int*)0x7000", "delete",
      "monitor accel kvm", "monitor accel", "continue",
    ]
    let output = try server.gdb(commands, symbols: guest)
    #expect(server.finish() == 33)  // (0x10 << 1) | 1
    #expect(printedValues(output) == [at("ap_seen"), 1], "\(output)")
    #expect(output.contains("engine: emu") && output.contains("engine: kvm"), "\(output)")
    #expect(!output.contains("cannot switch"), "\(output)")
  }

  /// Read and access watchpoints no longer move a KVM machine that can protect pages (one
  /// vCPU, read-only slots) to the interpreter: KVM serves them, and gdb's rwatch and awatch
  /// stop right after the access, as on `--accel emu`.
  @Test(requiresKVM) func readAndAccessWatchpointsStayOnKVM() throws {
    let guest = TestGuests.memoryAccesses
    let symbols = try ELFFile(guest.elf).symbols()
    func at(_ name: String) -> UInt64 { symbols.first { $0.name == name }!.address }
    let server = try DebugServerProcess(engine: .kvm, guest)
    let output = try server.gdb(
      [
        "monitor accel", "rwatch *(long*)&var_read", "awatch *(long*)&var_rmw", "continue", "p/x $pc", "continue",
        "p/x $pc", "monitor accel", "delete", "continue",
      ], symbols: guest)
    #expect(server.finish() == 33)
    #expect(printedValues(output) == [at("after_load"), at("after_rmw")], "\(output)")
    #expect(output.components(separatedBy: "engine: kvm").count == 3 && !output.contains("engine: emu"), "\(output)")
    #expect(!server.server.errorsText.contains("moved the vCPUs"), "\(server.server.errorsText)")
  }

  /// On KVM, gdb's write watchpoints take no debug-register slot where their pages can be
  /// write-protected: six of them stay on KVM, at full speed, each stopping right after the
  /// write (two watch variables the guest only reads, so they never stop it).
  @Test(requiresKVM) func sixWriteWatchpointsStayOnKVM() throws {
    let guest = TestGuests.memoryAccesses
    let symbols = try ELFFile(guest.elf).symbols()
    func at(_ name: String) -> UInt64 { symbols.first { $0.name == name }!.address }
    let server = try DebugServerProcess(engine: .kvm, guest)
    let watches = ["var_write", "var_read", "var_rmw", "var_push", "var_source", "var_copy"].map {
      "watch *(long*)&\($0)"
    }
    let output = try server.gdb(
      watches + [
        "continue", "p/x $pc", "continue", "p/x $pc", "continue", "p/x $pc", "continue", "p/x $pc", "monitor accel",
        "continue",
      ], symbols: guest)
    #expect(server.finish() == 33)
    #expect(
      printedValues(output) == [at("after_store"), at("after_rmw"), at("after_push"), at("after_movs")], "\(output)")
    #expect(output.contains("engine: kvm") && !output.contains("engine: emu"), "\(output)")
    #expect(!server.server.errorsText.contains("moved the vCPUs"), "\(server.server.errorsText)")
  }
}
