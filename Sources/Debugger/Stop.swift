import KVM
import Machine

/// Whether interrupts may reach a vCPU while it is being stepped.
public enum InterruptPolicy: String, Sendable, CaseIterable {
  /// Hold interrupts, NMIs and SMIs while stepping (KVM_GUESTDBG_BLOCKIRQ): a step never
  /// wanders into an interrupt handler.
  case block
  /// Let them in; the stop at a handler's first instruction carries the vector.
  case deliver
}

/// Why the stepper stopped. Every stop is "before the next instruction runs".
public enum StopReason: Sendable, Equatable {
  /// One instruction (or one iteration of a REP string instruction) ran.
  case step
  /// The vCPU executed HLT. With interrupts off it stays halted: later steps report this again.
  case halt(interruptsEnabled: Bool)
  /// The next instruction is the first of the guest's handler for this exception or
  /// software interrupt (INT n, INT3, INTO, INT1, or a fault the last instruction raised).
  case exception(vector: UInt8)
  /// The next instruction is the first of the guest's handler for this external interrupt.
  case interrupt(vector: UInt8)
  /// A host breakpoint at this linear address.
  case breakpoint(address: UInt64)
  /// The guest wrote this value to the control port (see `ControlPort`).
  case guestRequest(value: UInt32)
  /// `requestStop()` stopped a running vCPU (a debugger's Ctrl-C).
  case interrupted
  /// The guest wrote an MSR that is being watched (`Stepper.stopsAtMSRWrites`); the write has
  /// taken effect and the next instruction is the one after the WRMSR.
  case msrWrite(index: UInt32, value: UInt64)
  /// The instruction before this stop touched watched memory (`Stepper.setMemoryWatches`);
  /// for an instruction fetch, the stop is before the instruction. Interpreter engine only.
  case memoryAccess([MemoryAccessHit])
  /// The machine ended (debug exit, triple fault, failure).
  indirect case exit(RunOutcome)
  /// A run at full speed on KVM stopped after an instruction that wrote to a write-protected
  /// page (`Machine.protectFromWrites`): the caller compares what it watches there.
  case protectedPageWritten

  /// A short name for traces.
  public var name: String {
    switch self {
    case .step: "step"
    case .halt: "halt"
    case .exception: "exception"
    case .interrupt: "interrupt"
    case .breakpoint: "breakpoint"
    case .guestRequest: "request"
    case .interrupted: "interrupted"
    case .msrWrite: "msr-write"
    case .memoryAccess: "memory-access"
    case .exit: "exit"
    case .protectedPageWritten: "protected-write"
    }
  }
}

/// One stop: why, where (the linear address of the next instruction) and on which vCPU.
public struct Stop: Sendable, Equatable {
  public var reason: StopReason
  public var pc: UInt64
  public var vcpu: Int

  public init(reason: StopReason, pc: UInt64, vcpu: Int) {
    self.reason = reason
    self.pc = pc
    self.vcpu = vcpu
  }
}

/// A failure of the debugger itself (as opposed to the guest ending).
public struct DebuggerError: Error, CustomStringConvertible {
  public let description: String
  public init(_ description: String) { self.description = description }
}
