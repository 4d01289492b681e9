import GuestMemory
import Introspection
import KVM
import Machine
import TestGuests
import Testing

/// Write watchpoints on KVM at full speed: the watched bytes' pages are write-protected in
/// KVM's memory slots (`Machine.protectFromWrites`), the guest runs natively, and a write to
/// one stops after the writing instruction. Guests/tests/memory_accesses.S keeps its code and
/// its variables on the same pages (everything is in .text), so instruction fetches from a
/// protected page are served as well. Expected stops from the guest's source: each write is
/// named by the label after it.
@Suite struct WriteProtectionTests {
  @Test(requiresKVM) func writeWatchpointsStopAfterTheWriteWithThePagesProtected() throws {
    let guest = TestGuests.memoryAccesses
    let session = try EventAPITests().session(guest, on: .kvm)
    let machine = session.machine
    #expect(machine.canWriteProtect)
    func at(_ name: String) throws -> UInt64 { try EventAPITests().symbol(name, in: guest) }
    struct Hit: Equatable, Sendable {
      var variable: UInt64
      var pc: UInt64
      var protected: Bool
    }
    let hits = Recorder<Hit>()
    // Identity-mapped guest: the linear address is the physical one.
    for name in ["var_write", "var_rmw", "var_push", "var_copy"] {
      let address = try at(name)
      try session.subscribe(.writeWatchpoint(at: address, length: 8)) { _, context in
        hits.append(Hit(variable: address, pc: try context.pc(), protected: machine.isWriteProtected(address)))
        return .continue
      }
    }
    #expect(try session.run() == .machineEnded(EventAPITests.pass))
    #expect(
      hits.all == [
        Hit(variable: try at("var_write"), pc: try at("after_store"), protected: true),
        Hit(variable: try at("var_rmw"), pc: try at("after_rmw"), protected: true),
        Hit(variable: try at("var_push"), pc: try at("after_push"), protected: true),
        Hit(variable: try at("var_copy"), pc: try at("after_movs"), protected: true),
      ])
    // The run over, all RAM is writable to KVM again.
    #expect(machine.writeProtectedPages.isEmpty)
    // The guest's memory holds what it wrote: the store, the sum and the copy (from its source).
    #expect(try machine.memory.load(UInt64.self, at: GuestAddress(try at("var_write"))) == 0x1122_3344_5566_7788)
    #expect(try machine.memory.load(UInt64.self, at: GuestAddress(try at("var_rmw"))) == 0x1122_3344_5566_7789)
    #expect(try machine.memory.load(UInt64.self, at: GuestAddress(try at("var_copy"))) == 0x5555_aaaa_5555_aaaa)
  }
}
