import ArgumentParser
import Debugger
import Devices
import Introspection
import KVM
import Machine

/// An interactive event console in the manner of Xen's xen-access: it stops before the
/// guest's first instruction, and again whenever the guest asks for stepping through the
/// control port, hits a breakpoint or has been stepped; each stop is printed and commands
/// are read from standard input, so it can be driven by a script.
struct MonitorCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "monitor",
    abstract: "Run a guest under a console: step, continue, registers, memory, breakpoints.",
    discussion: """
      The console stops before the first instruction; after c the guest runs until it writes 1 \
      to the control port (0x600), hits a breakpoint or ends. Commands, one per line on \
      standard input: s [N] (step N >= 1 instructions), c (continue), r (registers), \
      m ADDR LEN (memory), b ADDR|SYMBOL[+0xOFFSET] (hardware breakpoint), q (quit). End of \
      input quits.
      """)

  @OptionGroup var machine: MachineOptions

  @Option(
    help: ArgumentHelp(
      "Symbols from this ELF or System.map instead of the kernel's (a Linux bzImage carries none).", valueName: "file"))
  var symbols: String?

  /// `--symbols`, read and parsed (exit 2 with one line when it is neither an ELF with a
  /// symbol table nor a System.map); nil without it.
  private func symbolFile() -> (table: SymbolTable, name: String)? {
    guard let path = symbols else { return nil }
    let bytes = readInput(path, wanted: "an ELF or System.map file")
    do { return (try SymbolTable(file: bytes, source: path), path) } catch {
      fail("--symbols \(path): \(error)", status: .badInput)
    }
  }

  func run() throws {
    let configuration = machine.configuration()
    let given = symbolFile()
    if machine.isAArch64(kernelBytes: machine.kernel == nil ? nil : configuration.kernel) {
      let vm: VirtMachine
      do { vm = try VirtMachine(configuration: configuration, console: StandardOutputConsole(fd: 1)) } catch {
        fail(error.description, status: error.isBadInput ? .badInput : .hostFailure)
      }
      let symbols =
        given?.table
        ?? (try? ELFFile(configuration.kernel, for: .aarch64)).map {
          SymbolTable(elf: $0, source: configuration.kernelName)
        }
      Glibc.exit(
        VirtMonitorConsole(vm: vm, symbols: symbols, imageName: given?.name ?? configuration.kernelName).start())
    }
    let vm: Machine
    do {
      vm = try Machine(configuration: configuration, console: StandardOutputConsole(fd: 1))
    } catch {
      fail(error.description, status: error.isBadInput ? .badInput : .hostFailure)
    }
    let symbols: SymbolTable? =
      given?.table
      ?? (ELFFile.hasMagic(configuration.kernel)
        // The machine has parsed this ELF already, so it cannot fail here; symbols are optional.
        ? (try? ELFFile(configuration.kernel)).map { SymbolTable(elf: $0, source: configuration.kernelName) } : nil)
    Glibc.exit(
      MonitorConsole(machine: vm, symbols: symbols, imageName: given?.name ?? configuration.kernelName).start())
  }
}

/// The console itself: a client of the event API. Its handlers are the prompt: an event
/// worth a stop prints it and reads commands until one lets the guest go on, and the answer
/// to the event says how (single-stepping toggled on for `s`, off for `c`).
final class MonitorConsole: @unchecked Sendable {
  // @unchecked: the handlers run on vCPU 0's thread only (the console watches vCPU 0), and
  // `start()` reads the state after the run has ended.
  let machine: Machine
  let symbols: SymbolTable?
  /// The kernel's name, to say where symbols were looked for.
  let imageName: String
  private var input = LineReader(fd: 0)
  private let interactive = HostIO.isTerminal(0)
  /// Steps still to take for the last `s N` (the stops before the last print as `step:`).
  private var stepsLeft = 0
  private var stepping = false
  /// Set by `c` on a breakpoint: the next single step is the one that steps off it, and then
  /// the guest runs on.
  private var steppingOff = false
  /// The hardware breakpoints set (one debug-register slot each).
  private var breakpoints: Set<UInt64> = []

  init(machine: Machine, symbols: SymbolTable?, imageName: String) {
    self.machine = machine
    self.symbols = symbols
    self.imageName = imageName
  }

  func say(_ text: String) { HostIO.write(1, Array((text + "\n").utf8)[...]) }

  /// "0xPC symbol+offset reason": the PC of the next instruction, then why it stopped.
  func describe(_ pc: UInt64, _ reason: String?) -> String {
    MonitorAddress.describe(pc, reason, symbols: symbols)
  }

  /// Runs the console; returns the process exit status.
  func start() -> Int32 {
    do {
      let session = try IntrospectionSession(machine: machine)
      let watched: Set<Int> = [0]
      try session.subscribe(.guestRequest, vcpus: watched) { [self] event, context in
        // A request to start stepping is worth a stop; other requests (0 ends stepping in the
        // guest's own terms) are not, as in a trace.
        guard case .guestRequest(let value) = event, value == ControlPort.startStepping, !stepping else {
          return .continue
        }
        return try attend(context, reason: "request \(value)")
      }
      try session.subscribe(.singleStep, vcpus: watched) { [self] _, context in
        if steppingOff {
          steppingOff = false
          return setStepping(false)
        }
        if stepsLeft > 1 {
          stepsLeft -= 1
          say("step: " + describe(try context.pc(), nil))
          return .continue
        }
        return try attend(context, reason: nil)
      }
      try session.subscribe(.shutdown, vcpus: watched) { [self] event, context in
        guard case .shutdown(let outcome) = event else { return .continue }
        say("stop: " + describe(try context.pc(), "exit " + TraceWriter.outcomeName(outcome)))
        return .continue
      }
      // The first stop is before the first instruction, as in `hyperstep debug`: breakpoints
      // can be set before anything runs, and `s` steps from the entry point.
      switch try attend(session.context(forVCPU: 0), reason: nil) {
      case .stop: return ExitStatus.success.rawValue  // q, or the end of the input
      case .toggleSingleStep: try session.setSingleStep(true, vcpu: 0)
      case .continue, .emulateAndSkip, .switchEngine: break
      }
      switch try session.run() {
      case .machineEnded(let outcome): return outcome.cleanExitStatus ?? ExitStatus.guestCrashed.rawValue
      case .stopped: return ExitStatus.success.rawValue  // q, or the end of the input
      }
    } catch {
      warn("error: \(error)")
      return ExitStatus.hostFailure.rawValue
    }
  }

  /// A stop: prints it, then takes commands until one lets the guest go on. Every command
  /// that does not is answered in one line; a bad one never ends the console.
  private func attend(_ context: EventContext, reason: String?) throws -> EventResponse {
    say("stop: " + describe(try context.pc(), reason))
    while true {
      guard let line = prompt() else { return .stop }
      switch MonitorCommandLine(line) {
      case .empty: continue
      case .refused(let answer): say(answer)
      case .step(let count):
        stepsLeft = count
        steppingOff = false
        return setStepping(true)
      case .run:
        stepsLeft = 0
        // As gdb does: a breakpoint under the PC is stepped over first, or the run would stop
        // on it at once (the stepper steps off a breakpoint only when its hit was the stop).
        steppingOff = breakpoints.contains(try context.pc())
        return setStepping(steppingOff)
      case .registers:
        let state = CPUState(
          vcpu: context.vcpu, registers: try context.registers(), special: try context.specialRegisters())
        say(state.dump.split(separator: "\n").dropFirst().joined(separator: "\n"))
      case .memory(let text, let length):
        guard let address = resolve(text) else { continue }
        dumpMemory(context, at: address, count: length)
      case .breakpoint(let text):
        guard let address = resolve(text) else { continue }
        addBreakpoint(context, at: address)
      case .quit:
        return .stop
      }
    }
  }

  /// The answer that leaves single-stepping as asked.
  private func setStepping(_ on: Bool) -> EventResponse {
    defer { stepping = on }
    return on == stepping ? .continue : .toggleSingleStep
  }

  private func dumpMemory(_ context: EventContext, at address: UInt64, count: Int) {
    do {
      for line in MonitorAddress.dump(try context.readMemory(virtual: address, count: count), at: address) { say(line) }
    } catch {
      say("cannot read 0x\(String(address, radix: 16)): \(error)")
    }
  }

  /// A hardware breakpoint, subscribed from inside the running session (or before it, at the
  /// first stop); its hits stop here.
  private func addBreakpoint(_ context: EventContext, at address: UInt64) {
    let hex = "0x" + String(address, radix: 16)
    guard !breakpoints.contains(address) else {
      say("breakpoint at \(hex) is already set")
      return
    }
    guard breakpoints.count < 4 else {
      say("all four hardware breakpoints are in use")
      return
    }
    do {
      try context.subscribe(.hardwareBreakpoint(at: address), vcpus: [0]) { [self] _, context in
        try attend(context, reason: "breakpoint")
      }
      breakpoints.insert(address)
      say("breakpoint at \(hex)")
    } catch {
      say("no breakpoint at \(hex): \(error)")
    }
  }

  /// The next command line; the prompt shows only to someone typing (a script needs none).
  private func prompt() -> String? {
    if interactive { HostIO.write(1, Array("(hyperstep) ".utf8)[...]) }
    return input.next()
  }

  /// An address (`0x` hex or decimal), a symbol or `SYMBOL+0xOFFSET`; nil after saying why not.
  private func resolve(_ text: String) -> UInt64? {
    MonitorAddress.resolve(text, symbols: symbols, imageName: imageName, refuse: say)
  }

}

/// Lines from a file descriptor, without Foundation.
struct LineReader {
  let fd: Int32
  private var buffer: [UInt8] = []
  private var ended = false

  init(fd: Int32) { self.fd = fd }

  mutating func next() -> String? {
    while true {
      if let newline = buffer.firstIndex(of: 0x0a) {
        let line = String(decoding: buffer[..<newline], as: UTF8.self)
        buffer.removeSubrange(...newline)
        return line
      }
      if ended {
        guard !buffer.isEmpty else { return nil }
        defer { buffer.removeAll() }
        return String(decoding: buffer, as: UTF8.self)
      }
      if let bytes = HostIO.readSome(fd, max: 4096) { buffer += bytes } else { ended = true }
    }
  }
}

#if canImport(Glibc)
  import Glibc
#endif
