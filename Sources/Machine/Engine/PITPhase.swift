import Devices
import KVM

/// PIT counter 0's phase across a return to KVM and the next move out of it.
///
/// KVM_SET_PIT2 starts counter 0's period anew at the call (its phase lives in a host timer
/// the API does not show), so KVM's next tick comes a whole count N after the move back,
/// where the interpreter's counter had only `remaining` ticks left: KVM's edges fall at
/// `setAt` + kN, the intended ones (the interpreter's schedule, carried on) at `setAt` +
/// `remaining` + kN. At the next move to the interpreter the counter goes on with the
/// intended phase, and when an intended edge fell that KVM's did not raise (at most one: the
/// two schedules are less than a period apart) the move raises it: so across any number of
/// moves the counter ticks at its rate, none lost or raised twice, each KVM tick at most one
/// period late. When the guest has reprogrammed the counter on KVM since (a different count,
/// mode, BCD or gate), its period started at that write, which KVM does not tell: it then
/// starts at the move.
struct PITPhase: Equatable {
  /// Host CLOCK_MONOTONIC nanoseconds just after the KVM_SET_PIT2.
  var setAt: UInt64
  /// Ticks the interpreter's counter 0 had left to its next edge (one-shot modes: to the end
  /// of its count, 0 once ended).
  var remaining: UInt64
  /// Counter 0 as written to KVM.
  var written: KVMPITChannelState

  /// What the guest programs: equal means not reprogrammed (a rewrite of the same values
  /// goes unseen, and costs at most a phase).
  private static func programming(_ channel: KVMPITChannelState) -> [UInt32] {
    [channel.count, UInt32(channel.mode), UInt32(channel.bcd), UInt32(channel.gate)]
  }

  /// Counter 0's place in its intended schedule when KVM's `channel` is read at host time
  /// `now`: the ticks elapsed since its count was (notionally) loaded, and whether the move
  /// owes the guest an edge KVM did not raise; nil when the guest reprogrammed it on KVM.
  func resume(_ channel: KVMPITChannelState, now: UInt64) -> (elapsed: UInt64, owedTick: Bool)? {
    guard channel.mode <= 5, Self.programming(channel) == Self.programming(written) else { return nil }
    let n = UInt64(channel.count == 0 ? 0x1_0000 : channel.count)
    let ticks = PIT8254.clock.ticks(atNanoseconds: now > setAt ? now - setAt : 0)
    let ahead = n - min(remaining, n)  // how far into its period the intended schedule was at `setAt`
    let intended = ticks + ahead
    switch channel.mode {
    case 2, 3:
      return (intended % n, intended / n > ticks / n)
    default:
      // One edge, at n (modes 0, 1) or n + 1 (4, 5) ticks from the load (8254 data sheet).
      let edge = channel.mode >= 4 ? n + 1 : n
      return (intended, ahead < edge && intended >= edge && ticks < edge)
    }
  }

  /// The phase to keep after counter 0 was written as `channel` at `setAt`, from the model's
  /// `counter` at that moment; nil when it was not counting.
  static func after(writing channel: KVMPITChannelState, at setAt: UInt64, from counter: PIT8254.Counter) -> PITPhase? {
    guard let elapsed = counter.elapsed, channel.mode <= 5 else { return nil }
    let n = UInt64(counter.initialCount)
    let remaining = counter.mode == 2 || counter.mode == 3 ? n - elapsed % n : n - min(elapsed, n)
    return PITPhase(setAt: setAt, remaining: remaining, written: channel)
  }
}
