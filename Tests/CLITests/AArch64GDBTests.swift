import AArch64Guests
import Foundation
import Machine
import Testing

/// gdb-multiarch against `hyperstep debug` with AArch64 guests (issue 12): registers and
/// memory, breakpoints, stepping that keeps the guest's exclusive monitor, and watchpoints
/// reported with the PC on the accessing instruction. Expected addresses come from each
/// guest's ELF symbols, expected values from the guest's source and the ARM ARM.
@Suite(.serialized) struct AArch64GDBTests {
  static let gdbMultiarch = "/usr/bin/gdb-multiarch"

  func server(_ guest: GuestImage) throws -> DebugServerProcess {
    try DebugServerProcess(engine: .emu, kernel: guest.elf, name: guest.name)
  }

  func symbolFile(_ guest: GuestImage) throws -> String {
    try CLI.temporaryFile(guest.elf, name: "\(guest.name)-symbols.elf")
  }

  func symbol(_ name: String, in guest: GuestImage) throws -> UInt64 {
    try #require(try ELFFile(guest.elf, for: .aarch64).symbols().first { $0.name == name }).address
  }

  func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }

  /// A breakpoint by symbol, a step into the SVC's vector (VBAR_EL1 + 0x200: current EL with
  /// SP_ELx, synchronous), and ESR_EL1 there: EC 0x15, IL, imm16 0x42 (ARM ARM D17.2.37).
  @Test func breakpointStepIntoTheSVCVectorAndSystemRegisters() throws {
    guard FileManager.default.isExecutableFile(atPath: Self.gdbMultiarch) else {
      Issue.record("gdb-multiarch is missing: scripts/test.sh installs it")
      return
    }
    let guest = AArch64Guests.a64Checks
    let debug = try server(guest)
    let output = try debug.gdb(
      [
        "break svc_at", "continue", "p/x $pc", "stepi", "p/x $pc", "p/x $ESR_EL1", "p/x $CurrentEL", "x/gx &literal",
        "set $TPIDR_EL0 = 0x1234", "set $x5 = 7", "p/x $TPIDR_EL0", "p $x5", "p/x $CurrentEL", "kill",
      ],
      symbolFile: try symbolFile(guest), binary: Self.gdbMultiarch)
    let svc = try symbol("svc_at", in: guest)
    let vectors = try symbol("vectors", in: guest)
    #expect(output.contains("$1 = \(hex(svc))"), "\(output)")
    #expect(output.contains("$2 = \(hex(vectors + 0x200))"), "\(output)")
    #expect(output.contains("$3 = 0x56000042"), "\(output)")
    #expect(output.contains("$4 = 0x4"), "\(output)")  // EL1 in CurrentEL[3:2]
    #expect(output.contains("0x0123456789abcdef"), "\(output)")
    // Written through gdb and read back; CurrentEL, read-only, keeps its value.
    #expect(output.contains("$5 = 0x1234"), "\(output)")
    #expect(output.contains("$6 = 7"), "\(output)")
    #expect(output.contains("$7 = 0x4"), "\(output)")
    _ = debug.finish()
  }

  /// gdb's `org.gnu.gdb.aarch64.fpu` registers are the CPU's own: at `dot_done` in a64_fp
  /// D0 holds the double dot product and FPSR the IXC its roundings raised (the values
  /// a64_fp.S's header gives); a D0 written through gdb is what the guest then prints.
  @Test func fpRegistersAreReadAndWritten() throws {
    guard FileManager.default.isExecutableFile(atPath: Self.gdbMultiarch) else {
      Issue.record("gdb-multiarch is missing: scripts/test.sh installs it")
      return
    }
    let guest = AArch64Guests.a64Fp
    let debug = try DebugServerProcess(engine: .emu, kernel: guest.elf, name: guest.name, output: .capture)
    let output = try debug.gdb(
      [
        "break dot_done", "continue", "p/x $d0.u", "p/x $fpsr", "p/x $fpcr", "set $d0.u = 0x1122334455667788",
        "set $fpsr = 0", "p/x $v0.d.u[0]", "p/x $fpsr", "continue",
      ], symbolFile: try symbolFile(guest), binary: Self.gdbMultiarch)
    #expect(output.contains("$1 = 0xc00fae147ae147b1"), "\(output)")
    #expect(output.contains("$2 = 0x10"), "\(output)")
    #expect(output.contains("$3 = 0x0"), "\(output)")
    #expect(output.contains("$4 = 0x1122334455667788"), "\(output)")
    #expect(output.contains("$5 = 0x0"), "\(output)")
    #expect(output.contains("exited normally"), "\(output)")
    #expect(debug.finish() == 0)
    #expect(debug.server.outputText.contains("dot-d=1122334455667788 "), "\(debug.server.outputText)")
  }

  /// An LDXR/STXR loop stepped to the end by gdb prints what the unstepped run prints (no
  /// STXR fails; the control STXR after an SVC fails in both), and exits as it does. gdb
  /// steps an LDXR..STXR sequence as one (a breakpoint after it, aarch64-tdep's atomic
  /// sequences); AArch64Tests' `aHostStepperStepsAnExclusiveLoopOneInstructionAtATime`
  /// steps every instruction of it.
  @Test func anExclusiveLoopSteppedToTheEndMakesProgress() throws {
    guard FileManager.default.isExecutableFile(atPath: Self.gdbMultiarch) else {
      Issue.record("gdb-multiarch is missing: scripts/test.sh installs it")
      return
    }
    let guest = AArch64Guests.a64Exclusive
    let expected = "exclusive: counter=0000000000000005 failures=0000000000000000 control=0000000000000001\n"
    let kernel = try CLI.temporaryFile(guest.elf, name: "a64-exclusive-run.elf")
    let plain = try ChildProcess(CLI.executable.path, ["run", "--kernel", kernel])
    #expect(plain.wait(timeout: 60))
    #expect(plain.outputText == expected)
    #expect(plain.status == 0)

    let debug = try DebugServerProcess(engine: .emu, kernel: guest.elf, name: guest.name, output: .capture)
    let output = try debug.gdb(
      ["stepi 20000"], symbolFile: try symbolFile(guest), timeout: 300, binary: Self.gdbMultiarch)
    #expect(output.contains("exited normally"), "\(output)")
    #expect(debug.finish() == 0)
    #expect(debug.server.outputText == expected)
  }

  /// watch, rwatch and awatch on the exclusive loop's counter. The server reports each with
  /// the PC on the accessing instruction (the stop packet, seen with `set debug remote 1`):
  /// the STXR at `store` for writes, the LDXR at `increment` for reads. gdb then steps over
  /// it; a load-exclusive it steps over together with the rest of its sequence, up to after
  /// the STXR (gdb's aarch64 atomic-sequence stepping), so the read shows the value stored
  /// there.
  @Test func watchpointsStopOnTheAccessingInstruction() throws {
    guard FileManager.default.isExecutableFile(atPath: Self.gdbMultiarch) else {
      Issue.record("gdb-multiarch is missing: scripts/test.sh installs it")
      return
    }
    let guest = AArch64Guests.a64Exclusive
    let store = try symbol("store", in: guest)
    let increment = try symbol("increment", in: guest)
    let counter = try symbol("counter", in: guest)
    /// gdb's register 0x20 (pc) as a stop packet carries it: eight bytes, little-endian, in hex.
    func pcField(_ value: UInt64) -> String {
      "20:" + (0..<8).map { String(format: "%02x", (value >> (8 * $0)) & 0xff) }.joined()
    }
    let debug = try server(guest)
    let output = try debug.gdb(
      [
        "set debug remote 1",
        "watch *(long *)&counter", "continue", "p/x $pc", "delete",
        "rwatch *(long *)&counter", "continue", "p/x $pc", "delete",
        "awatch *(long *)&counter", "continue", "p/x $pc", "kill",
      ], symbolFile: try symbolFile(guest), binary: Self.gdbMultiarch)
    let counterHex = String(counter, radix: 16)
    let stops = output.split(separator: "\n").filter { $0.contains("Packet received: T05") }
    #expect(stops.contains { $0.contains(pcField(store)) && $0.contains("watch:\(counterHex);") }, "\(stops)")
    #expect(stops.contains { $0.contains(pcField(increment)) && $0.contains("rwatch:\(counterHex);") }, "\(stops)")
    // awatch: the third LDXR's read comes first.
    #expect(stops.contains { $0.contains(pcField(increment)) && $0.contains("awatch:\(counterHex);") }, "\(stops)")
    // watch: the first STXR wrote 1 over 0; gdb stepped over it.
    #expect(output.contains("Old value = 0"), "\(output)")
    #expect(output.contains("New value = 1"), "\(output)")
    #expect(output.contains("$1 = \(hex(store + 4))"), "\(output)")
    // rwatch: the second LDXR, stepped over with its sequence: the STXR after it stored 2.
    #expect(output.contains("Value = 2"), "\(output)")
    #expect(output.contains("$2 = \(hex(store + 4))"), "\(output)")
    // awatch: gdb steps that sequence too; its STXR wrote 3 over 2.
    #expect(output.contains("Old value = 2"), "\(output)")
    #expect(output.contains("New value = 3"), "\(output)")
    _ = debug.finish()
  }
}

/// Debian's lldb-16 against `hyperstep debug` with an AArch64 guest: registers (the core ones
/// and the EL1 system feature), a breakpoint by symbol, and an instruction step, with the
/// addresses from the guest's symbols.
@Suite struct AArch64LLDBTests {
  @Test func registersBreakpointAndStep() throws {
    guard LLDB.isInstalled else {
      Issue.record("lldb-16 is missing: scripts/test.sh installs it")
      return
    }
    let guest = AArch64Guests.a64Exclusive
    let symbols = try ELFSymbols(guest.elf)
    let start = try #require(symbols["_start"])
    let store = try #require(symbols["store"])
    let program = try CLI.temporaryFile(guest.elf, name: "a64-lldb.elf")
    let debug = try DebugServerProcess(engine: .emu, kernel: guest.elf, name: guest.name, listen: "127.0.0.1:0")
    let output = try debug.lldb(
      [
        "register read pc cpsr SCTLR_EL1", "breakpoint set -n store", "process continue", "register read pc",
        "thread step-inst", "register read pc", "process kill",
      ], program: program)
    // At the entry: EL1h with DAIF masked (0x3c5), SCTLR_EL1 at its reset value; then the
    // breakpoint at the STXR, and one step to the CBZ after it.
    #expect(lldbRegisterValues(output, "pc") == [start, store, store + 4], "\(output)")
    #expect(lldbRegisterValues(output, "cpsr") == [0x3c5], "\(output)")
    #expect(lldbRegisterValues(output, "SCTLR_EL1") == [0x30d0_0800], "\(output)")
    _ = debug.finish()
  }
}
