import KVM
import Testing

@testable import Debugger

/// DR7's layout from the Intel SDM, volume 3, "Debug Control Register (DR7)": Ln at bit 2n,
/// Gn at bit 2n+1, R/Wn at bits 16+4n..17+4n, LENn at bits 18+4n..19+4n.
@Suite struct DebugRegisterSharingTests {
  @Test func hostBreakpointsTakeFreeSlotsFromDR3DownBesideTheGuestsOwn() throws {
    // The guest watches 4-byte writes at 0x5000 in DR0 (L0, R/W0 = 01, LEN0 = 11); DR1 holds
    // an address it has not enabled.
    let guestSlot: UInt64 = 1 | 0b01 << 16 | 0b11 << 18
    let guestDR7: UInt64 = 0x400 | guestSlot
    let guest = DebugRegisters(address: (0x5000, 0x6000, 0, 0), dr6: 0xffff_0ff0, dr7: guestDR7)
    var sharing = DebugRegisterSharing()
    let registers = try sharing.share(guest: guest, hostBreakpoints: [0xa000, 0xb000])
    // DR3 and DR2 go to the host as execution breakpoints (L3, L2; R/W and LEN 0); the guest's
    // slot keeps its enable, R/W and LEN; DR7's reserved bit 10 is not copied.
    let hostSlots: UInt64 = 1 << 6 | 1 << 4
    #expect(registers == [0x5000, 0x6000, 0xb000, 0xa000, 0, 0, 0, guestSlot | hostSlots])
    #expect(sharing.hostSlots == [3: 0xa000, 2: 0xb000])
    #expect(sharing.guestSlots == [0])
    // DR6's B0-B3 say which slots fired; a host slot wins when both did.
    #expect(sharing.hit(dr6: 0xffff_0ff0 | 1 << 3) == .host(address: 0xa000))
    #expect(sharing.hit(dr6: 0xffff_0ff0 | 1 << 0) == .guest(slot: 0))
    #expect(sharing.hit(dr6: 0xffff_0ff0 | 1 << 0 | 1 << 2) == .host(address: 0xb000))
    #expect(sharing.hit(dr6: 0xffff_0ff0 | 1 << 1) == nil)
    #expect(sharing.hit(dr6: 0xffff_0ff0 | 1 << 14) == nil)  // BS alone: no breakpoint
  }

  @Test func tooManyHostBreakpointsFailAndNameTheGuestsSlots() {
    // The guest holds DR0 and DR1 through their global enables (G0, G1).
    let guest = DebugRegisters(address: (0x1000, 0x2000, 0, 0), dr6: 0xffff_0ff0, dr7: 0x400 | 0b1010)
    var sharing = DebugRegisterSharing()
    #expect {
      try sharing.share(guest: guest, hostBreakpoints: [0xa000, 0xb000, 0xc000])
    } throws: { error in
      "\(error)"
        == "no free debug-register slot for 3 host hardware breakpoints: the guest's own breakpoints hold DR0, DR1 of the four"
    }
    #expect(sharing.hostSlots.isEmpty && sharing.guestSlots.isEmpty)
  }
}
