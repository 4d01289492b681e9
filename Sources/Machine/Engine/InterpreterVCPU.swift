import Devices
import GuestMemory
import KVM
import X86

/// A vCPU run by Hyperstep's own x86-64 interpreter.
///
/// The interpreter (`X86CPU`) is driven by one thread at a time, like a KVM vCPU.
public final class InterpreterVCPU: VirtualCPU, @unchecked Sendable {
  // @unchecked: `cpu` is touched by the one thread driving this vCPU.
  public let id: Int
  public var engine: EngineKind { .interpreter }
  /// The interpreter itself. Engine-specific code (the run loop, the stepper) drives it.
  public let cpu: X86CPU
  /// An application processor waits for INIT and a start-up IPI before it runs.
  public var waitingForStartup: Bool
  /// Virtual time (nanoseconds) when `cpu.retiredInstructions` was 0: see InterpreterPlatform.
  var clockBase: UInt64 = 0
  /// The memory watches and run breakpoints the CPU's watch ranges hold (MemoryWatch.swift).
  var installedWatches: [MemoryWatch] = []
  var installedBreakpoints: [UInt64] = []
  /// A run breakpoint's address the CPU stopped at, kept while its other hits are taken.
  var breakpointHit: UInt64?

  /// The machine's devices as this vCPU reaches them (attached once the machine exists).
  private(set) var bus: InterpreterBus?

  init(id: Int, memory: GuestRAM) {
    self.id = id
    cpu = X86CPU(memory: memory)
    cpu.state = .powerOn()  // the boot vCPU's entry state is applied later, as on KVM
    cpu.deliversExceptions = true  // an engine delivers what its guest raises, as a CPU does
    waitingForStartup = id != 0
  }

  func attach(_ bus: InterpreterBus) {
    self.bus = bus
    cpu.attach(bus: bus)
  }

  /// The device action the last instruction's I/O asked for (`.none` if none); clears it.
  public func takeDeviceAction() -> DeviceAction { bus?.take() ?? .none }

  /// How many port and MMIO accesses this vCPU has made (reads too: some clear an interrupt).
  public var deviceAccesses: UInt64 { bus?.accesses ?? 0 }

  /// The trapped MSR write the last instruction made, if any; clears it.
  public func takeMSRWrite() -> (index: UInt32, value: UInt64)? {
    defer { bus?.lastMSRWrite = nil }
    return bus?.lastMSRWrite
  }

  /// The state to read: the CPU's, or while it is in the middle of an instruction whose
  /// device access is being watched, the state that instruction has left so far.
  private var readableState: X86State { bus?.stateDuringAccess ?? cpu.state }

  /// The CPU's state to change; not while an instruction is half done.
  private func writableState() throws -> X86State {
    guard bus?.stateDuringAccess == nil else { throw InterpreterError.midInstruction }
    return cpu.state
  }

  /// Changes the CPU's state through `change` (one write, so the CPU drops its cached
  /// translations once).
  private func update(_ change: (inout X86State) throws -> Void) throws {
    var state = try writableState()
    try change(&state)
    cpu.state = state
  }

  public func registers() throws -> Registers { readableState.registers }

  public func setRegisters(_ registers: Registers) throws { try update { $0.apply(registers) } }

  public func specialRegisters() throws -> SpecialRegisters { readableState.specialRegisters }

  public func setSpecialRegisters(_ registers: SpecialRegisters) throws { try update { $0.apply(registers) } }

  public func fpuRegisters() throws -> FPURegisters { readableState.fpuRegisters }

  public func setFPURegisters(_ registers: FPURegisters) throws { try update { $0.apply(registers) } }

  public func debugRegisters() throws -> DebugRegisters { readableState.debugRegisters }

  public func setDebugRegisters(_ registers: DebugRegisters) throws { try update { $0.apply(registers) } }

  public func modelSpecificRegisters(_ indices: [UInt32]) throws -> [UInt64] {
    let state = readableState
    return try indices.map { index in
      guard let value = state.modelSpecificRegister(index) else { throw InterpreterError.unknownMSR(index) }
      return value
    }
  }

  public func setModelSpecificRegisters(_ values: [(index: UInt32, value: UInt64)]) throws {
    try update { state in
      for (index, value) in values where !state.setModelSpecificRegister(index, value) {
        throw InterpreterError.unknownMSR(index)
      }
    }
  }

  /// Nothing to knock out of a kernel: the interpreter's loops look at the machine's end and
  /// at the stepper's stop switch between slices of at most 100000 instructions.
  public func kick() {}

  public func bindToCurrentThread() {}
}

/// What the interpreter engine reports about itself as an error.
public enum InterpreterError: Error, CustomStringConvertible {
  case unknownMSR(UInt32)
  case midInstruction

  public var description: String {
    switch self {
    case .unknownMSR(let index): "the interpreter has no MSR 0x\(String(index, radix: 16))"
    case .midInstruction:
      "the registers cannot be changed while the interpreter is in the middle of an instruction (a port or MMIO event)"
    }
  }
}

extension Machine {
  /// After the host wrote guest memory behind the engines' backs (a debugger's memory write):
  /// the interpreter forgets the instructions it decoded, which may be the bytes written.
  /// (Writes the guest makes itself are tracked per page by the interpreter.)
  public func hostWroteGuestMemory() {
    for vcpu in interpreterVCPUs { vcpu.cpu.invalidateDecodedInstructions() }
  }
}
