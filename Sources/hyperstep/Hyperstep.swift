import ArgumentParser
import KVM

@main
struct Hyperstep: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "hyperstep",
    abstract: "A KVM virtual machine monitor for precise, guest-transparent debugging.",
    discussion: """
      Exit status: the guest's isa-debug-exit status ((value << 1) | 1), 0 for a clean halt \
      with interrupts off, 2 for bad input, 4 when the guest crashed (triple fault, \
      emulation failure), 6 when it halted with interrupts on and nothing can wake it, \
      8 on --timeout, 10 when the host cannot run a VM.
      """,
    subcommands: [RunCommand.self, TraceCommand.self, DebugCommand.self, MonitorCommand.self],
    defaultSubcommand: RunCommand.self)

  /// Argument errors become one line on stderr and exit status 2; --help still prints in full.
  static func main() {
    do {
      var command = try parseAsRoot()
      try command.run()
    } catch let exit as ExitCode {
      Glibc.exit(exit.rawValue)
    } catch {
      if exitCode(for: error) == .success {
        print(fullMessage(for: error))
        Glibc.exit(0)
      }
      let message = message(for: error).split(separator: "\n").first.map(String.init) ?? "invalid arguments"
      fail(message, status: .badInput)
    }
  }
}

/// The process exit statuses Hyperstep itself chooses. Debug-exit statuses are always odd,
/// so these are even and never collide with a guest's own.
enum ExitStatus: Int32 {
  case success = 0
  case badInput = 2
  case guestCrashed = 4
  case haltedForever = 6
  case timedOut = 8
  case hostFailure = 10
  case fromNeverReached = 12
}

/// Prints one line to stderr and exits.
func fail(_ message: String, status: ExitStatus) -> Never {
  warn("error: " + message)
  Glibc.exit(status.rawValue)
}

func warn(_ message: String) {
  HostIO.write(2, Array("hyperstep: \(message)\n".utf8)[...])
}

#if canImport(Glibc)
  import Glibc
#endif
