import ArgumentParser
import Debugger
import Devices
import Introspection
import KVM
import Machine

/// An interactive event console in the manner of Xen's xen-access: the guest runs until it
/// asks for stepping through the control port (or hits a breakpoint), then each stop is
/// printed and commands are read from standard input, so it can be driven by a script.
struct MonitorCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "monitor",
    abstract: "Run a guest and inspect it at its own request: step, continue, registers, memory, breakpoints.",
    discussion: """
      The guest runs until it writes 1 to the control port (0x600), hits a breakpoint or ends. \
      Commands, one per line on standard input: s [N] (step), c (continue), r (registers), \
      m ADDR LEN (memory), b ADDR|SYMBOL (hardware breakpoint), q (quit). End of input quits.
      """)

  @OptionGroup var machine: MachineOptions

  func run() throws {
    let configuration = machine.configuration()
    let vm: Machine
    do {
      vm = try Machine(configuration: configuration, console: StandardOutputConsole(fd: 1))
    } catch {
      fail(error.description, status: error.isBadInput ? .badInput : .hostFailure)
    }
    let symbols: SymbolTable? =
      ELFFile.hasMagic(configuration.kernel)
      // The machine has parsed this ELF already, so it cannot fail here; symbols are optional.
      ? (try? ELFFile(configuration.kernel)).map { SymbolTable(elf: $0, source: "") } : nil
    Glibc.exit(MonitorConsole(machine: vm, symbols: symbols).start())
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
  private var input = LineReader(fd: 0)
  /// Steps still to take for the last `s N` (the stops before the last print as `step:`).
  private var stepsLeft = 0
  private var stepping = false
  private var hardwareBreakpoints = 0
  private var quit = false

  init(machine: Machine, symbols: SymbolTable?) {
    self.machine = machine
    self.symbols = symbols
  }

  func say(_ text: String) { HostIO.write(1, Array((text + "\n").utf8)[...]) }

  /// "0xPC symbol+offset reason": the PC of the next instruction, then why it stopped.
  func describe(_ pc: UInt64, _ reason: String?) -> String {
    var text = "0x" + String(pc, radix: 16)
    if let entry = symbols?.entry(containing: pc) {
      text += " " + entry.name + (pc == entry.address ? "" : "+0x" + String(pc - entry.address, radix: 16))
    }
    if let reason { text += " " + reason }
    return text
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
      switch try session.run() {
      case .machineEnded(let outcome): return outcome.cleanExitStatus ?? ExitStatus.guestCrashed.rawValue
      case .stopped: return ExitStatus.success.rawValue  // q, or the end of the input
      }
    } catch {
      warn("error: \(error)")
      return ExitStatus.hostFailure.rawValue
    }
  }

  /// A stop: prints it, then takes commands until one lets the guest go on.
  private func attend(_ context: EventContext, reason: String?) throws -> EventResponse {
    say("stop: " + describe(try context.pc(), reason))
    while true {
      guard let line = prompt() else { return .stop }
      let words = line.split(separator: " ").map(String.init)
      switch words.first {
      case nil:
        continue
      case "s":
        stepsLeft = words.count > 1 ? max(1, Int(words[1]) ?? 1) : 1
        return setStepping(true)
      case "c":
        return setStepping(false)
      case "r":
        let state = CPUState(
          vcpu: context.vcpu, registers: try context.registers(), special: try context.specialRegisters())
        say(state.dump.split(separator: "\n").dropFirst().joined(separator: "\n"))
      case "m":
        guard words.count == 3, let address = resolve(words[1]), let length = Int(words[2]), (1...4096).contains(length)
        else {
          say("usage: m ADDR LEN (LEN 1 to 4096)")
          continue
        }
        dumpMemory(context, at: address, count: length)
      case "b":
        guard words.count == 2, let address = resolve(words[1]) else {
          say("usage: b ADDR|SYMBOL")
          continue
        }
        addBreakpoint(context, at: address)
      case "q":
        return .stop
      default:
        say("unknown command '\(line)': s [N], c, r, m ADDR LEN, b ADDR, q")
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
      let bytes = try context.readMemory(virtual: address, count: count)
      for row in stride(from: 0, to: bytes.count, by: 16) {
        let hex = bytes[row..<min(row + 16, bytes.count)].map {
          $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16)
        }
        say("0x" + String(address + UInt64(row), radix: 16) + ": " + hex.joined(separator: " "))
      }
    } catch {
      say("cannot read 0x\(String(address, radix: 16)): \(error)")
    }
  }

  /// A hardware breakpoint, subscribed from inside the running session; its hits stop here.
  private func addBreakpoint(_ context: EventContext, at address: UInt64) {
    guard hardwareBreakpoints < 4 else {
      say("all four hardware breakpoints are in use")
      return
    }
    do {
      try context.subscribe(.hardwareBreakpoint(at: address), vcpus: [0]) { [self] _, context in
        try attend(context, reason: "breakpoint")
      }
      hardwareBreakpoints += 1
      say("breakpoint at 0x" + String(address, radix: 16))
    } catch {
      say("no breakpoint at 0x\(String(address, radix: 16)): \(error)")
    }
  }

  private func prompt() -> String? {
    HostIO.write(1, Array("(hyperstep) ".utf8)[...])
    return input.next()
  }

  private func resolve(_ text: String) -> UInt64? {
    parseAddress(text) ?? symbols?.address(ofExpression: text)
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
