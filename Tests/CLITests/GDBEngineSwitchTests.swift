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

  @Test(arguments: Engines.all) func accelRefusesWhatItCannotDo(engine: TestEngine) throws {
    let server = try DebugServerProcess(engine: engine, TestGuests.smp, extra: ["--cpus", "2"])
    let output = try server.gdb([
      "monitor accel", "monitor accel tcg", "monitor accel emu kvm",
      "monitor accel \(engine == .kvm ? "emu" : "kvm")", "kill",
    ])
    _ = server.finish()
    #expect(output.contains("engine: \(engine == .kvm ? "kvm" : "emu")"), "\(output)")
    #expect(output.components(separatedBy: "usage: monitor accel [emu|kvm]").count == 3, "\(output)")
    let reason =
      engine == .kvm
      ? "cannot switch engines: this machine uses KVM's in-kernel interrupt controllers"
      : "cannot switch engines: this machine runs on the interpreter (--accel emu)"
    #expect(output.contains(reason), "\(output)")
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
