import Machine
import Synchronization

/// Stops a running stepper from another thread (a debugger's Ctrl-C, a new client).
public final class StopSwitch: Sendable {
  private let requested = Mutex(false)
  private let vcpu: any VirtualCPU

  init(vcpu: any VirtualCPU) { self.vcpu = vcpu }

  /// Makes the stepper's current or next `run(until:)` return `.interrupted`.
  public func requestStop() {
    requested.withLock { $0 = true }
    vcpu.kick()
  }

  /// Consumes a pending stop request; true if there was one.
  public func take() -> Bool {
    requested.withLock { value in
      defer { value = false }
      return value
    }
  }
}
