import KVM
import Machine

/// Handlers are stepped into (README, step contract 2). Delivery clears TF, so KVM's
/// single-step alone would run a handler's first instruction (or all of it) unseen: the
/// INT3s `HandlerBreakpoints` plants at every handler the IDT names make the stop there, and
/// in real mode, where KVM's emulator would take such an INT3 for the guest's own, a hardware
/// breakpoint on the handler of a likely fault does.
extension Stepper {
  static let vectorsWithErrorCode: Set<UInt8> = [8, 10, 11, 12, 13, 14, 17, 21, 29, 30]

  /// A handler watched by a hardware breakpoint for one step (real mode).
  typealias FaultHandler = (vector: UInt8, address: UInt64)

  /// Real mode has no planted INT3s (see HandlerBreakpoints): for an instruction that will
  /// likely fault, a hardware breakpoint on its handler gives the stop at the handler. The
  /// caller puts the plain stepping setting back after the step when this returns one.
  func faultHandlerBreakpoint(for decoded: DecodedInstruction, registers: Registers) throws -> FaultHandler? {
    guard special.cr0 & 1 == 0, let vector = decoded.likelyFault,
      let entry = HandlerBreakpoints.handlerAddresses(
        special, GuestCPU(registers: registers, special: special).walker(machine.memory)
      )
      .first(where: { $0.0 == vector })
    else { return nil }
    try applyDebugState(.stepping, handlerBreakpoint: entry.1)
    return (vector, entry.1)
  }

  /// The stop at a handler's entry if this debug exit of a step is one: a planted INT3, or
  /// the real-mode fault handler's hardware breakpoint.
  func handlerEntry(
    after info: DebugExit, trapDue: Bool, decoded: DecodedInstruction, faultHandler: FaultHandler?
  ) throws -> Stop? {
    if info.exception == 3, let vectors = handlers.vectors(at: info.pc) {
      return try handlerEntry(at: info.pc, vectors: vectors, trapDue: trapDue, decoded: decoded)
    }
    if let faultHandler, info.dr6 & 1 != 0, info.pc == faultHandler.address {
      return try handlerEntry(at: info.pc, vectors: [faultHandler.vector], trapDue: trapDue, decoded: decoded)
    }
    return nil
  }

  /// A stop at a handler's first instruction: the hardware (or KVM) delivered an exception
  /// or interrupt and ran into the INT3 planted there, which has not executed.
  func handlerEntry(at pc: UInt64, vectors: [UInt8], trapDue: Bool, decoded: DecodedInstruction) throws -> Stop {
    let registers = try kvm.registers()
    special = try kvm.specialRegisters()
    let vector = vectors.count == 1 ? vectors[0] : Self.likelyVector(vectors, decoded: decoded)
    // The pushed flags must show the guest's TF as it was, not the host's.
    let cpu = GuestCPU(registers: registers, special: special)
    let width = UInt64(cpu.codeSize.rawValue)
    let errorCodeSlots: UInt64 = Self.vectorsWithErrorCode.contains(vector) ? 1 : 0
    let flagsAddress = special.ss.base &+ registers.rsp &+ (errorCodeSlots + 2) * width + 1
    let walker = cpu.walker(machine.memory)
    // The CPU has just pushed this frame, so the byte is mapped; only a stack in device
    // memory (not RAM) has no byte of ours to fix, and then there is nothing to do.
    if var byte = try? walker.read(linear: flagsAddress, count: 1)[0] {
      byte = trapDue ? byte | 1 : byte & ~1
      try? walker.write([byte], linear: flagsAddress)
    }
    guestTrapFlag = false
    // (Delivery has cleared RF in the handler's context already, as the SDM specifies.)
    try applyDebugState(.stepping)
    var software = false
    if case .softwareInterrupt(let number, _) = decoded.kind, number == vector { software = true }
    let reason: StopReason = vector >= 32 && !software ? .interrupt(vector: vector) : .exception(vector: vector)
    return try stop(reason, pc: pc)
  }

  /// A handler entry met at full speed: the guest has delivered the event and stands on the
  /// INT3 planted over the handler's first instruction. The frame is the guest's own (no
  /// host TF while running), so nothing in it needs undoing.
  func handlerReached(at pc: UInt64) throws -> Stop {
    let vectors = handlers.vectors(at: pc) ?? []  // (before going idle takes the INT3s out)
    let vector = Self.likelyVector(vectors, decoded: DecodedInstruction(kind: .other, length: 0))
    let result = try stopRunning(vector < 32 ? .exception(vector: vector) : .interrupt(vector: vector), pc: pc)
    stoppedAtHandler = pc
    return result
  }

  /// For handlers shared by several vectors: the one the last instruction most likely raised.
  static func likelyVector(_ vectors: [UInt8], decoded: DecodedInstruction) -> UInt8 {
    if case .softwareInterrupt(let vector, _) = decoded.kind, vectors.contains(vector) { return vector }
    for preferred: UInt8 in [13, 14, 6, 0] where vectors.contains(preferred) { return preferred }
    return vectors.min() ?? 0
  }
}
