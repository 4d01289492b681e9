import ArgumentParser
import Debugger
import Devices
import KVM
import Machine

struct TraceCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "trace",
    abstract: "Run a guest to --from at full speed, then single-step it, one line per instruction.",
    discussion: """
      --from and --until take an address (0x...), SYMBOL or SYMBOL+0xOFFSET, with symbols from the kernel's ELF symbol \
      table (or --symbols FILE: an ELF or a System.map). --from request waits for the guest to \
      write 1 to Hyperstep's control port (0x600); the trace then starts at the instruction \
      after that write, and ends when the guest writes 0. The guest's serial console goes to \
      standard output when the trace has --output, otherwise to standard error.

      Exit status: as `hyperstep run` for how the guest ended; 0 when --until or --limit ended \
      the trace (--limit, 1000000 by default, says so on stderr); 12 when the guest ended \
      before reaching --from; 14 when the trace could not be written in full.
      """)

  @OptionGroup var machine: MachineOptions

  // Options that take numbers read the next argument even when it starts with a dash, so a
  // negative number is refused for what it is rather than taken for an option (see OptionValue).
  @Option(
    parsing: .unconditional,
    help: ArgumentHelp("Where tracing starts: an address, a symbol, or 'request'.", valueName: "addr|symbol"))
  var from: String?

  @Option(parsing: .unconditional, help: ArgumentHelp("The last address traced.", valueName: "addr|symbol"))
  var until: String?

  static let defaultLimit = 1_000_000

  @Option(parsing: .unconditional, help: "The most lines to write (a note on stderr says when it ends the trace).")
  var limit: String = String(TraceCommand.defaultLimit)

  @Option(help: ArgumentHelp("Interrupts while stepping: block (default) or deliver.", valueName: "policy"))
  var irq: String = "block"

  @Option(
    help: ArgumentHelp(
      "text (default) or jsonl: a line per stop; summary, calltree, folded or chrome: a function-level profile.",
      valueName: "format"))
  var format: String = "text"

  @Option(help: ArgumentHelp("Write the trace here instead of standard output.", valueName: "file"))
  var output: String?

  @Option(help: ArgumentHelp("Symbols from this ELF or System.map instead of the kernel's.", valueName: "file"))
  var symbols: String?

  @Flag(help: "Print the number of stops, the stepping time and the rate to stderr at the end.")
  var stats = false

  @Option(
    parsing: .unconditional,
    help: ArgumentHelp(
      "Report guest writes of these MSRs (names such as LSTAR, EFER, SYSENTER_EIP, or numbers), comma-separated.",
      valueName: "msrs"))
  var msrEvents: String?

  @Option(
    parsing: .unconditional,
    help: ArgumentHelp("Keep only stops in this address range (START-END).", valueName: "range"))
  var filterRange: String?

  @Option(
    parsing: .unconditional,
    help: ArgumentHelp("Keep only stops in the address space with this page-aligned CR3.", valueName: "cr3"))
  var filterCr3: String?

  @Option(help: ArgumentHelp("Keep only stops in this ring: kernel (0) or user (3).", valueName: "ring"))
  var filterRing: String?

  @Option(
    help: ArgumentHelp(
      "The engine that traces once --from is reached: emu (Hyperstep's own CPU; the default on a KVM machine that can move to it) or kvm.",
      valueName: "engine"))
  var traceAccel: String?

  func run() throws {
    let limit: Int
    do { limit = try OptionValue.count(self.limit, option: "--limit", in: 1...Int.max) } catch {
      fail(error.description, status: .badInput)
    }
    guard let policy = InterruptPolicy(rawValue: irq) else {
      fail("--irq '\(irq)' is not block or deliver", status: .badInput)
    }
    if let traceAccel, traceAccel != "kvm" && traceAccel != "emu" {
      fail("--trace-accel '\(traceAccel)' is not kvm or emu", status: .badInput)
    }
    let profileFormats = ["summary", "calltree", "folded", "chrome"]
    let traceFormat = TraceWriter.Format(rawValue: format)
    guard traceFormat != nil || profileFormats.contains(format) else {
      fail("--format '\(format)' is not text, jsonl, \(profileFormats.joined(separator: ", "))", status: .badInput)
    }
    var filter = TraceFilter()
    if let filterRange {
      do { filter.range = try TraceFilter.parseRange(filterRange) } catch {
        fail(
          BadOptionValue(option: "--filter-range", text: filterRange, problem: error.description).description,
          status: .badInput)
      }
    }
    if let filterCr3 {
      do { filter.cr3 = try TraceFilter.parseCR3(filterCr3) } catch {
        fail(
          BadOptionValue(option: "--filter-cr3", text: filterCr3, problem: error.description).description,
          status: .badInput)
      }
    }
    if let filterRing {
      guard let ring = TraceFilter.Ring(rawValue: filterRing) else {
        fail("--filter-ring '\(filterRing)' is not kernel or user", status: .badInput)
      }
      filter.ring = ring
    }
    var watchedMSRs: [UInt32] = []
    if let msrEvents {
      for name in msrEvents.split(separator: ",").map(String.init) {
        // MSR names start with a letter; anything else is meant as a number, and said so.
        if name.first.map({ !$0.isLetter }) ?? false {
          do {
            let number = try OptionValue.unsigned(
              name, option: "--msr-events", bits: 32, what: "an MSR name or number", example: "LSTAR or 0xc0000082")
            watchedMSRs.append(UInt32(number))
            continue
          } catch {
            fail(error.description, status: .badInput)
          }
        }
        guard let index = MSRNames.index(of: name) else {
          fail(
            "--msr-events: unknown MSR '\(name)' (known: \(MSRNames.known.map(\.name).joined(separator: ", ")), or a number)",
            status: .badInput)
        }
        watchedMSRs.append(index)
      }
      guard watchedMSRs.count <= 16 else { fail("--msr-events: at most 16 MSRs can be watched", status: .badInput) }
    }
    // A closed pipe on the trace's output is reported as a write error, not a silent SIGPIPE death.
    HostSocket.ignoreBrokenPipes()
    // Numeric --from and --until are checked before the kernel is read.
    _ = from.flatMap { numericAddress($0, option: "--from") }
    _ = until.flatMap { numericAddress($0, option: "--until") }
    let configuration = machine.configuration()
    let aarch64 = machine.isAArch64(kernelBytes: machine.kernel == nil ? nil : configuration.kernel)
    if aarch64 {
      for (given, option) in [(filterCr3, "--filter-cr3"), (filterRing, "--filter-ring"), (msrEvents, "--msr-events")]
      where given != nil {
        fail("\(option) is for x86 guests; this one is AArch64", status: .badInput)
      }
      if traceAccel == "kvm" { fail("--trace-accel kvm: AArch64 guests run on the interpreter", status: .badInput) }
    }
    let table = loadSymbols(configuration, aarch64: aarch64)
    let fromAddress = from == "request" ? nil : from.map { resolve($0, table, option: "--from") }
    let untilAddress = until.map { resolve($0, table, option: "--until") }
    if let fromAddress, fromAddress == untilAddress {
      fail("--until 0x\(String(fromAddress, radix: 16)) is the --from address: nothing to trace", status: .badInput)
    }
    var fd: Int32 = 1
    if let output {
      do { fd = try HostIO.createFile(output) } catch {
        fail("\(output): cannot write the trace: \(error)", status: .badInput)
      }
    }
    if aarch64 {
      let sink = makeSink(fd: fd, table: table, traceFormat: traceFormat)
      let status = traceAArch64(
        configuration, sink: sink, filter: filter, policy: policy, from: fromAddress, until: untilAddress, limit: limit)
      finish(sink, status: status, fd: fd)
    }
    let vm: Machine
    do {
      // A trace on standard output keeps it to itself: the guest's console goes to stderr.
      vm = try Machine(configuration: configuration, console: StandardOutputConsole(fd: output == nil ? 2 : 1))
    } catch {
      fail(error.description, status: error.isBadInput ? .badInput : .hostFailure)
    }
    // The tracing engine: the interpreter traces faster than KVM steps and sees memory, so a
    // KVM machine moves to it at --from unless told otherwise or unable to.
    var traceOnInterpreter = false
    if vm.engine == .kvm {
      switch (traceAccel, vm.engineSwitchRefusal) {
      case ("kvm", _): break
      case (_, nil): traceOnInterpreter = true
      case ("emu", let refusal?): fail("--trace-accel emu: \(refusal)", status: .badInput)
      case (_, let refusal?): warn("note: tracing on KVM: \(refusal)")
      }
    } else if traceAccel == "kvm" {
      fail("--trace-accel kvm: the machine runs on the interpreter (--accel emu), which traces it", status: .badInput)
    }
    let sink = makeSink(fd: fd, table: table, traceFormat: traceFormat)
    let options = TraceSession.Options(
      sink: sink, filter: filter, policy: policy, from: fromAddress, fromRequest: from == "request", fromText: from,
      until: untilAddress, limit: limit, watchedMSRs: watchedMSRs, stats: stats,
      showProgress: output != nil && HostIO.isTerminal(2), traceOnInterpreter: traceOnInterpreter)
    let status = TraceSession(machine: vm, options: options).run()
    finish(sink, status: status, fd: fd)
  }

  private func makeSink(fd: Int32, table: SymbolTable?, traceFormat: TraceWriter.Format?) -> TraceSink {
    traceFormat.map { .lines(TraceWriter(fd: fd, format: $0, symbols: table)) }
      ?? .profile(TraceProfile(symbols: table), format)
  }

  /// Writes what the sink still holds and exits with `status`, or with 14 when the trace
  /// could not be written in full: the guest's own status would hide that.
  private func finish(_ sink: TraceSink, status: Int32, fd: Int32) -> Never {
    do {
      try sink.finish(fd: fd)
      if fd != 1 { try HostIO.closeWritten(fd) }
    } catch {
      fail(
        "cannot write the trace to \(output ?? "standard output"): \(error); it is incomplete", status: .outputFailed)
    }
    Glibc.exit(status)
  }

  private func loadSymbols(_ configuration: MachineConfiguration, aarch64: Bool) -> SymbolTable? {
    if let path = symbols {
      let bytes = readInput(path, wanted: "an ELF or System.map file")
      do { return try SymbolTable(file: bytes, source: path) } catch {
        fail("--symbols \(path): \(error)", status: .badInput)
      }
    }
    // Other formats carry no symbols; an ELF that does not parse is reported as the machine would.
    guard ELFFile.hasMagic(configuration.kernel) else { return nil }
    do {
      return SymbolTable(
        elf: try ELFFile(configuration.kernel, for: aarch64 ? .aarch64 : .x86), source: configuration.kernelName)
    } catch {
      fail("\(configuration.kernelName): \(error)", status: .badInput)
    }
  }

  /// The address `text` is written as, when it is a number (symbols begin with a letter, an
  /// underscore or a dot); nil for a symbol. Exits with status 2 when the number is no address.
  private func numericAddress(_ text: String, option: String) -> UInt64? {
    guard let first = text.first, first.isNumber || first == "-" || first == "+" else { return nil }
    do {
      return try OptionValue.unsigned(text, option: option, what: "an address or a symbol", example: "0x100000")
    } catch {
      fail(error.description, status: .badInput)
    }
  }

  private func resolve(_ text: String, _ table: SymbolTable?, option: String) -> UInt64 {
    if let address = numericAddress(text, option: option) { return address }
    guard let table, !table.isEmpty else {
      fail(
        "\(option) \(text): no symbol table to look it up in (\(machine.kernel ?? "the demo guest") has none; try --symbols)",
        status: .badInput)
    }
    guard let address = table.address(ofExpression: text) else {
      fail(
        "\(option) \(text): no such symbol in \(table.source) (\(table.entries.count) symbols searched; SYMBOL or SYMBOL+0xOFFSET)",
        status: .badInput)
    }
    return address
  }

}

#if canImport(Glibc)
  import Glibc
#endif

/// Where the stops of a trace go: a line each, or a profile written at the end.
enum TraceSink {
  case lines(TraceWriter)
  case profile(TraceProfile, String)

  func record(_ stop: Stop) {
    switch self {
    case .lines(let writer): writer.write(stop)
    case .profile(let profile, _): profile.record(stop)
    }
  }

  func flush() {
    if case .lines(let writer) = self { writer.flush() }
  }

  /// The first failed write of the lines so far (a profile is written only at the end).
  var failure: HostIO.WriteError? {
    if case .lines(let writer) = self { return writer.failure }
    return nil
  }

  /// Writes what is still buffered, or the whole profile; throws if any of the trace was lost.
  func finish(fd: Int32) throws(HostIO.WriteError) {
    switch self {
    case .lines(let writer):
      writer.flush()
      if let failure = writer.failure { throw failure }
    case .profile(let profile, let format):
      profile.finish()
      let text: String
      switch format {
      case "summary": text = profile.summary()
      case "calltree": text = profile.callTree()
      case "folded": text = profile.folded()
      default: text = profile.chromeTrace()
      }
      try HostIO.writeAll(fd, Array(text.utf8)[...])
    }
  }
}
