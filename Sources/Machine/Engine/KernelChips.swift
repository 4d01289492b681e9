import Devices
import KVM

/// KVM's in-kernel interrupt controllers and PIT, as one value (`read`, `write`), and their
/// conversion into Hyperstep's models of the same chips (`load(into:)`) and back
/// (`init(from:basis:)`), which is how they move with a vCPU between the engines
/// (EngineSwitch.swift).
///
/// Field by field (KVM's names on the left; arch/x86/include/uapi/asm/kvm.h):
/// - 8259 (`kvm_pic_state`): last_irr is the inputs' levels (`lines`, edge detection); irr,
///   imr, isr as they are; priority_add is the input of highest priority, one past
///   `lowestPriority`; irq_base is `vectorBase`; read_reg_select, poll, special_mask, auto_eoi,
///   rotate_on_auto_eoi, special_fully_nested_mode, init4 and elcr the same bits; init_state
///   1-3 (ICW2-ICW4 expected) is `expectedICW` 2-4. KVM keeps no ICW3 (its slave is always on
///   IR2), no single mode and no LTIM: loaded, the chips are cascaded on IR2, edge triggered
///   but for the ELCR, as KVM's behave.
/// - I/O APIC (`kvm_ioapic_state`): id, ioregsel and the redirection table as they are; irr,
///   the pins KVM sees asserted, is `lines`.
/// - PIT (`kvm_pit_state2`): count (N), mode, rw_mode, bcd and gate as they are; a latched
///   count or status, a half-written count (write_state 4, its low byte in write_latch) and a
///   half-read one (read_state 4) become the model's latches and byte flip-flops. Mode 0xff is
///   a counter never programmed. The count's phase: KVM keeps counter 0's in a host timer the
///   API does not show, and KVM_SET_PIT2 loads every counter anew, so KVM counts a whole
///   period from each move back; `PITPhase` carries counter 0's intended schedule over that
///   and raises at the next move out an edge KVM owes, so a periodic count (modes 2, 3) keeps
///   its rate and loses or doubles no tick across any number of moves (a tick already raised
///   is in the 8259's or the I/O APIC's IRR, which cross). Not carried: the phase at the
///   first move after the guest programmed counter 0 on KVM (the period starts at the move),
///   counters 1 and 2's phases (they start at each move), and a one-shot count (modes 0, 1,
///   4, 5) that ended on the interpreter counts again on KVM from the move back.
/// - Local APIC (`kvm_lapic_state`, per vCPU): the register page, register by register at its
///   offset (ID in the xAPIC layout: Hyperstep does not enable KVM_CAP_X2APIC_API, and a vCPU
///   in x2APIC mode is refused). The timer's current count (0x390) crosses both ways: KVM
///   computes it from its host timer when read and restarts the timer from it when written;
///   the model starts its count that many divided bus clocks before its current time.
///   Version, APR and PPR are KVM's (read-only or computed), and the LVT delivery-status and
///   remote-IRR bits, which the model does not keep, read back as 0.
///
/// Time bases: KVM's counters run on host time (CLOCK_MONOTONIC); the models on the
/// interpreter's virtual time (retired instructions at 1 GHz, InterpreterPlatform). At a move
/// the one's count at that instant becomes the other's count at its own current instant, so
/// guest-visible time is host time on KVM and virtual time on the interpreter, joined at the
/// moves; neither jumps.
struct KernelChips: Equatable {
  var master: KVMPICState
  var slave: KVMPICState
  var ioapic: KVMIOAPICState
  var pit: KVMPITState
  /// Per vCPU, in vCPU order.
  var localAPICs: [KVMLocalAPICState]

  /// What KVM's chips hold now.
  static func read(_ vm: VirtualMachine, _ vcpus: [VCPU]) throws -> KernelChips {
    KernelChips(
      master: try vm.picState(master: true), slave: try vm.picState(master: false), ioapic: try vm.ioapicState(),
      pit: try vm.pitState(), localAPICs: try vcpus.map { try $0.localAPICState() })
  }

  /// Gives KVM's chips this state.
  func write(to vm: VirtualMachine, _ vcpus: [VCPU]) throws {
    try vm.setPICState(master, master: true)
    try vm.setPICState(slave, master: false)
    try vm.setIOAPICState(ioapic)
    try vm.setPITState(pit)
    for (vcpu, apic) in zip(vcpus, localAPICs) { try vcpu.setLocalAPICState(apic) }
  }

  // MARK: Into Hyperstep's chips

  /// Loads this state into `chips` at their current time (the devices advanced to it).
  /// `apicEnabled[n]` is vCPU n's IA32_APIC_BASE bit 11; `counter0Elapsed`, counter 0's phase
  /// when known (`PITPhase`; otherwise its period starts now).
  func load(into chips: PCPlatformInterrupts, apicEnabled: [Bool], counter0Elapsed: UInt64? = nil) {
    chips.pic.restore(
      master: Self.pic(master, into: chips.pic.master, cascade: 1 << UInt8(PIC8259Pair.cascadeIRQ)),
      slave: Self.pic(slave, into: chips.pic.slave, cascade: UInt8(PIC8259Pair.cascadeIRQ)))
    chips.ioapic.restore(
      id: UInt8(truncatingIfNeeded: ioapic.id), registerSelect: UInt8(truncatingIfNeeded: ioapic.registerSelect),
      entries: ioapic.redirectionTable, lines: ioapic.irr)
    for index in 0..<3 {
      var counter = Self.counter(pit.channels[index])
      if index == 0, counter.elapsed != nil, let counter0Elapsed { counter.elapsed = counter0Elapsed }
      chips.pit.setCounter(index, counter)
    }
    for (index, page) in localAPICs.enumerated() where chips.localAPICs.indices.contains(index) {
      let apic = chips.localAPICs[index]
      apic.hardwareEnabled = apicEnabled.indices.contains(index) ? apicEnabled[index] : true
      apic.restore { page[$0] }
    }
  }

  static func pic(_ kvm: KVMPICState, into model: PIC8259, cascade: UInt8) -> PIC8259 {
    var chip = model
    chip.lines = kvm.lastIRR
    chip.irr = kvm.irr
    chip.imr = kvm.imr
    chip.isr = kvm.isr
    chip.lowestPriority = (kvm.priorityAdd &+ 7) & 7
    chip.vectorBase = kvm.irqBase & 0xf8
    chip.readsISR = kvm.readRegisterSelect != 0
    chip.pollPending = kvm.poll != 0
    chip.specialMask = kvm.specialMask != 0
    chip.expectedICW = kvm.initState == 0 ? 0 : min(kvm.initState, 3) + 1
    chip.autoEOI = kvm.autoEOI != 0
    chip.rotateOnAutoEOI = kvm.rotateOnAutoEOI != 0
    chip.specialFullyNested = kvm.specialFullyNestedMode != 0
    chip.icw4Needed = kvm.init4 != 0
    chip.elcr = kvm.elcr & chip.elcrWritable
    chip.levelTriggeredMode = false
    chip.singleMode = false
    chip.cascade = cascade
    return chip
  }

  /// KVM's read and write states (i8254.c's RW_STATE_*).
  enum RWState {
    static let word0: UInt8 = 3
    static let word1: UInt8 = 4
  }

  static func counter(_ kvm: KVMPITChannelState) -> PIT8254.Counter {
    var counter = PIT8254.Counter()
    let programmed = kvm.mode <= 5
    counter.mode = programmed ? kvm.mode : 0
    counter.access = (1...3).contains(kvm.rwMode) ? kvm.rwMode : 3
    counter.bcd = kvm.bcd != 0
    counter.gate = kvm.gate != 0
    counter.initialCount = kvm.count == 0 ? 0x1_0000 : kvm.count
    counter.countWritten = programmed
    counter.elapsed = programmed ? 0 : nil  // the period starts at the move (see above)
    if kvm.countLatched != 0 {
      counter.latchedCount = kvm.latchedCount
      // A word latch whose low byte was read waits with KVM's MSB state.
      counter.readHighNext = counter.access == 3 && kvm.countLatched == 2
    } else {
      counter.readHighNext = counter.access == 3 && kvm.readState == RWState.word1
    }
    counter.latchedStatus = kvm.statusLatched != 0 ? kvm.status : nil
    counter.lowByte = kvm.writeState == RWState.word1 ? kvm.writeLatch : nil
    return counter
  }

}

extension KernelChips {
  // MARK: Out of Hyperstep's chips

  /// The state of `chips` now, in KVM's terms. `basis` (what KVM held when the chips were
  /// loaded) gives what the models do not keep: the ELCR masks, the I/O APIC's base, the PIT's
  /// flags and load times, a counter never programmed, and the APIC registers KVM computes.
  init(from chips: PCPlatformInterrupts, basis: KernelChips) {
    master = Self.pic(chips.pic.master, basis: basis.master)
    slave = Self.pic(chips.pic.slave, basis: basis.slave)
    ioapic = basis.ioapic
    ioapic.id = UInt32(chips.ioapic.id)
    ioapic.registerSelect = UInt32(chips.ioapic.registerSelect)
    ioapic.irr = chips.ioapic.lines
    ioapic.redirectionTable = chips.ioapic.entries
    pit = basis.pit
    for index in 0..<3 {
      pit.channels[index] = Self.channel(chips.pit.counter(index), basis: basis.pit.channels[index])
    }
    localAPICs = basis.localAPICs.enumerated().map { index, page in
      guard chips.localAPICs.indices.contains(index) else { return page }
      return Self.page(chips.localAPICs[index], basis: page)
    }
  }

  static func pic(_ chip: PIC8259, basis: KVMPICState) -> KVMPICState {
    var kvm = basis
    // The master's IR2 is the slave's INT: the model holds it as a level, KVM pulses it (its
    // last_irr bit stays as KVM had it; the request it latched is in irr either way).
    let cascade: UInt8 = chip.isMaster ? 1 << UInt8(PIC8259Pair.cascadeIRQ) : 0
    kvm.lastIRR = chip.lines & ~cascade | basis.lastIRR & cascade
    kvm.irr = chip.irr
    kvm.imr = chip.imr
    kvm.isr = chip.isr
    kvm.priorityAdd = (chip.lowestPriority &+ 1) & 7
    kvm.irqBase = chip.vectorBase
    kvm.readRegisterSelect = chip.readsISR ? 1 : 0
    kvm.poll = chip.pollPending ? 1 : 0
    kvm.specialMask = chip.specialMask ? 1 : 0
    kvm.initState = chip.expectedICW == 0 ? 0 : chip.expectedICW - 1
    kvm.autoEOI = chip.autoEOI ? 1 : 0
    kvm.rotateOnAutoEOI = chip.rotateOnAutoEOI ? 1 : 0
    kvm.specialFullyNestedMode = chip.specialFullyNested ? 1 : 0
    kvm.init4 = chip.icw4Needed ? 1 : 0
    kvm.elcr = chip.elcr
    return kvm
  }

  static func channel(_ counter: PIT8254.Counter, basis: KVMPITChannelState) -> KVMPITChannelState {
    // Never programmed on either side: as KVM had it.
    if basis.mode > 5 && counter == Self.counter(basis) { return basis }
    var kvm = basis
    kvm.count = counter.initialCount
    kvm.mode = counter.mode
    kvm.rwMode = counter.access
    kvm.bcd = counter.bcd ? 1 : 0
    kvm.gate = counter.gate ? 1 : 0
    let threeByte = counter.access == 3
    if let latched = counter.latchedCount {
      kvm.latchedCount = latched
      kvm.countLatched = threeByte ? (counter.readHighNext ? 2 : RWState.word0) : counter.access
      kvm.readState = threeByte ? RWState.word0 : counter.access
    } else {
      kvm.countLatched = 0
      kvm.readState = threeByte ? (counter.readHighNext ? RWState.word1 : RWState.word0) : counter.access
    }
    kvm.statusLatched = counter.latchedStatus == nil ? 0 : 1
    if let status = counter.latchedStatus { kvm.status = status }
    if let low = counter.lowByte {
      kvm.writeState = RWState.word1
      kvm.writeLatch = low
    } else {
      kvm.writeState = threeByte ? RWState.word0 : counter.access
    }
    return kvm
  }

  /// The registers the model keeps, at their offsets in the page.
  static let modelledRegisters: [UInt32] = {
    typealias R = LocalAPIC.Register
    var offsets = [
      R.id, R.taskPriority, R.logicalDestination, R.destinationFormat, R.spuriousVector, R.errorStatus,
      R.interruptCommandLow, R.interruptCommandHigh, R.lvtTimer, R.lvtThermal, R.lvtPerformance, R.lvtLINT0,
      R.lvtLINT1, R.lvtError, R.timerInitialCount, R.timerCurrentCount, R.timerDivide,
    ]
    for index in 0..<8 as Range<UInt32> {
      offsets += [R.inService + index << 4, R.triggerMode + index << 4, R.interruptRequest + index << 4]
    }
    return offsets
  }()

  static func page(_ apic: LocalAPIC, basis: KVMLocalAPICState) -> KVMLocalAPICState {
    var page = basis
    for offset in modelledRegisters { page[offset] = apic.read(offset: offset) }
    return page
  }
}
