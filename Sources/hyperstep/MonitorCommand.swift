import ArgumentParser
import Debugger
import Devices
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
      ? (try? ELFFile(configuration.kernel)).map { SymbolTable(elf: $0, source: "") } : nil
    let session = MonitorSession(machine: vm, symbols: symbols)
    Glibc.exit(session.start())
  }
}

final class MonitorSession {
  let machine: Machine
  let symbols: SymbolTable?
  private var breakpoints: [UInt64] = []
  private var input = LineReader(fd: 0)

  init(machine: Machine, symbols: SymbolTable?) {
    self.machine = machine
    self.symbols = symbols
  }

  func say(_ text: String) { HostIO.write(1, Array((text + "\n").utf8)[...]) }

  func describe(_ stop: Stop) -> String {
    var text = "0x" + String(stop.pc, radix: 16)
    if let entry = symbols?.entry(containing: stop.pc) {
      text += " " + entry.name + (stop.pc == entry.address ? "" : "+0x" + String(stop.pc - entry.address, radix: 16))
    }
    if stop.reason != .step {
      text += " " + stop.reason.name
      switch stop.reason {
      case .exception(let vector), .interrupt(let vector): text += " \(vector)"
      case .guestRequest(let value): text += " \(value)"
      case .exit(let outcome): text += " " + TraceWriter.outcomeName(outcome)
      default: break
      }
    }
    return text
  }

  /// Runs the session; returns the process exit status.
  func start() -> Int32 {
    do {
      let stepper = try Stepper(machine: machine)
      var stop = try runUntilAttention(stepper)
      var announce = true
      while true {
        if announce { say("stop: " + describe(stop)) }
        announce = true
        if case .exit(let outcome) = stop.reason { return outcome.cleanExitStatus ?? ExitStatus.guestCrashed.rawValue }
        guard let line = prompt() else { return ExitStatus.success.rawValue }
        let words = line.split(separator: " ").map(String.init)
        switch words.first {
        case nil:
          announce = false
          continue
        case "s":
          let count = words.count > 1 ? max(1, Int(words[1]) ?? 1) : 1
          for index in 0..<count {
            stop = try stepper.step()
            if index < count - 1 { say("step: " + describe(stop)) }
            if case .exit = stop.reason { break }
          }
        case "c":
          stop = try runUntilAttention(stepper)
        case "r":
          let registers = try stepper.vcpu.registers()
          say(
            String(
              machine.snapshot(stepper.vcpu).dump.split(separator: "\n").dropFirst()
                .map { String($0) }.joined(separator: "\n")))
          _ = registers
          announce = false
          continue
        case "m":
          guard words.count == 3, let address = resolve(words[1]), let length = Int(words[2]),
            (1...4096).contains(length)
          else {
            say("usage: m ADDR LEN (LEN 1 to 4096)")
            announce = false
            continue
          }
          do {
            let bytes = try stepper.readMemory(linear: address, count: length)
            for row in stride(from: 0, to: bytes.count, by: 16) {
              let hex = bytes[row..<min(row + 16, bytes.count)].map {
                $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16)
              }
              say("0x" + String(address + UInt64(row), radix: 16) + ": " + hex.joined(separator: " "))
            }
          } catch {
            say("cannot read 0x\(String(address, radix: 16)): \(error)")
          }
          announce = false
          continue
        case "b":
          guard words.count == 2, let address = resolve(words[1]) else {
            say("usage: b ADDR|SYMBOL")
            announce = false
            continue
          }
          guard breakpoints.count < 4 else {
            say("all four hardware breakpoints are in use")
            announce = false
            continue
          }
          breakpoints.append(address)
          say("breakpoint at 0x" + String(address, radix: 16))
          announce = false
          continue
        case "q":
          return ExitStatus.success.rawValue
        default:
          say("unknown command '\(line)': s [N], c, r, m ADDR LEN, b ADDR, q")
          announce = false
          continue
        }
      }
    } catch {
      warn("error: \(error)")
      return ExitStatus.hostFailure.rawValue
    }
  }

  /// Full speed until the guest asks to be stepped, reaches a breakpoint, or ends.
  private func runUntilAttention(_ stepper: Stepper) throws -> Stop {
    while true {
      let stop = try stepper.run(until: breakpoints)
      if case .guestRequest(let value) = stop.reason, value != ControlPort.startStepping { continue }
      return stop
    }
  }

  private func prompt() -> String? {
    HostIO.write(1, Array("(hyperstep) ".utf8)[...])
    return input.next()
  }

  private func resolve(_ text: String) -> UInt64? {
    parseAddress(text) ?? symbols?.address(of: text)
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
