/// What the GDB server needs from a machine. GDBRemote knows nothing else of Hyperstep:
/// the CLI hands it an implementation backed by the stepper.
public protocol DebugTarget: AnyObject {
  /// Thread ids as gdb numbers them (1-based; one per vCPU).
  var threads: [Int] { get }
  func threadName(_ thread: Int) -> String

  /// `thread`'s registers as the machine's `g` image (`RegisterLayout.machine`: x86-64 or
  /// AArch64), whatever layout gdb was offered (the session narrows it), written into
  /// `buffer`. Unless `full`, only the general registers (`generalCount`) need be filled:
  /// the `g` reply carries those, and gdb fetches the rest with `p` when it wants them.
  func readRegisters(thread: Int, into buffer: inout [UInt8], full: Bool) throws
  /// Sets all of `thread`'s registers from a full machine image.
  func writeRegisters(thread: Int, _ image: [UInt8]) throws

  func readMemory(thread: Int, address: UInt64, count: Int) throws -> [UInt8]
  func writeMemory(thread: Int, address: UInt64, _ bytes: [UInt8]) throws

  /// The region of `thread`'s address space around `address`, for LLDB's qMemoryRegionInfo.
  func memoryRegion(thread: Int, address: UInt64) throws -> MemoryRegion

  /// How many watchpoints can be set at once, for LLDB's qWatchpointSupportInfo; nil when
  /// there is no fixed number of slots.
  var watchpointSlots: Int? { get }
  /// Returns false when the kind is not supported (the reply is then empty).
  func insertBreakpoint(_ kind: BreakpointKind, address: UInt64, length: Int) throws -> Bool
  func removeBreakpoint(_ kind: BreakpointKind, address: UInt64, length: Int) throws -> Bool

  /// Executes one instruction on `thread`.
  func step(thread: Int) throws -> StopEvent
  /// Runs until a breakpoint, an exit, or `interrupt()`.
  func resume(thread: Int) throws -> StopEvent
  /// Safe from any thread: makes a running `resume` return `.interrupted` soon.
  func interrupt()

  /// `monitor` commands; returns the text to show.
  func monitor(_ command: String) -> String
  /// The client detached: let the guest run on without it.
  func detach()
  func kill()
}

/// A range of a target's address space and what may be done there.
public struct MemoryRegion: Sendable, Equatable {
  public var start: UInt64
  public var size: UInt64
  /// Some of "rwx" in that order; empty where nothing is mapped.
  public var permissions: String

  public init(start: UInt64, size: UInt64, permissions: String) {
    self.start = start
    self.size = size
    self.permissions = permissions
  }
}

public enum BreakpointKind: Int, Sendable {
  case software = 0
  case hardware = 1
  case write = 2
  case read = 3
  case access = 4
}

/// Why the target stopped, as a stop reply will say it.
public enum StopEvent: Sendable, Equatable {
  case step(thread: Int)
  /// A step found the vCPU halted with interrupts off, or waiting for INIT and a start-up
  /// IPI: it runs nothing until another vCPU or an NMI wakes it, however often stepped.
  case halted(thread: Int)
  case breakpoint(thread: Int, kind: BreakpointKind, address: UInt64)
  case interrupted(thread: Int)
  /// The guest ended with this process exit status.
  case exited(status: Int32)
  /// The guest crashed: reported as a signal (SIGSEGV) so the client shows it.
  case crashed(thread: Int, reason: String)
}

/// A failure a command reports as `E01`-style error replies.
public struct TargetError: Error, Sendable, Equatable, CustomStringConvertible {
  public let code: UInt8
  public let description: String
  public init(code: UInt8 = 1, _ description: String) {
    self.code = code
    self.description = description
  }
}
