/// What one `step()` did.
public enum StepResult: Sendable, Equatable {
  /// One instruction retired.
  case retired
  /// The processor is halted (HLT retired now or earlier); it stays so until an interrupt,
  /// which a later engine delivers.
  case halted
  /// The instruction raised an exception. Faults leave RIP at the instruction and its effects
  /// undone; traps and INT n leave RIP after it. Undelivered (`X86CPU.deliversExceptions` off).
  case exception(X86Exception)
  /// The instruction retired and the I/O bus asked to stop (a debug-exit port, say).
  case ioStop
  /// The guest needs something the interpreter does not model yet.
  case unsupported(UnsupportedFeature)
  /// With `X86CPU.deliversExceptions`: the instruction (or `deliverExternalInterrupt`/
  /// `deliverNMI`) raised this event and it was delivered through the IVT/IDT: the CPU is at
  /// the handler's first instruction. For a fault nothing of the instruction retired. When
  /// delivery itself faulted, this is the event finally delivered (a #DF, say).
  case delivered(X86Exception)
  /// A fault while delivering a double fault: the processor shut down (SDM Vol. 3, 6.15,
  /// interrupt 8). The state is as before the faulting instruction; a platform resets.
  case tripleFault
}

/// What `StepResult.unsupported` names: architectural features the interpreter does not model.
public enum UnsupportedFeature: Sendable, Equatable {
  /// A task switch: a task gate in the IDT, a far JMP/CALL to a TSS or task gate, or IRET
  /// with NT set outside IA-32e mode. Hardware task switching is not modelled.
  case taskSwitch
  /// Virtual-8086 mode (IRET to VM = 1, or delivery from it) is not modelled.
  case virtual8086
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
  /// Called just before each access above with the CPU's retired-instruction count and its
  /// state as the instruction has left it so far, so that an engine can give devices the
  /// exact virtual time of the access and show the state to whoever watches the access (the
  /// CPU itself cannot be asked while it executes). Does nothing unless implemented.
  func willAccess(retiredInstructions: UInt64, state: borrowing X86State)
  /// WRMSR is about to write `value` to MSR `index` (before the MSR's own checks): whether to
  /// carry it out, and whether the run stops after the instruction (`StepResult.ioStop`).
  func willWriteMSR(_ index: UInt32, value: UInt64, state: borrowing X86State) -> MSRWriteVerdict
}

/// What an engine says of a guest's WRMSR (see `X86IOBus.willWriteMSR`).
public enum MSRWriteVerdict: Sendable {
  case perform
  /// Carry it out and stop the run after the instruction.
  case performAndStop
  /// Leave the MSR as it is, without a fault (a watcher refused the write).
  case drop
}

extension X86IOBus {
  public func willAccess(retiredInstructions: UInt64, state: borrowing X86State) {}
  public func willWriteMSR(_ index: UInt32, value: UInt64, state: borrowing X86State) -> MSRWriteVerdict { .perform }
}

/// A bus with nothing on it: reads float to all-ones, writes are dropped (as on a PC).
public final class UnmappedIOBus: X86IOBus {
  public init() {}
  public func portRead(_ port: UInt16, size: Int) -> UInt32 { size >= 4 ? ~0 : (1 << (size * 8)) - 1 }
  public func portWrite(_ port: UInt16, size: Int, value: UInt32) -> Bool { false }
  public func mmioRead(_ address: UInt64, size: Int) -> UInt64 { size >= 8 ? ~0 : (1 << (size * 8)) - 1 }
  public func mmioWrite(_ address: UInt64, size: Int, value: UInt64) -> Bool { false }
}
