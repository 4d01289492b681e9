import AArch64
import Machine

/// What a session can subscribe to. Each subscription also names the vCPUs it covers.
public enum EventFilter: Sendable, Equatable {
  /// Every instruction a vCPU executes while single-stepping is on for it (see
  /// `IntrospectionSession.setSingleStep` and `EventResponse.toggleSingleStep`).
  case singleStep
  /// A host INT3 planted at this linear address (under the CR3 current when the session starts).
  case softwareBreakpoint(at: UInt64)
  /// A host execution breakpoint in a debug-register slot (four at most, shared by all).
  case hardwareBreakpoint(at: UInt64)
  /// A change of 1 to 8 bytes at a linear address, seen after the instruction that made it.
  /// This host kind delivers no data breakpoints, so a watching vCPU is single-stepped.
  case writeWatchpoint(at: UInt64, length: Int)
  /// Reads, writes or instruction fetches of watched memory (linear or guest-physical, any
  /// length, any number), seen after the accessing instruction (before it, for a fetch): the
  /// libvmi mem_access model. Exact for every instruction kind; page-table walks excepted.
  /// Interpreter engine only (`--accel emu`).
  case memoryAccess(MemoryWatch)
  /// Delivery of these exception vectors (0-31) to the guest's own handler; empty: all.
  /// On AArch64 the numbers are exception classes (ESR_EL1.EC, 0-63: 0x15 SVC, 0x25 a data
  /// abort from EL1, 0x3c BRK ...), and the event is `.exceptionSyndrome`.
  case exception(vectors: Set<UInt8>)
  /// Delivery of these interrupt vectors; empty: all. On AArch64: 0 an IRQ, 1 an FIQ.
  case interrupt(vectors: Set<UInt8>)
  /// Port I/O in this range, before it is carried out.
  case port(ClosedRange<UInt16>)
  /// MMIO (guest-physical addresses no RAM backs) in this range, before it is carried out.
  case mmio(ClosedRange<UInt64>)
  /// WRMSR to one of these MSRs, before it takes effect (KVM_X86_SET_MSR_FILTER).
  case msrWrite([UInt32])
  /// AArch64: an MSR to one of these system registers (VBAR_EL1, TTBR0_EL1, TTBR1_EL1,
  /// SCTLR_EL1, any the interpreter has), before it takes effect, with the PC on the MSR;
  /// the AArch64 counterpart of `.msrWrite` and x86's control-register loads.
  case systemRegisterWrite(Set<SystemRegisterName>)
  /// HLT executed.
  case halt
  /// The machine ended: triple fault, reset, power-off, debug exit or a KVM failure.
  case shutdown
  /// The guest wrote to Hyperstep's control port (0x600); on AArch64, `hvc #0x4853`.
  case guestRequest
}

/// An AArch64 exception as its handler finds it: taken to EL1, the PC at its vector.
public struct ExceptionSyndrome: Sendable, Equatable {
  /// ESR_EL1 as the exception wrote it; its bits 31-26 are the exception class.
  public var esr: UInt64
  /// FAR_EL1 (meaningful for aborts, watchpoints and PC alignment faults; otherwise whatever
  /// it held: the ARM ARM leaves it UNKNOWN).
  public var far: UInt64
  /// ELR_EL1: the preferred return address (the faulting instruction, or the one after an
  /// SVC, HVC or SMC).
  public var elr: UInt64

  public init(esr: UInt64, far: UInt64, elr: UInt64) {
    self.esr = esr
    self.far = far
    self.elr = elr
  }

  /// ESR_EL1.EC.
  public var exceptionClass: UInt8 { UInt8(truncatingIfNeeded: esr >> 26) & 0x3f }
}

/// One event, as handed to a handler.
public enum Event: Sendable, Equatable {
  case singleStep(pc: UInt64)
  case softwareBreakpoint(address: UInt64)
  case hardwareBreakpoint(address: UInt64)
  case writeWatchpoint(address: UInt64, old: [UInt8], new: [UInt8])
  /// One access to watched memory, and the watch it touched.
  case memoryAccess(MemoryAccessHit, watch: MemoryWatch)
  case exception(vector: UInt8)
  /// AArch64: an exception taken to EL1 (`EventFilter.exception` by its class).
  case exceptionSyndrome(ExceptionSyndrome)
  case interrupt(vector: UInt8)
  /// A port, MMIO or MSR access that has not been carried out yet.
  case access(GuestAccess)
  case halt(interruptsEnabled: Bool)
  // Boxed: a RunOutcome can carry a whole CPU state, and every event would be as large.
  indirect case shutdown(RunOutcome)
  case guestRequest(value: UInt32)
  /// AArch64: an MSR at the PC about to write `value` to `register` (it has not taken effect).
  case systemRegisterWrite(SystemRegisterName, value: UInt64)

  /// Port, MMIO and MSR accesses arrive before the instruction making them has finished.
  public var isAccess: Bool {
    if case .access = self { true } else { false }
  }
}

/// A handler's answer to an event.
public enum EventResponse: Sendable, Equatable {
  /// Go on.
  case `continue`
  /// Switch single-stepping of this vCPU on or off (Xen's TOGGLE_SINGLESTEP), then go on.
  case toggleSingleStep
  /// For access events: the handler has done what the access should do, so the machine does
  /// not carry it out. A write goes nowhere (a WRMSR leaves the MSR as it was, with no #GP;
  /// an AArch64 MSR of a system-register event is skipped, the register unchanged);
  /// a read returns `readValue`. Other events cannot skip their instruction (its length is
  /// not known without a full decoder): answering this to one ends the session with an error.
  case emulateAndSkip(readValue: UInt64 = 0)
  /// Stop the session: every vCPU stops at its next instruction boundary.
  case stop
  /// Go on with this vCPU on the other engine (`EngineKind`): from this instruction boundary
  /// it runs on the interpreter (exact memory events, fast traced steps) or on KVM (native
  /// speed), losing nothing (`IntrospectionSession.switchEngine`). Only a KVM machine that
  /// can move (`Machine.engineSwitchRefusal`: one vCPU, whose in-kernel interrupt
  /// controllers, if it has them, move with it) and only for instruction-boundary events:
  /// otherwise the session ends with an error saying why.
  case switchEngine(EngineKind)
}

/// The handler of one subscription. It runs on the thread driving the event's vCPU.
public typealias EventHandler = @Sendable (Event, EventContext) throws -> EventResponse

/// A batch of plain single steps (`Stop.reason` `.step`), for a `SingleStepBatchHandler`:
/// steps the vCPU and hands each plain step's PC to `body`, which answers whether to go on
/// (false: that step was the batch's last). It returns then, after a batch's worth, or at a
/// stop that is more than a plain step (that one reaches the handlers as any stop does).
public typealias PlainSingleSteps = (_ body: (_ pc: UInt64) -> Bool) throws -> Void

/// A `.singleStep` subscription's way in for tracers (`IntrospectionSession.subscribeSingleSteps`):
/// takes a batch of plain steps through `steps` (called once), does with each what the
/// subscription's handler would do with its `.singleStep` event, and answers as that handler
/// would have for the last one. An answer other than `.continue` must end the batch (`body`
/// returns false for that step), as it would have ended the handler's step.
public typealias SingleStepBatchHandler =
  @Sendable (_ steps: PlainSingleSteps, _ context: EventContext) throws -> EventResponse

/// How a session ended.
public enum SessionEnd: Sendable, Equatable {
  /// The machine ended (also reported to `.shutdown` subscribers).
  case machineEnded(RunOutcome)
  /// A handler answered `.stop`, or `IntrospectionSession.requestStop()` was called.
  case stopped(vcpu: Int, event: Event?)
}

/// A bad subscription, or a handler failure that ended a session.
public struct IntrospectionError: Error, CustomStringConvertible, Equatable {
  public let description: String
  public init(_ description: String) { self.description = description }
}
