/// One processor's local APIC in xAPIC mode: the 4 KiB register page at 0xfee00000 (Intel SDM
/// Vol. 3A, chapter 11 "Advanced Programmable Interrupt Controller (APIC)"; section numbers
/// below are that chapter's).
///
/// Every processor sees its own APIC at the same address, so the APIC is not on the shared
/// `IOBus`: the engine sends a vCPU's accesses to that vCPU's APIC with `read(offset:)` and
/// `write(offset:value:)`. What a write starts elsewhere (an IPI, the EOI of a level-triggered
/// interrupt that the I/O APICs must hear) is returned as a `LocalAPIC.Effect` for the platform
/// to route; INIT and start-up IPIs reach the engine as `ProcessorSignal`s.
///
/// The timer counts a 1 GHz bus clock of virtual time (one count per nanosecond before the
/// divider), as KVM's APIC does.
public final class LocalAPIC: TimedDevice {
  public static let defaultBase: UInt64 = 0xfee0_0000
  /// Version register: version 0x14 (an integrated xAPIC, 11.4.8 "Local APIC Version
  /// Register"), max LVT entry 5 in bits 23-16 (six entries: timer, thermal, performance
  /// counters, LINT0, LINT1, error; no CMCI), bit 24 clear (no EOI-broadcast suppression).
  public static let version: UInt32 = 0x0005_0014
  /// The bus clock the timer divides (11.5.4): 1 GHz of virtual time.
  public static let timerClock = TickClock(hertz: nanosecondsPerSecond)

  /// Register offsets (Table 11-1 "Local APIC Register Address Map").
  public enum Register {
    public static let id: UInt32 = 0x020
    public static let version: UInt32 = 0x030
    public static let taskPriority: UInt32 = 0x080
    public static let arbitrationPriority: UInt32 = 0x090
    public static let processorPriority: UInt32 = 0x0a0
    public static let endOfInterrupt: UInt32 = 0x0b0
    public static let remoteRead: UInt32 = 0x0c0
    public static let logicalDestination: UInt32 = 0x0d0
    public static let destinationFormat: UInt32 = 0x0e0
    public static let spuriousVector: UInt32 = 0x0f0
    public static let inService: UInt32 = 0x100
    public static let triggerMode: UInt32 = 0x180
    public static let interruptRequest: UInt32 = 0x200
    public static let errorStatus: UInt32 = 0x280
    public static let interruptCommandLow: UInt32 = 0x300
    public static let interruptCommandHigh: UInt32 = 0x310
    public static let lvtTimer: UInt32 = 0x320
    public static let lvtThermal: UInt32 = 0x330
    public static let lvtPerformance: UInt32 = 0x340
    public static let lvtLINT0: UInt32 = 0x350
    public static let lvtLINT1: UInt32 = 0x360
    public static let lvtError: UInt32 = 0x370
    public static let timerInitialCount: UInt32 = 0x380
    public static let timerCurrentCount: UInt32 = 0x390
    public static let timerDivide: UInt32 = 0x3e0
  }

  /// Error status bits (11.5.3 "Error Handling", Figure 11-9).
  public enum ErrorBit {
    public static let sendIllegalVector: UInt32 = 0x20
    public static let receiveIllegalVector: UInt32 = 0x40
    public static let illegalRegisterAddress: UInt32 = 0x80
  }

  /// What a register write asks of the rest of the platform.
  public enum Effect: Equatable, Sendable {
    /// The ICR was written: deliver this message.
    case interprocessorInterrupt(InterruptMessage)
    /// EOI of a level-triggered vector: the I/O APICs clear Remote IRR of entries with it
    /// (11.8.5 "Signaling Interrupt Servicing Completion").
    case endOfInterrupt(vector: UInt8)
  }

  static let lvtMask: UInt32 = 0x1_0000
  static let lvtReset: UInt32 = lvtMask

  /// The APIC's position in the platform's list (the vCPU index).
  public let index: Int
  /// APIC ID (register 0x20 bits 31-24).
  public internal(set) var id: UInt8
  public let isBootstrapProcessor: Bool
  /// IA32_APIC_BASE bit 11 (the engine owns the MSR and sets this): when clear the APIC is
  /// off and PIC interrupts go straight to the processor (11.4.3).
  public var hardwareEnabled = true

  public internal(set) var taskPriority: UInt32 = 0
  public internal(set) var logicalDestination: UInt32 = 0
  public internal(set) var destinationFormat: UInt32 = 0xffff_ffff
  public internal(set) var spuriousVector: UInt32 = 0xff
  public internal(set) var inService = VectorSet()
  public internal(set) var triggerMode = VectorSet()
  public internal(set) var interruptRequest = VectorSet()
  public internal(set) var errorStatus: UInt32 = 0
  /// Errors seen since the last write to ESR; a write moves them to `errorStatus` (11.5.3).
  var errorsSinceWrite: UInt32 = 0
  public internal(set) var commandLow: UInt32 = 0
  public internal(set) var commandHigh: UInt32 = 0
  public internal(set) var lvtTimer = lvtReset
  public internal(set) var lvtThermal = lvtReset
  public internal(set) var lvtPerformance = lvtReset
  public internal(set) var lvtLINT0 = lvtReset
  public internal(set) var lvtLINT1 = lvtReset
  public internal(set) var lvtError = lvtReset
  public internal(set) var timerInitialCount: UInt32 = 0
  public internal(set) var timerDivide: UInt32 = 0
  /// An NMI (from LINT1 or an NMI message) waits for the processor; the engine clears it.
  public var nmiPending = false

  public internal(set) var now: UInt64 = 0
  /// When the current count was loaded with the initial count.
  var timerStart: UInt64 = 0
  /// The next time the count reaches zero, or nil when the timer is stopped.
  var timerExpiry: UInt64?

  /// - Parameters:
  ///   - virtualWire: LINT0 starts as an unmasked ExtINT entry, as a PC BIOS leaves the
  ///     bootstrap processor's APIC and as KVM resets it, so a guest that never programs the
  ///     APIC (Guests/tests/timer.S) still receives the 8259's interrupts.
  public init(index: Int, id: UInt8, isBootstrapProcessor: Bool, virtualWire: Bool? = nil) {
    self.index = index
    self.id = id
    self.isBootstrapProcessor = isBootstrapProcessor
    if virtualWire ?? isBootstrapProcessor { lvtLINT0 = 0x700 }
  }

  /// INIT (11.4.7.3): everything but the APIC ID returns to its power-up state.
  public func resetForInit() {
    taskPriority = 0
    logicalDestination = 0
    destinationFormat = 0xffff_ffff
    spuriousVector = 0xff
    inService = VectorSet()
    triggerMode = VectorSet()
    interruptRequest = VectorSet()
    errorStatus = 0
    errorsSinceWrite = 0
    commandLow = 0
    commandHigh = 0
    lvtTimer = Self.lvtReset
    lvtThermal = Self.lvtReset
    lvtPerformance = Self.lvtReset
    lvtLINT0 = Self.lvtReset
    lvtLINT1 = Self.lvtReset
    lvtError = Self.lvtReset
    timerInitialCount = 0
    timerDivide = 0
    timerExpiry = nil
    nmiPending = false
  }

  // MARK: State the platform looks at

  /// SVR bit 8 (11.4.7.2).
  public var softwareEnabled: Bool { spuriousVector & 0x100 != 0 }

  /// Whether the 8259's INT reaches this processor: through LINT0 programmed as an unmasked
  /// ExtINT (virtual-wire mode, 11.5.1), or directly when the APIC is hardware-disabled.
  public var acceptsPICInterrupts: Bool {
    !hardwareEnabled || (lvtLINT0 & Self.lvtMask == 0 && lvtLINT0 >> 8 & 7 == 7)
  }

  /// Processor priority (11.8.3.1): the task priority, or the class of the highest
  /// in-service vector when that is higher.
  public var processorPriority: UInt32 {
    let serving = UInt32(inService.highest ?? 0)
    return taskPriority >> 4 >= serving >> 4 ? taskPriority & 0xff : serving & 0xf0
  }

  /// Arbitration priority (11.6.2.4).
  public var arbitrationPriority: UInt32 {
    let serving = UInt32(inService.highest ?? 0) >> 4
    let requested = UInt32(interruptRequest.highest ?? 0) >> 4
    let task = taskPriority >> 4 & 0xf
    if task >= requested && task > serving { return taskPriority & 0xff }
    return max(task, serving, requested) << 4
  }

  /// The vector the processor would take now, or nil: the highest requested vector whose
  /// priority class is above the processor priority's (11.8.3 "Interrupt, Task, and
  /// Processor Priority").
  public var pendingVector: UInt8? {
    guard hardwareEnabled, let vector = interruptRequest.highest else { return nil }
    return UInt32(vector) >> 4 > processorPriority >> 4 ? vector : nil
  }

  /// The processor accepts an interrupt (its INTA): the vector moves from IRR to ISR. When
  /// nothing qualifies any more, the APIC answers with its spurious vector and sets no ISR
  /// bit (11.9 "Spurious Interrupt").
  public func acknowledge() -> UInt8 {
    guard let vector = pendingVector else { return UInt8(truncatingIfNeeded: spuriousVector) }
    interruptRequest[vector] = false
    inService[vector] = true
    return vector
  }

  // MARK: Messages in

  /// Whether this APIC is among the message's destinations, ignoring shorthands (11.6.2
  /// "Determining IPI Destination"): a physical ID or 0xff; in logical mode the flat model
  /// ANDs the 8-bit mask with LDR bits 31-24, the cluster model matches the cluster in bits
  /// 7-4 and ANDs bits 3-0.
  public func matches(destination: UInt8, logical: Bool) -> Bool {
    guard logical else { return destination == 0xff || destination == id }
    if destination == 0xff { return true }
    let ldr = UInt8(truncatingIfNeeded: logicalDestination >> 24)
    if destinationFormat >> 28 == 0xf { return ldr & destination != 0 }
    return ldr >> 4 == destination >> 4 && ldr & destination & 0x0f != 0
  }

  /// Takes a message addressed to this APIC. Fixed and lowest-priority ones request their
  /// vector (dropped while software-disabled, 11.4.7.2); NMI sets `nmiPending`; INIT and
  /// start-up are returned for the engine to act on.
  public func receive(_ message: InterruptMessage) -> ProcessorSignal? {
    switch message.deliveryMode {
    case .fixed, .lowestPriority:
      guard softwareEnabled else { return nil }
      request(vector: message.vector, levelTriggered: message.levelTriggered)
    case .nonMaskable:
      nmiPending = true
    case .initialize:
      // INIT level de-assert only synchronised arbitration IDs; no processor since the
      // Pentium 4 acts on it (11.6.1), and Linux still sends one after each INIT.
      guard message.assert || !message.levelTriggered else { return nil }
      resetForInit()
      return .initialize
    case .startup:
      return .startup(vector: message.vector)
    case .systemManagement, .externalInterrupt:
      break  // no SMM; ExtINT messages are the platform's to route to the 8259
    }
    return nil
  }

  /// Sets a vector in IRR (and TMR for level triggering); vectors 0-15 are illegal and set
  /// "receive illegal vector" instead (11.5.3).
  func request(vector: UInt8, levelTriggered: Bool) {
    guard vector >= 16 else {
      raiseError(ErrorBit.receiveIllegalVector)
      return
    }
    interruptRequest[vector] = true
    triggerMode[vector] = levelTriggered
  }

  private func raiseError(_ bit: UInt32) {
    let fresh = errorsSinceWrite & bit == 0
    errorsSinceWrite |= bit
    // The error LVT interrupts on a new error; its own vector being illegal is not re-reported.
    if fresh && lvtError & Self.lvtMask == 0 && lvtError & 0xff >= 16 {
      request(vector: UInt8(lvtError & 0xff), levelTriggered: false)
    }
  }

  /// The LINT1 pin, wired to the platform's NMI: a rising level with LINT1 in NMI mode
  /// raises an NMI; in fixed mode it requests LINT1's vector.
  public func signalLINT1() {
    deliverLocal(lvtLINT1)
  }

  private func deliverLocal(_ entry: UInt32) {
    guard entry & Self.lvtMask == 0 else { return }
    switch entry >> 8 & 7 {
    case 0: request(vector: UInt8(entry & 0xff), levelTriggered: entry & 0x8000 != 0)
    case 4: nmiPending = true
    default: break
    }
  }

  // MARK: Registers

  /// A 32-bit read at `offset` in the page. Registers are 16-byte aligned; other offsets and
  /// write-only registers read 0 (an unaligned or reserved offset is an illegal register
  /// address, 11.5.3).
  public func read(offset: UInt32) -> UInt32 {
    let register = offset & 0xff0
    switch register {
    case Register.id: return UInt32(id) << 24
    case Register.version: return Self.version
    case Register.taskPriority: return taskPriority
    case Register.arbitrationPriority: return arbitrationPriority
    case Register.processorPriority: return processorPriority
    case Register.endOfInterrupt: return 0  // write-only
    case Register.remoteRead: return 0
    case Register.logicalDestination: return logicalDestination
    case Register.destinationFormat: return destinationFormat
    case Register.spuriousVector: return spuriousVector
    case 0x100...0x170: return inService.register(Int(register - 0x100) >> 4)
    case 0x180...0x1f0: return triggerMode.register(Int(register - 0x180) >> 4)
    case 0x200...0x270: return interruptRequest.register(Int(register - 0x200) >> 4)
    case Register.errorStatus: return errorStatus
    case Register.interruptCommandLow: return commandLow  // delivery status 0: sent at once
    case Register.interruptCommandHigh: return commandHigh
    case Register.lvtTimer: return lvtTimer
    case Register.lvtThermal: return lvtThermal
    case Register.lvtPerformance: return lvtPerformance
    case Register.lvtLINT0: return lvtLINT0
    case Register.lvtLINT1: return lvtLINT1
    case Register.lvtError: return lvtError
    case Register.timerInitialCount: return timerInitialCount
    case Register.timerCurrentCount: return timerCurrentCount
    case Register.timerDivide: return timerDivide
    default:
      raiseError(ErrorBit.illegalRegisterAddress)
      return 0
    }
  }

  /// A 32-bit write at `offset` in the page. Read-only registers ignore writes.
  @discardableResult
  public func write(offset: UInt32, value: UInt32) -> Effect? {
    switch offset & 0xff0 {
    case Register.id:
      id = UInt8(truncatingIfNeeded: value >> 24)
    case Register.taskPriority:
      taskPriority = value & 0xff
    case Register.endOfInterrupt:
      return endOfInterrupt()
    case Register.logicalDestination:
      logicalDestination = value & 0xff00_0000
    case Register.destinationFormat:
      destinationFormat = value | 0x0fff_ffff  // bits 27-0 are reserved as ones
    case Register.spuriousVector:
      writeSpuriousVector(value)
    case Register.errorStatus:
      errorStatus = errorsSinceWrite
      errorsSinceWrite = 0
    case Register.interruptCommandLow:
      // Delivery status (bit 12) and the reserved bits read back as zero.
      commandLow = value & 0x000c_cfff
      return sendInterprocessorInterrupt()
    case Register.interruptCommandHigh:
      commandHigh = value & 0xff00_0000
    case Register.lvtTimer:
      let oldMode = timerMode
      lvtTimer = lvtValue(value, writable: 0x0007_00ff)
      // Switching into or out of TSC-deadline mode disarms the timer (11.5.4.1).
      if (oldMode == 2) != (timerMode == 2) {
        timerExpiry = nil
        timerInitialCount = 0
      }
      rescheduleTimer()
    case Register.lvtThermal:
      lvtThermal = lvtValue(value, writable: 0x0001_07ff)
    case Register.lvtPerformance:
      lvtPerformance = lvtValue(value, writable: 0x0001_07ff)
    case Register.lvtLINT0:
      lvtLINT0 = lvtValue(value, writable: 0x0001_a7ff)
    case Register.lvtLINT1:
      lvtLINT1 = lvtValue(value, writable: 0x0001_a7ff)
    case Register.lvtError:
      lvtError = lvtValue(value, writable: 0x0001_00ff)
    case Register.timerInitialCount:
      startTimer(initialCount: value)
    case Register.timerDivide:
      timerDivide = value & 0x0b
      rescheduleTimer()
    case Register.version, Register.arbitrationPriority, Register.processorPriority, Register.remoteRead,
      0x100...0x270, Register.timerCurrentCount:
      break  // read-only
    default:
      raiseError(ErrorBit.illegalRegisterAddress)
    }
    return nil
  }

  /// While software-disabled the LVT mask bits cannot be cleared (11.4.7.2).
  private func lvtValue(_ value: UInt32, writable: UInt32) -> UInt32 {
    softwareEnabled ? value & writable : (value & writable) | Self.lvtMask
  }

  private func writeSpuriousVector(_ value: UInt32) {
    let wasEnabled = softwareEnabled
    spuriousVector = value & 0x3ff  // vector, APIC enable, focus checking; no EOI suppression
    if wasEnabled && !softwareEnabled {  // software disable masks every LVT entry
      lvtTimer |= Self.lvtMask
      lvtThermal |= Self.lvtMask
      lvtPerformance |= Self.lvtMask
      lvtLINT0 |= Self.lvtMask
      lvtLINT1 |= Self.lvtMask
      lvtError |= Self.lvtMask
    }
  }

  /// EOI (11.8.5): the highest in-service vector is done. A level-triggered one is
  /// broadcast to the I/O APICs.
  private func endOfInterrupt() -> Effect? {
    guard let vector = inService.highest else { return nil }
    inService[vector] = false
    return triggerMode[vector] ? .endOfInterrupt(vector: vector) : nil
  }

  /// The ICR's low half was written: build the message (11.6.1). A fixed or lowest-priority
  /// IPI with a vector below 16 is not sent and sets "send illegal vector".
  private func sendInterprocessorInterrupt() -> Effect? {
    let mode = InterruptMessage.DeliveryMode(rawValue: UInt8(commandLow >> 8 & 7)) ?? .fixed
    let vector = UInt8(truncatingIfNeeded: commandLow)
    if (mode == .fixed || mode == .lowestPriority) && vector < 16 {
      raiseError(ErrorBit.sendIllegalVector)
      return nil
    }
    let message = InterruptMessage(
      vector: vector, deliveryMode: mode, logicalDestination: commandLow & 0x800 != 0,
      destination: UInt8(truncatingIfNeeded: commandHigh >> 24), levelTriggered: commandLow & 0x8000 != 0,
      assert: commandLow & 0x4000 != 0,
      shorthand: InterruptMessage.Shorthand(rawValue: UInt8(commandLow >> 18 & 3)) ?? .none, sourceAPIC: index)
    return .interprocessorInterrupt(message)
  }

  // MARK: Timer (11.5.4 "APIC Timer")

  /// Divide configuration bits 3, 1-0 (Figure 11-10): 000 by 2 ... 110 by 128, 111 by 1.
  public var timerDivisor: UInt64 {
    let code = (timerDivide >> 1 & 4) | (timerDivide & 3)
    return code == 7 ? 1 : 2 << UInt64(code)
  }

  var timerMode: UInt32 { lvtTimer >> 17 & 3 }
  var timerPeriod: UInt64 { UInt64(timerInitialCount) * timerDivisor }

  /// The current count at the last time advanced to: the initial count less the divided
  /// bus clocks since it was written; 0 once a one-shot count has run out.
  public var timerCurrentCount: UInt32 {
    guard timerInitialCount != 0, timerMode != 2 else { return 0 }
    let elapsed = now - timerStart
    let period = timerPeriod
    if timerMode == 0 && elapsed >= period { return 0 }
    return timerInitialCount - UInt32((elapsed % period) / timerDivisor)
  }

  /// Writing the initial count (re)starts the count; 0 stops the timer. Ignored in
  /// TSC-deadline mode.
  private func startTimer(initialCount: UInt32) {
    guard timerMode != 2 else { return }
    timerInitialCount = initialCount
    timerStart = now
    timerExpiry = nil
    rescheduleTimer(restart: true)
  }

  /// Recomputes the next expiry from the start, the period and the mode after a change. A
  /// count that has run out stays out until the next initial-count write (`restart`); one
  /// still running whose new, shorter period has already passed expires at once.
  func rescheduleTimer(restart: Bool = false) {
    guard timerMode != 2, restart || timerExpiry != nil else { return }
    let period = timerPeriod
    guard period != 0 else {
      timerExpiry = nil
      return
    }
    let elapsed = now - timerStart
    if timerMode == 1 {
      timerExpiry = timerStart + (elapsed / period + 1) * period
    } else {
      timerExpiry = max(now, timerStart + period)
    }
  }

  /// TSC-deadline mode (11.5.4.1): the engine turns the guest's IA32_TSC_DEADLINE write into
  /// virtual time; 0 disarms. A deadline already passed expires at the next `advance(to:)`,
  /// even to the same instant. Ignored in the other modes.
  public func setDeadline(nanoseconds: UInt64) {
    guard timerMode == 2 else { return }
    timerExpiry = nanoseconds == 0 ? nil : max(nanoseconds, now)
  }

  public func advance(to now: UInt64) {
    // The same instant again still fires an expiry that a write put at `now` (a count that
    // had already run out, a TSC deadline in the past).
    guard now >= self.now else { return }
    self.now = now
    guard let expiry = timerExpiry, expiry <= now else { return }
    // However many periods passed, the IRR holds one request.
    deliverLocal(lvtTimer & ~0x8000)
    if timerMode == 1 {
      rescheduleTimer()
    } else {
      timerExpiry = nil
    }
  }

  /// The next timer expiry. Reported even while the LVT entry is masked (the engine need
  /// not care: advancing to it delivers nothing), so unmasking needs no rescheduling.
  public var nextDeadline: UInt64? { timerExpiry }
}
