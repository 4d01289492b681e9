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
      --from and --until take an address (0x...) or a symbol from the kernel's ELF symbol \
      table (or --symbols FILE: an ELF or a System.map). --from request waits for the guest to \
      write 1 to Hyperstep's control port (0x600); the trace then starts at the instruction \
      after that write, and ends when the guest writes 0. The guest's serial console goes to \
      standard output when the trace has --output, otherwise to standard error.

      Exit status: as `hyperstep run` for how the guest ended; 0 when --until or --limit ended \
      the trace; 12 when the guest ended before reaching --from.
      """)

  @OptionGroup var machine: MachineOptions

  @Option(help: ArgumentHelp("Where tracing starts: an address, a symbol, or 'request'.", valueName: "addr|symbol"))
  var from: String?

  @Option(help: ArgumentHelp("The last address traced.", valueName: "addr|symbol"))
  var until: String?

  static let defaultLimit = 1_000_000

  @Option(help: "The most lines to write (a note on stderr says when it ends the trace).")
  var limit: Int = defaultLimit

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
    help: ArgumentHelp(
      "Report guest writes of these MSRs (names such as LSTAR, EFER, SYSENTER_EIP, or numbers), comma-separated.",
      valueName: "msrs"))
  var msrEvents: String?

  @Option(help: ArgumentHelp("Keep only stops in this address range (START-END).", valueName: "range"))
  var filterRange: String?

  @Option(help: ArgumentHelp("Keep only stops in the address space with this page-aligned CR3.", valueName: "cr3"))
  var filterCr3: String?

  @Option(help: ArgumentHelp("Keep only stops in this ring: kernel (0) or user (3).", valueName: "ring"))
  var filterRing: String?

  func run() throws {
    guard limit > 0 else { fail("--limit must be at least 1, got \(limit)", status: .badInput) }
    guard let policy = InterruptPolicy(rawValue: irq) else {
      fail("--irq '\(irq)' is not block or deliver", status: .badInput)
    }
    let profileFormats = ["summary", "calltree", "folded", "chrome"]
    let traceFormat = TraceWriter.Format(rawValue: format)
    guard traceFormat != nil || profileFormats.contains(format) else {
      fail("--format '\(format)' is not text, jsonl, \(profileFormats.joined(separator: ", "))", status: .badInput)
    }
    var filter = TraceFilter()
    do {
      if let filterRange { filter.range = try TraceFilter.parseRange(filterRange) }
      if let filterCr3 { filter.cr3 = try TraceFilter.parseCR3(filterCr3) }
    } catch {
      fail("--filter-\(filterRange != nil && filter.range == nil ? "range" : "cr3"): \(error)", status: .badInput)
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
    let configuration = machine.configuration()
    let table = loadSymbols(configuration)
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
    let vm: Machine
    do {
      // A trace on standard output keeps it to itself: the guest's console goes to stderr.
      vm = try Machine(configuration: configuration, console: StandardOutputConsole(fd: output == nil ? 2 : 1))
    } catch {
      fail(error.description, status: error.isBadInput ? .badInput : .hostFailure)
    }
    let sink: TraceSink =
      traceFormat.map { .lines(TraceWriter(fd: fd, format: $0, symbols: table)) }
      ?? .profile(TraceProfile(symbols: table), format)
    let options = TraceSession.Options(
      sink: sink, filter: filter, policy: policy, from: fromAddress, fromRequest: from == "request", fromText: from,
      until: untilAddress, limit: limit, watchedMSRs: watchedMSRs, stats: stats,
      showProgress: output != nil && HostIO.isTerminal(2))
    let status = TraceSession(machine: vm, options: options).run()
    do {
      try sink.finish(fd: fd)
      if fd != 1 { try HostIO.closeWritten(fd) }
    } catch {
      // The guest's own status would hide that the trace is incomplete.
      fail("cannot write the trace to \(output ?? "standard output"): \(error); it is incomplete", status: .outputFailed)
    }
    Glibc.exit(status)
  }

  private func loadSymbols(_ configuration: MachineConfiguration) -> SymbolTable? {
    if let path = symbols {
      let bytes: [UInt8]
      do { bytes = try HostIO.readFile(path) } catch { fail("\(path): \(error)", status: .badInput) }
      do { return try SymbolTable(file: bytes, source: path) } catch { fail("--symbols \(path): \(error)", status: .badInput) }
    }
    // Other formats carry no symbols; an ELF that does not parse is reported as the machine would.
    guard ELFFile.hasMagic(configuration.kernel) else { return nil }
    do { return SymbolTable(elf: try ELFFile(configuration.kernel), source: configuration.kernelName) } catch {
      fail("\(configuration.kernelName): \(error)", status: .badInput)
    }
  }

  private func resolve(_ text: String, _ table: SymbolTable?, option: String) -> UInt64 {
    if let address = parseAddress(text), text.first?.isNumber == true { return address }
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
