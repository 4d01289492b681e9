import GuestMemory
import Machine
import Synchronization

/// Breakpoint bytes planted in guest memory, shared by the steppers of every vCPU of one
/// machine (the memory is shared, so must be the record of what was replaced).
public final class BreakpointStore: @unchecked Sendable {
  // @unchecked: the handler table locks itself; `software` is only touched under `lock`.
  public typealias Entry = (physical: GuestAddress, original: UInt8)

  let handlers: HandlerBreakpoints
  private let lock = Mutex(())
  private var software: [UInt64: Entry] = [:]

  /// Whether the breakpoints are INT3 bytes in guest memory (KVM) or only addresses the
  /// engine compares with the PC (the interpreter, whose guests never see them). Changes
  /// when a KVM machine's vCPU moves to the interpreter and back (`setPlantsBytes`).
  private(set) var plantsBytes: Bool

  public init(memory: GuestRAM, plantsBytes: Bool = true) {
    handlers = HandlerBreakpoints(memory: memory)
    self.plantsBytes = plantsBytes
  }

  /// A store for the machine's engine.
  public convenience init(machine: Machine) {
    self.init(memory: machine.memory, plantsBytes: machine.engine == .kvm)
  }

  /// Takes every planted INT3 out of guest memory (false) or puts them all back (true), for an
  /// engine that compares addresses or one that needs the bytes.
  func setPlantsBytes(_ plant: Bool, memory: GuestRAM) throws {
    try lock.withLock { _ in
      guard plant != plantsBytes else { return }
      plantsBytes = plant
      for entry in software.values {
        try memory.store(plant ? UInt8(0xcc) : entry.original, at: entry.physical)
      }
    }
  }

  /// The linear addresses of the host's software breakpoints.
  var addresses: [UInt64] { lock.withLock { _ in Array(software.keys) } }

  /// The guest gets its handler code back when the last stepper using the store is gone.
  deinit {
    handlers.remove()
  }

  subscript(linear: UInt64) -> Entry? {
    get { lock.withLock { _ in software[linear] } }
    set { lock.withLock { _ in software[linear] = newValue } }
  }

  /// `bytes`, read from guest-physical `physical`, with every INT3 planted there (host
  /// breakpoints and handler entries) replaced by the byte it stands in for.
  func unplanted(_ bytes: [UInt8], at physical: GuestAddress) -> [UInt8] {
    guard plantsBytes else { return bytes }
    var result = handlers.originalBytes(bytes, at: physical)
    let start = physical.value
    lock.withLock { _ in
      for entry in software.values
      where entry.physical.value >= start && entry.physical.value - start < UInt64(bytes.count) {
        result[Int(entry.physical.value - start)] = entry.original
      }
    }
    return result
  }

  /// After `bytes` were written at guest-physical `physical`: host breakpoints there keep
  /// their INT3, and remember the newly written byte as the one to put back.
  func rewritten(_ bytes: [UInt8], at physical: GuestAddress, memory: GuestRAM) throws {
    guard plantsBytes else { return }
    let start = physical.value
    try lock.withLock { _ in
      for (linear, entry) in software
      where entry.physical.value >= start && entry.physical.value - start < UInt64(bytes.count) {
        software[linear] = (entry.physical, bytes[Int(entry.physical.value - start)])
        try memory.store(UInt8(0xcc), at: entry.physical)
      }
    }
  }
}
