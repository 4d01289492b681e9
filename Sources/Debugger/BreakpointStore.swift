import GuestMemory
import Synchronization

/// Breakpoint bytes planted in guest memory, shared by the steppers of every vCPU of one
/// machine (the memory is shared, so must be the record of what was replaced).
public final class BreakpointStore: @unchecked Sendable {
  // @unchecked: the handler table locks itself; `software` is only touched under `lock`.
  public typealias Entry = (physical: GuestAddress, original: UInt8)

  let handlers: HandlerBreakpoints
  private let lock = Mutex(())
  private var software: [UInt64: Entry] = [:]

  public init(memory: GuestRAM) {
    handlers = HandlerBreakpoints(memory: memory)
  }

  /// The guest gets its handler code back when the last stepper using the store is gone.
  deinit {
    handlers.remove()
  }

  subscript(linear: UInt64) -> Entry? {
    get { lock.withLock { _ in software[linear] } }
    set { lock.withLock { _ in software[linear] = newValue } }
  }

  /// The host breakpoints within [linear, linear + count).
  func entries(from linear: UInt64, count: Int) -> [(UInt64, Entry)] {
    lock.withLock { _ in
      software.filter { $0.key >= linear && $0.key - linear < UInt64(count) }.map { ($0.key, $0.value) }
    }
  }
}
