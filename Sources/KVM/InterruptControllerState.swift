import CKVM

/// The state of KVM's in-kernel interrupt controllers and timer, as plain values: what
/// KVM_GET_IRQCHIP (the two 8259s, the I/O APIC), KVM_GET_PIT2 and KVM_GET_LAPIC give and the
/// KVM_SET_* calls take (Documentation/virt/kvm/api.rst; the layouts are those of
/// arch/x86/include/uapi/asm/kvm.h). Field names follow KVM's, so a reader can hold one
/// against the other; what they mean for Hyperstep's chips is Machine's business
/// (KernelChipConversion.swift).

/// One 8259 as KVM keeps it (`struct kvm_pic_state`).
public struct KVMPICState: Equatable, Sendable {
  /// The level of each input at the last change (edge detection).
  public var lastIRR: UInt8 = 0
  public var irr: UInt8 = 0
  public var imr: UInt8 = 0
  public var isr: UInt8 = 0
  /// The input with the highest priority (rotation moves it).
  public var priorityAdd: UInt8 = 0
  public var irqBase: UInt8 = 0
  /// OCW3 RR/RIS: reads of the command port give ISR.
  public var readRegisterSelect: UInt8 = 0
  public var poll: UInt8 = 0
  public var specialMask: UInt8 = 0
  /// 0 initialized; 1, 2, 3: ICW2, ICW3, ICW4 expected next.
  public var initState: UInt8 = 0
  public var autoEOI: UInt8 = 0
  public var rotateOnAutoEOI: UInt8 = 0
  public var specialFullyNestedMode: UInt8 = 0
  /// ICW1's IC4: an ICW4 follows.
  public var init4: UInt8 = 0
  public var elcr: UInt8 = 0
  public var elcrMask: UInt8 = 0

  public init() {}
}

/// KVM's I/O APIC (`struct kvm_ioapic_state`): 24 redirection entries in the 82093AA's bit
/// layout, and `irr`, the pins whose line is asserted (cleared on delivery for edge entries).
public struct KVMIOAPICState: Equatable, Sendable {
  public static let pinCount = 24
  public var baseAddress: UInt64 = 0
  public var registerSelect: UInt32 = 0
  public var id: UInt32 = 0
  public var irr: UInt32 = 0
  public var redirectionTable = [UInt64](repeating: 0, count: pinCount)

  public init() {}
}

/// One 8254 counter as KVM keeps it (`struct kvm_pit_channel_state`). KVM's read and write
/// states count 1 LSB, 2 MSB, 3 first byte of a word, 4 second byte.
public struct KVMPITChannelState: Equatable, Sendable {
  /// The initial count N (65536 for a written 0).
  public var count: UInt32 = 0
  public var latchedCount: UInt16 = 0
  /// Non-zero while a count latch waits to be read: the read state it is read with.
  public var countLatched: UInt8 = 0
  public var statusLatched: UInt8 = 0
  public var status: UInt8 = 0
  public var readState: UInt8 = 0
  public var writeState: UInt8 = 0
  /// The first byte of a word being written.
  public var writeLatch: UInt8 = 0
  public var rwMode: UInt8 = 0
  /// 0-5, or 0xff for a counter never programmed.
  public var mode: UInt8 = 0
  public var bcd: UInt8 = 0
  public var gate: UInt8 = 0
  /// Host CLOCK_MONOTONIC nanoseconds at the load (kept by KVM for counters 1 and 2; counter
  /// 0's phase lives in a host timer the API does not show).
  public var countLoadTime: Int64 = 0

  public init() {}

  init(_ raw: kvm_pit_channel_state) {
    count = raw.count
    latchedCount = raw.latched_count
    countLatched = raw.count_latched
    statusLatched = raw.status_latched
    status = raw.status
    readState = raw.read_state
    writeState = raw.write_state
    writeLatch = raw.write_latch
    rwMode = raw.rw_mode
    mode = raw.mode
    bcd = raw.bcd
    gate = raw.gate
    countLoadTime = raw.count_load_time
  }

  var raw: kvm_pit_channel_state {
    kvm_pit_channel_state(
      count: count, latched_count: latchedCount, count_latched: countLatched, status_latched: statusLatched,
      status: status, read_state: readState, write_state: writeState, write_latch: writeLatch, rw_mode: rwMode,
      mode: mode, bcd: bcd, gate: gate, count_load_time: countLoadTime)
  }
}

/// KVM's PIT (`struct kvm_pit_state2`).
public struct KVMPITState: Equatable, Sendable {
  public var channels = [KVMPITChannelState](repeating: KVMPITChannelState(), count: 3)
  public var flags: UInt32 = 0

  public init() {}
}

/// A local APIC's register page as KVM gives it (`struct kvm_lapic_state`: the first 1 KiB of
/// the xAPIC page, each register at its offset). KVM fills the current count (0x390) with its
/// live value on a read and, on a write, restarts the timer from it. Without
/// KVM_CAP_X2APIC_API enabled (Hyperstep does not enable it) the ID register has the xAPIC
/// layout (ID in bits 31-24) in both modes.
public struct KVMLocalAPICState: Equatable, Sendable {
  public static let size = 1024
  public var bytes = [UInt8](repeating: 0, count: size)

  public init() {}

  /// The 32-bit register at `offset` (16-byte aligned, below 0x400).
  public subscript(offset: UInt32) -> UInt32 {
    get {
      let base = Int(offset)
      return (0..<4).reduce(0) { $0 | UInt32(bytes[base + $1]) << (8 * UInt32($1)) }
    }
    set {
      let base = Int(offset)
      for index in 0..<4 { bytes[base + index] = UInt8(truncatingIfNeeded: newValue >> (8 * UInt32(index))) }
    }
  }
}

extension VirtualMachine {
  /// `struct kvm_irqchip`: chip_id, pad, then the chip's state (a C union Swift reads as
  /// bytes): `kvm_pic_state` is 16 bytes in field order; `kvm_ioapic_state` is base_address,
  /// ioregsel, id, irr, pad, then 24 redirection entries of 8 bytes.
  private static let chipOffset = 8
  private static let redirectionTableOffset = chipOffset + 24

  /// KVM_GET_IRQCHIP for chip `id`, as the bytes of `struct kvm_irqchip`.
  private func irqchip(_ id: Int32) throws(KVMError) -> [UInt8] {
    var chip = kvm_irqchip()
    chip.chip_id = UInt32(id)
    try Syscall.ioctl(fd.rawValue, CKVM_GET_IRQCHIP, on: &chip, "KVM_GET_IRQCHIP")
    // SAFETY: `chip` is a plain C struct; its bytes are copied within its own size.
    return unsafe withUnsafeBytes(of: &chip) { unsafe Array($0) }
  }

  /// A `struct kvm_irqchip` for chip `id` with nothing else set, as bytes.
  private static func emptyIRQChip(_ id: Int32) -> [UInt8] {
    var chip = kvm_irqchip()
    chip.chip_id = UInt32(id)
    // SAFETY: `chip` is a plain C struct; its bytes are copied within its own size.
    return unsafe withUnsafeBytes(of: &chip) { unsafe Array($0) }
  }

  /// KVM_SET_IRQCHIP with `bytes` as the whole `struct kvm_irqchip`.
  private func setIRQChip(_ bytes: [UInt8]) throws(KVMError) {
    var chip = kvm_irqchip()
    // SAFETY: `bytes` has the struct's size (it came from `irqchip(_:)`); copied within it.
    unsafe withUnsafeMutableBytes(of: &chip) { raw in
      for index in 0..<min(raw.count, bytes.count) { unsafe raw[index] = bytes[index] }
    }
    try Syscall.ioctl(fd.rawValue, CKVM_SET_IRQCHIP, on: &chip, "KVM_SET_IRQCHIP")
  }

  private static func load<T: FixedWidthInteger>(_ bytes: [UInt8], _ offset: Int, as: T.Type) -> T {
    (0..<MemoryLayout<T>.size).reduce(T(0)) { $0 | T(bytes[offset + $1]) << (8 * $1) }
  }

  private static func store<T: FixedWidthInteger>(_ value: T, _ bytes: inout [UInt8], _ offset: Int) {
    for index in 0..<MemoryLayout<T>.size { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * index)) }
  }

  /// The in-kernel 8259 (`master` or the slave) (KVM_GET_IRQCHIP, chip 0 or 1).
  public func picState(master: Bool) throws(KVMError) -> KVMPICState {
    let bytes = try irqchip(master ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE)
    let b = Array(bytes[Self.chipOffset..<Self.chipOffset + 16])
    var state = KVMPICState()
    (state.lastIRR, state.irr, state.imr, state.isr) = (b[0], b[1], b[2], b[3])
    (state.priorityAdd, state.irqBase, state.readRegisterSelect, state.poll) = (b[4], b[5], b[6], b[7])
    (state.specialMask, state.initState, state.autoEOI, state.rotateOnAutoEOI) = (b[8], b[9], b[10], b[11])
    (state.specialFullyNestedMode, state.init4, state.elcr, state.elcrMask) = (b[12], b[13], b[14], b[15])
    return state
  }

  public func setPICState(_ state: KVMPICState, master: Bool) throws(KVMError) {
    // Every field of the chip is written: nothing needs reading first.
    var bytes = Self.emptyIRQChip(master ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE)
    let fields = [
      state.lastIRR, state.irr, state.imr, state.isr, state.priorityAdd, state.irqBase, state.readRegisterSelect,
      state.poll, state.specialMask, state.initState, state.autoEOI, state.rotateOnAutoEOI,
      state.specialFullyNestedMode, state.init4, state.elcr, state.elcrMask,
    ]
    for (index, value) in fields.enumerated() { bytes[Self.chipOffset + index] = value }
    try setIRQChip(bytes)
  }

  /// The in-kernel I/O APIC (KVM_GET_IRQCHIP, chip 2).
  public func ioapicState() throws(KVMError) -> KVMIOAPICState {
    let bytes = try irqchip(KVM_IRQCHIP_IOAPIC)
    var state = KVMIOAPICState()
    state.baseAddress = Self.load(bytes, Self.chipOffset, as: UInt64.self)
    state.registerSelect = Self.load(bytes, Self.chipOffset + 8, as: UInt32.self)
    state.id = Self.load(bytes, Self.chipOffset + 12, as: UInt32.self)
    state.irr = Self.load(bytes, Self.chipOffset + 16, as: UInt32.self)
    for pin in 0..<KVMIOAPICState.pinCount {
      state.redirectionTable[pin] = Self.load(bytes, Self.redirectionTableOffset + pin * 8, as: UInt64.self)
    }
    return state
  }

  public func setIOAPICState(_ state: KVMIOAPICState) throws(KVMError) {
    var bytes = Self.emptyIRQChip(KVM_IRQCHIP_IOAPIC)
    Self.store(state.baseAddress, &bytes, Self.chipOffset)
    Self.store(state.registerSelect, &bytes, Self.chipOffset + 8)
    Self.store(state.id, &bytes, Self.chipOffset + 12)
    Self.store(state.irr, &bytes, Self.chipOffset + 16)
    for pin in 0..<KVMIOAPICState.pinCount {
      Self.store(state.redirectionTable[pin], &bytes, Self.redirectionTableOffset + pin * 8)
    }
    try setIRQChip(bytes)
  }

  /// The in-kernel PIT (KVM_GET_PIT2).
  public func pitState() throws(KVMError) -> KVMPITState {
    var raw = kvm_pit_state2()
    try Syscall.ioctl(fd.rawValue, CKVM_GET_PIT2, on: &raw, "KVM_GET_PIT2")
    var state = KVMPITState()
    state.channels = [
      KVMPITChannelState(raw.channels.0), KVMPITChannelState(raw.channels.1), KVMPITChannelState(raw.channels.2),
    ]
    state.flags = raw.flags
    return state
  }

  /// KVM_SET_PIT2: KVM loads each counter's count anew, so every counter starts its period
  /// from `count` at this call (KVM's i8254.c, `kvm_vm_ioctl_set_pit2`).
  public func setPITState(_ state: KVMPITState) throws(KVMError) {
    var raw = kvm_pit_state2()
    raw.channels = (state.channels[0].raw, state.channels[1].raw, state.channels[2].raw)
    raw.flags = state.flags
    try Syscall.ioctl(fd.rawValue, CKVM_SET_PIT2, on: &raw, "KVM_SET_PIT2")
  }

  /// Whether the in-kernel PIT re-injects ticks the guest has not acknowledged yet (KVM's
  /// default) or lets them merge in the interrupt controller's request bit as real hardware
  /// does (KVM_REINJECT_CONTROL).
  public func setPITReinjection(_ on: Bool) throws(KVMError) {
    var control = kvm_reinject_control()
    control.pit_reinject = on ? 1 : 0
    try Syscall.ioctl(fd.rawValue, CKVM_REINJECT_CONTROL, on: &control, "KVM_REINJECT_CONTROL")
  }
}

extension VCPU {
  /// This vCPU's in-kernel local APIC (KVM_GET_LAPIC).
  public func localAPICState() throws(KVMError) -> KVMLocalAPICState {
    var raw = kvm_lapic_state()
    try Syscall.ioctl(fd.rawValue, CKVM_GET_LAPIC, on: &raw, "KVM_GET_LAPIC")
    var state = KVMLocalAPICState()
    // SAFETY: `regs` is a C array of exactly 1024 bytes; it is copied within its size.
    unsafe withUnsafeBytes(of: &raw.regs) { bytes in
      for index in 0..<KVMLocalAPICState.size { state.bytes[index] = unsafe bytes[index] }
    }
    return state
  }

  public func setLocalAPICState(_ state: KVMLocalAPICState) throws(KVMError) {
    var raw = kvm_lapic_state()
    // SAFETY: as in `localAPICState()`: 1024 bytes written within the array.
    unsafe withUnsafeMutableBytes(of: &raw.regs) { bytes in
      for index in 0..<KVMLocalAPICState.size { unsafe bytes[index] = state.bytes[index] }
    }
    cache.forgetRegisters()  // the TPR is CR8
    try Syscall.ioctl(fd.rawValue, CKVM_SET_LAPIC, on: &raw, "KVM_SET_LAPIC")
  }
}
