/// What one `step()` did.
public enum StepResult: Sendable, Equatable {
  /// One instruction retired.
  case retired
  /// The processor is halted (HLT retired now or earlier); it stays so until an interrupt,
  /// which a later engine delivers.
  case halted
  /// The instruction raised an exception. Faults leave RIP at the instruction and its effects
  /// undone; traps and INT n leave RIP after it. Not yet delivered through the IDT.
  case exception(X86Exception)
  /// The instruction retired and the I/O bus asked to stop (a debug-exit port, say).
  case ioStop
  /// The guest needs something the interpreter does not model yet.
  case unsupported(UnsupportedFeature)
}

/// What `StepResult.unsupported` names. Empty today: 32-bit and PAE paging, once the one
/// case here, are implemented.
public enum UnsupportedFeature: Sendable, Equatable {
}

/// Port I/O and MMIO as the interpreter sees them. I/O is not a hot path, so it is reached
/// through this protocol; an engine adapts the machine's `IOBus` to it. Physical addresses
/// outside guest RAM are MMIO.
public protocol X86IOBus: AnyObject {
  func portRead(_ port: UInt16, size: Int) -> UInt32
  /// Returns true to stop the run after this instruction (`StepResult.ioStop`).
  func portWrite(_ port: UInt16, size: Int, value: UInt32) -> Bool
  func mmioRead(_ address: UInt64, size: Int) -> UInt64
  func mmioWrite(_ address: UInt64, size: Int, value: UInt64) -> Bool
}

/// A bus with nothing on it: reads float to all-ones, writes are dropped (as on a PC).
public final class UnmappedIOBus: X86IOBus {
  public init() {}
  public func portRead(_ port: UInt16, size: Int) -> UInt32 { size >= 4 ? ~0 : (1 << (size * 8)) - 1 }
  public func portWrite(_ port: UInt16, size: Int, value: UInt32) -> Bool { false }
  public func mmioRead(_ address: UInt64, size: Int) -> UInt64 { size >= 8 ? ~0 : (1 << (size * 8)) - 1 }
  public func mmioWrite(_ address: UInt64, size: Int, value: UInt64) -> Bool { false }
}
