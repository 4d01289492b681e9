// Benchmark driver: measures Hyperstep's own code paths so Benchmarks/*.sh can compare
// them with C baselines in the same run. Not a test: it asserts nothing, it reports.
//
//   hyperstep-bench boot ITERATIONS MEMORY_MIB   total nanoseconds to build + boot the minimal guest
//   hyperstep-bench write-guest NAME PATH        write a bundled test guest's image to PATH
//   hyperstep-bench write-flat NAME PATH         write its loadable bytes (the ELF's one segment)
//   hyperstep-bench events                       "<events> <ns> <sum of RCX>" for breakpoint events
//   hyperstep-bench msr-events                   "<events> <ns> <sum of values>" for MSR-write events
//   hyperstep-bench interp [MILLIONS]            the x86 interpreter's speed on two compute loops
//                                                (default 100 million instructions each), in MIPS
//   hyperstep-bench watch MODE                   "<hits> <ns>" for the tight-loop guest with no watch
//                                                (none), a write watchpoint served by write-protecting
//                                                its page (protect) or by stepping (step), a read or
//                                                access watch on the code's page served on KVM
//                                                (read, access) or on the interpreter (read-emu), or a
//                                                read/write watch on a page the guest never touches
//                                                (read-far)
import HostCode
import Introspection
import KVM
import Machine
import Synchronization
import TestGuests
import X86

#if canImport(Glibc)
  import Glibc
#endif

func usage() -> Never {
  let forms =
    "boot ITERATIONS MEMORY_MIB | write-guest NAME PATH | write-flat NAME PATH | interp [MILLIONS] | watch none|protect|step|read|access|read-emu|read-far"
  HostIO.write(2, Array("usage: hyperstep-bench \(forms)\n".utf8)[...])
  exit(2)
}

/// Events counted by a handler, and a checksum of what it read.
final class Tally: Sendable {
  private let counts = Mutex<(events: UInt64, checksum: UInt64)>((0, 0))
  func add(_ value: UInt64) { counts.withLock { $0 = ($0.events + 1, $0.checksum &+ value) } }
  var total: (events: UInt64, checksum: UInt64) { counts.withLock { $0 } }
}

/// Runs `guest` under a session `subscribe` sets up, and prints "<events> <ns> <checksum>";
/// the guest must reach its debug exit with 0x10 (its own checks passed).
func measureEvents(
  of guest: GuestImage, accelerator: AcceleratorChoice = .auto,
  subscribe: (IntrospectionSession, Tally) throws -> Void
) {
  do {
    var configuration = MachineConfiguration(kernel: guest.image, kernelName: guest.name)
    configuration.accelerator = accelerator
    let machine = try Machine(configuration: configuration, console: CapturedConsole())
    let session = try IntrospectionSession(machine: machine)
    let tally = Tally()
    try subscribe(session, tally)
    let start = HostIO.monotonicNanoseconds()
    let end = try session.run()
    let elapsed = HostIO.monotonicNanoseconds() - start
    guard case .machineEnded(.debugExit(value: 0x10, _)) = end else {
      HostIO.write(2, Array("\(guest.name) did not end with debug exit 0x10: \(end)\n".utf8)[...])
      exit(1)
    }
    let (events, checksum) = tally.total
    print("\(events) \(elapsed) \(checksum)")
  } catch {
    HostIO.write(2, Array("hyperstep-bench: \(error)\n".utf8)[...])
    exit(1)
  }
}

/// Runs two loops in the interpreter (64-bit mode, 4-level paging) and prints instructions per
/// second. Encodings from clang + llvm-objdump:
///   registers: mov ecx, N; xor eax, eax; 1: add rax, rcx; add rdx, 3; dec ecx; jnz 1b; hlt
///   memory:    mov ecx, N; 1: mov rbx, [rsi]; add rbx, rcx; mov [rsi+8], rbx; dec ecx; jnz 1b; hlt
func measureInterpreter(instructions: UInt64) {
  func le32(_ value: UInt64) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) } }
  let registerIterations = instructions / 4
  let memoryIterations = instructions / 5
  let loops: [(name: String, code: [UInt8], iterations: UInt64, check: (X86State) -> Bool)] = [
    (
      "add/add/dec/jnz (registers)",
      [0xb9] + le32(registerIterations) + [
        0x31, 0xc0, 0x48, 0x01, 0xc8, 0x48, 0x83, 0xc2, 0x03, 0xff, 0xc9, 0x75, 0xf5, 0xf4,
      ],
      registerIterations, { $0[.rax] == registerIterations * (registerIterations + 1) / 2 }
    ),
    (
      "load/add/store/dec/jnz (memory)",
      [0xb9] + le32(memoryIterations) + [
        0x48, 0x8b, 0x1e, 0x48, 0x01, 0xcb, 0x48, 0x89, 0x5e, 0x08, 0xff, 0xc9, 0x75, 0xf2, 0xf4,
      ],
      memoryIterations, { $0[.rbx] == 1 }
    ),
  ]
  // The host is shared (other builds run beside this): each loop runs three times and the
  // fastest run is the figure, the others shown for spread.
  for loop in loops {
    var runs: [Double] = []
    for _ in 0..<3 {
      do {
        let sandbox = try X86Sandbox()
        try sandbox.load(code: loop.code, at: 0x10_0000)
        var state = sandbox.cpu.state
        state.rip = 0x10_0000
        state[.rsi] = 0x20_0000
        state[.rsp] = 0x30_0000
        sandbox.cpu.state = state
        let start = HostIO.monotonicNanoseconds()
        let (executed, stop) = sandbox.cpu.run(maxInstructions: .max)
        let elapsed = HostIO.monotonicNanoseconds() - start
        guard stop == .halted, loop.check(sandbox.cpu.state) else {
          HostIO.write(2, Array("interp: \(loop.name) ended wrongly: \(stop)\n".utf8)[...])
          exit(1)
        }
        runs.append(Double(executed) / Double(elapsed) * 1000)
      } catch {
        HostIO.write(2, Array("hyperstep-bench: \(error)\n".utf8)[...])
        exit(1)
      }
    }
    let shown = runs.map { String(Int($0)) }.joined(separator: ", ")
    // X86CPU translates blocks unless HYPERSTEP_JIT=0 (or the host cannot): say which ran.
    let tier = hostEnvironment("HYPERSTEP_JIT") == "0" ? "interpreted" : "JIT tier"
    print(
      "\(loop.name), \(tier): \(Int(runs.max() ?? 0)) MIPS (best of 3 runs of \(instructions) instructions: \(shown))")
  }
}

let arguments = CommandLine.arguments.dropFirst()
switch arguments.first {
case "boot":
  guard arguments.count == 3, let iterations = Int(arguments.dropFirst().first!), let mib = UInt64(arguments.last!)
  else {
    usage()
  }
  var configuration = MachineConfiguration(kernel: TestGuests.minimal.image, kernelName: "minimal")
  configuration.format = .flatReal
  configuration.memorySize = mib << 20
  let start = HostIO.monotonicNanoseconds()
  for _ in 0..<iterations {
    do {
      let machine = try Machine(configuration: configuration, console: CapturedConsole())
      guard case .debugExit = machine.run() else {
        HostIO.write(2, Array("minimal guest did not reach its debug exit\n".utf8)[...])
        exit(1)
      }
    } catch {
      HostIO.write(2, Array("hyperstep-bench: \(error)\n".utf8)[...])
      exit(1)
    }
  }
  print(HostIO.monotonicNanoseconds() - start)
case "write-guest":
  guard arguments.count == 3, let guest = TestGuests.all.first(where: { $0.name == arguments.dropFirst().first! })
  else {
    usage()
  }
  let path = arguments.last!
  let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
  guard fd >= 0, HostIO.write(fd, guest.image[...]) else { usage() }
  close(fd)
case "write-flat":
  guard arguments.count == 3, let guest = TestGuests.all.first(where: { $0.name == arguments.dropFirst().first! }),
    let elf = try? ELFFile(guest.elf), let segment = elf.segments.first
  else { usage() }
  let fd = open(arguments.last!, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
  guard fd >= 0, HostIO.write(fd, elf.fileBytes(of: segment)) else { usage() }
  close(fd)
case "events", "events-guest-dr-off":
  // Breakpoint events per second through the event API: a software breakpoint at `loop` in
  // the tight-loop guest, the handler reading the registers once per event. With
  // events-guest-dr-off, the guest's debug registers are not followed at each exit (on hosts
  // where Hyperstep serves the guest's data breakpoints): what following them costs.
  guard let elf = try? ELFFile(TestGuests.tightLoop.elf),
    let loop = elf.symbols().first(where: { $0.name == "loop" })?.address
  else { usage() }
  let following = arguments.first == "events"
  measureEvents(of: TestGuests.tightLoop) { session, tally in
    session.machine.followsGuestDebugRegisters.store(following, ordering: .relaxed)
    try session.subscribe(.softwareBreakpoint(at: loop)) { _, context in
      let rcx = try context.registers().rcx
      tally.add(rcx)
      return .continue
    }
  }
case "msr-events":
  // MSR-write events per second through the event API: the msr_loop guest's 100000 writes of
  // IA32_SYSENTER_EIP, the handler reading the registers once per event; the writes still
  // take effect (the guest checks the last one, and exits with 0x11 if it was lost).
  let sysenterEIP: UInt32 = 0x176
  measureEvents(of: TestGuests.msrLoop) { session, tally in
    try session.subscribe(.msrWrite([sysenterEIP])) { event, context in
      guard case .access(.msrWrite(_, let value)) = event, try context.registers().rcx == UInt64(sysenterEIP) else {
        throw IntrospectionError("not the write of IA32_SYSENTER_EIP: \(event)")
      }
      tally.add(value)
      return .continue
    }
  }
case "watch":
  // A write watchpoint on the tight-loop guest's own code (8 bytes at `loop`, which it never
  // writes: its page holds the code that runs): the guest's 300004 instructions run with the
  // watch served by write-protecting that page (KVM at full speed) or by stepping and
  // comparing, against no watch at all. Prints "<hits> <ns>"; the hits must be 0.
  // Read and access watches on the same 8 bytes (never read as data either): on KVM the page
  // is absent to KVM, so every instruction of the loop, fetched from it, is run by the
  // interpreter twin (read, access); read-emu is the same watch with the whole machine on
  // the interpreter (where a KVM machine used to move for it); read-far watches reads and
  // writes of 8 bytes of RAM the guest never touches (guest-physical 0x300000), so KVM runs
  // the loop natively with that page absent.
  let modes = ["none", "protect", "step", "read", "access", "read-emu", "read-far"]
  guard arguments.count == 2, modes.contains(arguments.last!),
    let elf = try? ELFFile(TestGuests.tightLoop.elf),
    let loop = elf.symbols().first(where: { $0.name == "loop" })?.address
  else { usage() }
  let mode = arguments.last!
  measureEvents(of: TestGuests.tightLoop, accelerator: mode == "read-emu" ? .emu : .kvm) { session, tally in
    session.writeWatchesAtFullSpeed = mode == "protect"
    let count: EventHandler = { _, _ in
      tally.add(1)
      return .continue
    }
    switch mode {
    case "protect", "step": try session.subscribe(.writeWatchpoint(at: loop, length: 8), handler: count)
    case "read", "read-emu":
      try session.subscribe(.memoryAccess(MemoryWatch(start: loop, length: 8, kinds: .read)), handler: count)
    case "access":
      try session.subscribe(.memoryAccess(MemoryWatch(start: loop, length: 8, kinds: [.read, .write])), handler: count)
    case "read-far":
      let far = MemoryWatch(start: 0x30_0000, length: 8, kinds: [.read, .write], physical: true)
      try session.subscribe(.memoryAccess(far), handler: count)
    default: break
    }
  }
case "interp":
  let millions = arguments.count > 1 ? UInt64(arguments[arguments.startIndex + 1]) : 100
  guard let millions, millions > 0 else { usage() }
  measureInterpreter(instructions: millions * 1_000_000)
default:
  usage()
}
