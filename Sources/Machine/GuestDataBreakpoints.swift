import Devices
import GuestMemory
import KVM
import Synchronization
import X86

/// The guest's own data breakpoints (DR0-DR3 with R/W = 01 or 11 in DR7) on a KVM that does
/// not deliver them: PVM (`Hypervisor.isPVM`) loads no debug registers for its guests'
/// data accesses, so a guest's watchpoint would never fire. Hyperstep serves them as it
/// serves a debugger's watches (WriteProtection.swift): the pages the enabled slots cover
/// are made read-only (write breakpoints) or absent (read/write ones) to KVM, an access there
/// leaves KVM, the machine carries it out, KVM finishes the instruction, and if the access
/// touched a breakpoint's bytes (SDM vol. 3, 18.2.5: LEN bytes from the address with its low
/// bits masked to LEN's alignment; R/W = 01 writes, 11 reads or writes) the guest gets its
/// #DB, a trap after the instruction, with DR6.Bn of every slot hit (18.2.3: B0-B3 replaced,
/// BD, BS and BT kept, the fixed ones set) and DR7.GD cleared, delivered through its IDT by
/// the interpreter. Code run by the interpreter twin for KVM checks the slots itself.
///
/// What is noticed when: a MOV to DR7 (or DR0-DR3) does not leave KVM on PVM (KVM's emulator
/// handles it, and DR7.GD in the host's guest-debug registers makes no exit there: tried),
/// so the debug registers are read at exits to user space (`followGuestDataBreakpoints`),
/// at most once per 200 µs of host time while running (each read is a vCPU ioctl), and
/// before each step after a stepped MOV DR; the pages follow from then on. Missed: the
/// accesses a newly enabled breakpoint covers between the guest's MOV DR7 and the first
/// exit at which the registers are read (the first exit at least 200 µs after the last read,
/// or a stop; a run of the event API does not read them at the host's breakpoint exits). The linear addresses are translated when the debug registers change; a
/// guest that then remaps them is watched where they were. One-vCPU machines only, as for
/// the debugger's watches (`canWriteProtect`).
struct GuestDataBreakpoints: Sendable {
  /// The debug registers the pages were computed from (DR0-DR3, DR7's enables and R/W, LEN).
  var addresses: [UInt64] = [0, 0, 0, 0]
  var dr7: UInt64 = 0
  /// When they were last read (HostIO.monotonicNanoseconds).
  var readAt: UInt64 = 0
  /// Each enabled data slot: its aligned linear range, whether reads hit it, and where its
  /// bytes are in guest-physical memory (one piece per page).
  var slots: [Slot] = []

  struct Slot: Sendable {
    var index: Int
    var start: UInt64
    var length: UInt64
    var readsToo: Bool
    var pieces: [(linear: UInt64, physical: UInt64, length: UInt64)]
  }

  /// DR7's bits that make data slots: L0-L3/G0-G3 and the R/W and LEN fields.
  static let dataBits: UInt64 = 0xffff_00ff
}

extension Machine {
  /// Whether this machine serves the guest's data breakpoints itself (see above).
  public var servesGuestDataBreakpoints: Bool {
    Hypervisor.isPVM && canWriteProtect && followsGuestDebugRegisters.load(ordering: .relaxed)
  }

  /// How often, at most, the run loops read the guest's debug registers at exits
  /// (`followGuestDataBreakpoints(_:force: false)`): a vCPU ioctl costs about 20 µs on PVM,
  /// as much as a port exit itself, so reading at every exit would slow a guest that talks to
  /// its devices by half; at most once per 200 µs bounds the cost to a tenth.
  public static let guestDebugRegisterPollNanoseconds: UInt64 = 200_000

  /// Reads the guest's debug registers and, when its data slots changed, protects the pages
  /// they cover now (through its page tables as they stand). With `force` false (the run
  /// loops, at exits), only when `guestDebugRegisterPollNanoseconds` have passed since the
  /// last read; with it (a stepper, after a stepped MOV DR or before it runs), always.
  public func followGuestDataBreakpoints(_ vcpu: VCPU, force: Bool = true) throws {
    let now = HostIO.monotonicNanoseconds()
    let known = guestDataBreakpoints.withLock { $0[vcpu.id] ?? GuestDataBreakpoints() }
    if !force && now &- known.readAt < Self.guestDebugRegisterPollNanoseconds { return }
    guestDataBreakpoints.withLock { $0[vcpu.id, default: GuestDataBreakpoints()].readAt = now }
    let registers = try vcpu.debugRegisters()
    let (a0, a1, a2, a3) = registers.address
    let addresses = [a0, a1, a2, a3]
    let dr7 = registers.dr7 & GuestDataBreakpoints.dataBits
    guard known.dr7 != dr7 || known.addresses != addresses else { return }
    var followed = GuestDataBreakpoints(addresses: addresses, dr7: dr7, readAt: now)
    var protection = MemoryProtection()
    let dataSlots = (0..<4).filter { slot in
      let enabled = dr7 >> (2 * UInt64(slot)) & 0b11 != 0
      let condition = dr7 >> (16 + 4 * UInt64(slot)) & 0b11
      return enabled && (condition == 0b01 || condition == 0b11)
    }
    if !dataSlots.isEmpty {
      let special = try vcpu.specialRegisters()
      let walker = PageWalker(
        memory: memory, mode: PagingMode(cr0: special.cr0, cr3: special.cr3, cr4: special.cr4, efer: special.efer))
      for slot in dataSlots {
        // LEN: 00 one byte, 01 two, 11 four, 10 eight (SDM vol. 3, 18.2.5).
        let length: UInt64 = [1, 2, 8, 4][Int(dr7 >> (18 + 4 * UInt64(slot)) & 0b11)]
        let start = addresses[slot] & ~(length - 1)
        let readsToo = dr7 >> (16 + 4 * UInt64(slot)) & 0b11 == 0b11
        var pieces: [(linear: UInt64, physical: UInt64, length: UInt64)] = []
        var done: UInt64 = 0
        while done < length {
          let linear = start &+ done
          let inPage = min(length - done, 0x1000 - (linear & 0xfff))
          if let physical = try? walker.translate(linear).value, memory.contains(GuestAddress(physical)) {
            pieces.append((linear, physical, inPage))
            if readsToo { protection.absent.insert(physical >> 12) } else { protection.readOnly.insert(physical >> 12) }
          }
          done += inPage
        }
        followed.slots.append(
          GuestDataBreakpoints.Slot(index: slot, start: start, length: length, readsToo: readsToo, pieces: pieces))
      }
    }
    try applyProtection(debugger: nil, guest: protection)
    guestDataBreakpoints.withLock { $0[vcpu.id] = followed }
  }

  /// DR6's B0-B3 for the guest's data breakpoints these accesses (carried out on protected
  /// pages by one instruction) hit; 0 for none.
  public func guestDataBreakpointHits(_ accesses: [ProtectedAccess], vcpu: Int) -> UInt64 {
    guard let followed = guestDataBreakpoints.withLock({ $0[vcpu] }) else { return 0 }
    var bits: UInt64 = 0
    for access in accesses {
      for slot in followed.slots where access.isWrite || slot.readsToo {
        for piece in slot.pieces
        where access.physical < piece.physical &+ piece.length
          && piece.physical < access.physical &+ UInt64(max(access.size, 1))
        {
          bits |= 1 << UInt64(slot.index)
        }
      }
    }
    return bits
  }

  /// The guest's #DB for data breakpoints `bits` (B0-B3) its last instruction hit: DR6 as
  /// the processor writes it (B0-B3 replaced, BD/BS/BT kept, the fixed ones), DR7.GD cleared,
  /// then the trap through its IDT by the interpreter. Returns the outcome if that ended the
  /// machine (a triple fault).
  public func deliverGuestDataBreakpoint(_ vcpu: VCPU, bits: UInt64) throws -> RunOutcome? {
    var registers = try vcpu.debugRegisters()
    // As the interpreter's debug unit writes it (X86Core.recordDebugStatus).
    let kept = registers.dr6 & (DebugRegisterBit.dr6Writable & ~DebugRegisterBit.dr6Breakpoints)
    registers.dr6 = kept | bits & DebugRegisterBit.dr6Breakpoints | DebugRegisterBit.dr6FixedOnes
    registers.dr7 &= ~(1 << 13)  // GD
    try vcpu.setDebugRegisters(registers)
    let (_, outcome) = try assist(for: vcpu).deliverTrap(vector: 1)
    return ending(outcome, vcpu)
  }

  /// Finishes, in KVM, the instruction whose access to a protected page just exited (and was
  /// carried out): KVM runs with an immediate exit, so nothing after it runs, and its further
  /// accesses to protected pages (a read-modify-write, a string move) exit and are carried out
  /// the same way. Returns a device's request made on the way, and an exit of another kind
  /// that came instead of the end (for the caller to handle).
  public func finishProtectedInstruction(_ vcpu: VCPU) throws -> (action: DeviceAction, other: VCPUExit?) {
    var action = DeviceAction.none
    vcpu.requestImmediateExit()
    defer { vcpu.cancelImmediateExit() }
    while true {
      let next = try vcpu.run()
      switch next {
      case .interrupted:
        return (action, nil)
      case .mmioRead, .mmioWrite, .portIn, .portOut:
        let done = serviceDeviceExit(next, on: vcpu)
        if done != .none { action = done }
      default:
        return (action, next)
      }
    }
  }
}

extension Machine {
  /// After KVM shut the guest down (a triple fault) while pages are protected: KVM writes
  /// the frame of an exception it delivers itself, and on PVM a frame on a page it sees
  /// read-only or absent (the guest's stack beside a watched variable) fails, which it turns
  /// into a shutdown, the event lost and RIP still at the instruction that raised it. The
  /// interpreter runs that instruction again, raising the fault again (an instruction
  /// breakpoint, a page fault...) and writing its frame to RAM itself, as the CPU would; a
  /// real triple fault stays one. Not recovered: a trap or an interrupt KVM was delivering
  /// (RIP is past its instruction, or nothing raises it again). Returns the outcome that
  /// ends the run, or the vector delivered when the guest goes on.
  public func deliverOnInterpreterAfterShutdown(_ vcpu: VCPU) -> Result<UInt8, RunOutcomeBox> {
    do {
      let (result, outcome) = try assist(for: vcpu).step()
      if let end = ending(outcome, vcpu) { return .failure(RunOutcomeBox(end)) }
      // Nothing delivered again: the shutdown was not one to undo.
      guard case .delivered(let event) = result else { return .failure(RunOutcomeBox(.tripleFault(snapshot(vcpu)))) }
      return .success(event.vector)
    } catch {
      let failure = RunOutcome.internalError(
        description: "cannot move the vCPU to the interpreter: \(error)", snapshot(vcpu))
      return .failure(RunOutcomeBox(failure))
    }
  }
}

/// A run's outcome as an error, for `Result`.
public struct RunOutcomeBox: Error {
  public let outcome: RunOutcome
  init(_ outcome: RunOutcome) { self.outcome = outcome }
}
