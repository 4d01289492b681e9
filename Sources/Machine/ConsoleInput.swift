import Synchronization

/// Whether the machine's serial console has a live input (the host's standard input, read by
/// the CLI's console thread) and how idle time passes meanwhile; see `waitIdle` in
/// InterpreterRunLoop.swift. A machine with no input (the default, and every test that does
/// not feed one) ends as before when every vCPU sleeps with nothing left to wake it.
public final class ConsoleInput: Sendable {
  private let state = Mutex<(open: Bool, paced: Bool)>((false, false))

  public init() {}

  /// Input may still arrive.
  public var isOpen: Bool { state.withLock { $0.open } }
  /// Idle virtual time follows the wall clock (an interactive terminal).
  public var pacesIdleTime: Bool { state.withLock { $0.paced } }

  /// The input is attached: from a terminal (`paced`) or a pipe or file.
  public func open(paced: Bool) { state.withLock { $0 = (true, paced) } }

  /// The input reached its end: nothing more will arrive.
  public func close() { state.withLock { $0.open = false } }
}
