import GuestMemory

/// One x86-64 processor run by the interpreter over a `GuestRAM`.
///
/// `step()` executes exactly one instruction; `run(maxInstructions:)` loops it without
/// leaving the interpreter core. State is read and written as a value through `state`;
/// a write drops cached translations, so paging and mode changes take effect.
public final class X86CPU {
  var core: X86Core

  public init(memory: GuestRAM, bus: any X86IOBus = UnmappedIOBus()) {
    core = X86Core(ram: memory, bus: bus)
    core.stateChanged()
  }

  public var memory: GuestRAM { core.ram }

  /// Connects the CPU to the machine's devices (an engine does this once it has them).
  public func attach(bus: any X86IOBus) { core.bus = bus }

  public var state: X86State {
    get { core.state }
    set {
      core.state = newValue
      core.stateChanged()
    }
  }

  /// Instructions retired since this CPU was made (INT3/INT n count; faults do not).
  public var retiredInstructions: UInt64 { core.retiredInstructions }

  public func step() -> StepResult { core.step() }

  /// Runs until `maxInstructions` retire, or the CPU halts, faults, traps or an I/O device
  /// asks to stop. Returns how many retired, and `.retired` when the count ran out.
  @discardableResult
  public func run(maxInstructions: UInt64) -> (executed: UInt64, stop: StepResult) {
    core.run(maxInstructions: maxInstructions)
  }

  /// Forgets every decoded instruction (after the host wrote guest code behind the CPU's back:
  /// writes through the CPU itself are tracked).
  public func invalidateDecodedInstructions() { core.decodeCache.flush() }
}
