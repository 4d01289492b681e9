import Devices
import KVM
import Testing

@testable import Machine

/// PIT counter 0's schedule carried over KVM's restart of its period (`PITPhase`): KVM's
/// edges fall at `setAt` + kN after KVM_SET_PIT2, the intended ones at `setAt` + R + kN
/// (R the ticks the interpreter's counter had left), and a move back to the interpreter goes
/// on with the intended phase, owing the guest an intended edge KVM has not raised yet.
/// Expected values worked out by hand from those two schedules, N = 1193 (timer.S's count).
@Suite struct PITPhaseTests {
  func channel(mode: UInt8, count: UInt32 = 1193) -> KVMPITChannelState {
    var channel = KVMPITChannelState()
    channel.mode = mode
    channel.count = count
    channel.rwMode = 3
    channel.gate = 1
    return channel
  }

  /// Host time `ticks` whole PIT ticks after `setAt` (1 s, say).
  func at(_ ticks: UInt64) -> UInt64 { 1_000_000_000 + PIT8254.clock.nanoseconds(atTick: ticks) }

  @Test func aPeriodicCountGoesOnWithTheInterpretersPhaseAndIsOwedTheEdgeKVMPutOff() throws {
    // R = 500 left at the move back: the intended schedule was 693 ticks into its period.
    let phase = PITPhase(setAt: 1_000_000_000, remaining: 500, written: channel(mode: 2))
    // 400 ticks later: 1093 into the period; no edge in either schedule yet.
    #expect(try #require(phase.resume(channel(mode: 2), now: at(400))) == (1093, false))
    // 600: the intended edge (at 500) fell, KVM's (at 1193) not: owed, 100 into the next period.
    #expect(try #require(phase.resume(channel(mode: 2), now: at(600))) == (100, true))
    // 1300: both have had one edge (500 and 1193): nothing owed, 1993 - 1193 = 800 in.
    #expect(try #require(phase.resume(channel(mode: 2), now: at(1300))) == (800, false))
    // Mode 3 has the same rising edges (the data sheet's square wave starts high).
    let square = PITPhase(setAt: 1_000_000_000, remaining: 500, written: channel(mode: 3))
    #expect(try #require(square.resume(channel(mode: 3), now: at(600))) == (100, true))
  }

  @Test func aCountReprogrammedOnKVMStartsAtTheMove() {
    let phase = PITPhase(setAt: 1_000_000_000, remaining: 500, written: channel(mode: 2))
    #expect(phase.resume(channel(mode: 2, count: 1000), now: at(600)) == nil)
    #expect(phase.resume(channel(mode: 0), now: at(600)) == nil)
  }

  @Test func aOneShotCountEndsOnceOnItsIntendedSchedule() throws {
    // Mode 0, R = 500 of N = 1193 left: the end intended 500 ticks on, KVM's 1193 on.
    let phase = PITPhase(setAt: 1_000_000_000, remaining: 500, written: channel(mode: 0))
    #expect(try #require(phase.resume(channel(mode: 0), now: at(400))) == (1093, false))
    #expect(try #require(phase.resume(channel(mode: 0), now: at(600))) == (1293, true))
    // KVM's own end has come too: it raised that edge itself.
    #expect(try #require(phase.resume(channel(mode: 0), now: at(1200))) == (1893, false))
    // Ended before the move back (R = 0): nothing more is owed.
    let ended = PITPhase(setAt: 1_000_000_000, remaining: 0, written: channel(mode: 0))
    #expect(try #require(ended.resume(channel(mode: 0), now: at(600))) == (1793, false))
  }

  @Test func thePhaseKeptIsTheTicksLeftToTheNextEdge() throws {
    var counter = PIT8254.Counter()
    counter.mode = 2
    counter.initialCount = 1193
    counter.elapsed = 1193 * 3 + 693
    let phase = try #require(PITPhase.after(writing: channel(mode: 2), at: 5, from: counter))
    #expect(phase.remaining == 500 && phase.setAt == 5)
    counter.elapsed = nil  // not counting: nothing to keep
    #expect(PITPhase.after(writing: channel(mode: 2), at: 5, from: counter) == nil)
  }
}
