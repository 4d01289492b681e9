/// The ARMv8 self-hosted debug architecture for a debugger inside the guest (ARM ARM D2):
/// Software Step, Breakpoint and Watchpoint exceptions taken to EL1. BRK is an instruction
/// (`exceptionGeneration`) and needs no enabling.
///
/// Debug exceptions are enabled when the OS lock is clear and either the PE is at EL0 or it
/// is at EL1 with MDSCR_EL1.KDE set and PSTATE.D clear (D2.10, "Routing and enabling of debug
/// exceptions"; no EL2 or EL3, so EL1 is the debug target). Breakpoints and watchpoints also
/// need MDSCR_EL1.MDE; software step MDSCR_EL1.SS.
extension A64Core {
  static let debugFaultStatus: UInt32 = 0b100010

  /// Whether debug exceptions may be taken from the current EL.
  @inline(__always)
  var debugExceptionsEnabled: Bool {
    guard !state.system.osLocked else { return false }
    return state.pstate.el == 0 || state.system.mdscr >> 13 & 1 != 0 && state.pstate.daif & PState.d == 0
  }

  /// Software step is active in the current state (D2.12.2): MDSCR_EL1.SS with debug
  /// exceptions enabled. PSTATE.SS then says active-not-pending (1) or active-pending (0).
  @inline(__always)
  var softwareStepActive: Bool { state.system.mdscr & 1 != 0 && debugExceptionsEnabled }

  /// Whether breakpoints and watchpoints can fire at all (MDE set and one enabled), kept in
  /// `debugArmed` so the hot path tests one Boolean.
  mutating func refreshDebugArmed() {
    var anyEnabled = false
    for n in 0..<6 where state.system.breakpointControls[n] & 1 != 0 { anyEnabled = true }
    for n in 0..<4 where state.system.watchpointControls[n] & 1 != 0 { anyEnabled = true }
    debugArmed = anyEnabled && state.system.mdscr >> 15 & 1 != 0 || state.system.mdscr & 1 != 0
  }

  /// The Software Step exception of the active-pending state (D2.12.5): EC 0x32 from EL0 or
  /// 0x33 from EL1; ISV says whether EX is valid (an instruction was stepped, rather than the
  /// state entered by an exception return), EX whether it was a load-exclusive.
  func softwareStepException() -> A64Exception {
    let lower = state.pstate.el == 0
    let iss = (stepSyndrome.valid ? 1 << 24 : 0) | (stepSyndrome.exclusive ? 1 << 6 : 0) | Self.debugFaultStatus
    return .make(lower ? .softwareStepLower : .softwareStepSame, iss: iss)
  }

  /// A breakpoint matching the instruction at `pc` (D2.9): an enabled DBGBCR<n> of type
  /// unlinked address match (BT 0b0000) or address match linked to a context breakpoint
  /// (0b0001), its PMC admitting the current EL, its DBGBVR<n> equal to the PC; or an
  /// unlinked context ID match (0b0010) on CONTEXTIDR_EL1.
  func breakpointMatches(_ pc: UInt64) -> Bool {
    guard state.system.mdscr >> 15 & 1 != 0, debugExceptionsEnabled else { return false }
    for n in 0..<6 {
      let control = state.system.breakpointControls[n]
      guard control & 1 != 0, privilegeMatches(UInt8(control >> 1 & 3)) else { continue }
      switch control >> 20 & 0xf {
      case 0b0000:
        if addressMatches(n, pc) { return true }
      case 0b0001:
        let linked = Int(control >> 16 & 0xf)
        if addressMatches(n, pc) && linked < 6 && contextMatches(linked) { return true }
      case 0b0010:
        if contextMatches(n) { return true }
      default:
        continue
      }
    }
    return false
  }

  /// PMC or PAC: 0b01 EL1, 0b10 EL0, 0b11 both.
  func privilegeMatches(_ field: UInt8, el0: Bool? = nil) -> Bool {
    (el0 ?? (state.pstate.el == 0)) ? field & 2 != 0 : field & 1 != 0
  }

  /// DBGBVR<n> holds VA[48:2], sign-extended from bit 48.
  func addressMatches(_ n: Int, _ pc: UInt64) -> Bool {
    let value = state.system.breakpointValues[n] & 0x0001_ffff_ffff_fffc
    let extended = UInt64(bitPattern: Int64(bitPattern: value << 15) >> 15)
    return extended == pc
  }

  /// Breakpoint `n` is a context-aware one of type context ID match whose DBGBVR<n>[31:0]
  /// equals CONTEXTIDR_EL1 (only the highest-numbered breakpoint is context-aware, per
  /// ID_AA64DFR0_EL1.CTX_CMPs = 0).
  func contextMatches(_ n: Int) -> Bool {
    guard n == 5 else { return false }
    let control = state.system.breakpointControls[n]
    guard control & 1 != 0, control >> 20 & 0xe == 0b0010 else { return false }
    return state.system.breakpointValues[n] & 0xffff_ffff == state.system.contextidr & 0xffff_ffff
  }

  /// The watchpoint a data access of `size` bytes at `address` hits, as the exception to take
  /// (D2.10): EC 0x34/0x35, WnR, FAR the accessed address; nil when none hits.
  func watchpointHit(_ address: UInt64, size: Int, write: Bool, unprivileged: Bool) -> A64Exception? {
    guard state.system.mdscr >> 15 & 1 != 0, debugExceptionsEnabled else { return nil }
    let el0 = state.pstate.el == 0 || unprivileged
    for n in 0..<4 {
      let control = state.system.watchpointControls[n]
      guard control & 1 != 0, privilegeMatches(UInt8(control >> 1 & 3), el0: el0) else { continue }
      let lsc = control >> 3 & 3
      guard write ? lsc & 2 != 0 : lsc & 1 != 0 else { continue }
      let base = state.system.watchpointValues[n] & 0x0001_ffff_ffff_fff8
      let mask = control >> 24 & 0x1f
      let first = address
      let last = address &+ UInt64(size) &- 1
      let hit: Bool
      if mask >= 3 {
        // A range of 2^MASK bytes around DBGWVR<n> (BAS must be all ones then).
        let rangeBase = base & ~((UInt64(1) << mask) &- 1)
        let rangeLast = rangeBase &+ (UInt64(1) << mask) &- 1
        hit = first <= rangeLast && last >= rangeBase
      } else {
        // BAS: the watched bytes of the doubleword at DBGWVR<n>.
        let bas = control >> 5 & 0xff
        var any = false
        var byteAddress = first
        while byteAddress <= last {
          if byteAddress & ~7 == base && bas >> (byteAddress & 7) & 1 != 0 { any = true }
          byteAddress &+= 1
        }
        hit = any
      }
      if hit {
        let lower = state.pstate.el == 0
        return .make(
          lower ? .watchpointLower : .watchpointSame, iss: (write ? 1 << 6 : 0) | Self.debugFaultStatus,
          address: address)
      }
    }
    return nil
  }
}

/// What the last stepped instruction leaves for the Software Step exception's syndrome.
struct StepSyndrome {
  /// An instruction was stepped (ISV = 1), rather than active-pending entered by ERET.
  var valid = false
  /// That instruction was a load-exclusive (EX = 1).
  var exclusive = false
}
