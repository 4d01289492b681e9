import ArgumentParser
import KVM
import Machine

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
  /// The trace or profile could not be written in full (a full disk, a closed pipe).
  case outputFailed = 14
}

extension RunOutcome {
  /// The exit status of a run that ended on its own terms (a debug-exit write, a halt, a
  /// power-off or reset, the --timeout), or nil when the guest crashed or hung and the
  /// caller must say how. `trace`, `monitor` and the GDB server share this so one guest
  /// ending gives one status whichever command ran it.
  var cleanExitStatus: Int32? {
    switch self {
    case .debugExit(_, let status): return status
    case .halted, .powerOff, .reset: return ExitStatus.success.rawValue
    case .timedOut: return ExitStatus.timedOut.rawValue
    case .tripleFault, .internalError, .entryFailed, .haltedForever, .kernelPanic: return nil
    }
  }
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
