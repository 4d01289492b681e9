import Debugger
import GuestMemory
import KVM
import Machine

/// What a handler may look at and change while it handles an event on one vCPU.
///
/// Port, MMIO and MSR events arrive while the vCPU is inside the accessing instruction: their
/// handlers may read registers and read or write memory, but a register write is refused
/// (KVM would finish the instruction over it); answer `.stop` and write them then.
public final class EventContext {
  /// The vCPU the event happened on (0-based, as in `Stop.vcpu`).
  public let vcpu: Int
  let stepper: Stepper
  var insideAccess = false
  weak var session: IntrospectionSession?
  /// The stop the vCPU stands at, for instruction-boundary events: its reason says what the
  /// last instruction did (a step, the delivery of an exception, a guest request, ...), so a
  /// tracer can write it as one line. Nil during port, MMIO and MSR events.
  public internal(set) var stop: Stop?

  init(stepper: Stepper) {
    self.stepper = stepper
    vcpu = stepper.vcpu.id
  }

  /// The general registers, with EFLAGS as the guest sees it (never the host's stepping TF).
  public func registers() throws -> Registers {
    var registers = try stepper.vcpu.registers()
    registers.rflags = stepper.guestFlags(registers)
    return registers
  }

  public func setRegisters(_ registers: Registers) throws {
    if insideAccess {
      throw IntrospectionError("registers cannot be written during a port, MMIO or MSR event; answer .stop first")
    }
    try stepper.vcpu.setRegisters(registers)
    stepper.registersChanged(registers, special: nil)
  }

  /// Segment, control and descriptor-table registers, read from KVM (never a stale copy).
  public func specialRegisters() throws -> SpecialRegisters {
    try stepper.refreshSpecialRegisters()
    return stepper.specialRegisters
  }

  /// The linear PC of the instruction the vCPU will execute next (for access events: the
  /// one making the access, or the one after it, as KVM left RIP).
  public func pc() throws -> UInt64 {
    let special = try specialRegisters()
    return special.cs.base &+ (try stepper.vcpu.registers().rip)
  }

  /// Reads guest memory by virtual address, through the page tables at `cr3` (another
  /// address space) or the vCPU's own. Host breakpoints show as the bytes they replaced.
  public func readMemory(virtual address: UInt64, count: Int, cr3: UInt64? = nil) throws -> [UInt8] {
    try check(cr3)
    try stepper.refreshSpecialRegisters()
    return try stepper.readMemory(linear: address, count: count, cr3: cr3)
  }

  public func writeMemory(virtual address: UInt64, _ bytes: [UInt8], cr3: UInt64? = nil) throws {
    try check(cr3)
    try stepper.refreshSpecialRegisters()
    try stepper.writeMemory(linear: address, bytes, cr3: cr3)
  }

  /// The guest-physical address behind a virtual one, under `cr3` or the vCPU's own.
  public func translate(virtual address: UInt64, cr3: UInt64? = nil) throws -> UInt64 {
    try check(cr3)
    try stepper.refreshSpecialRegisters()
    return try stepper.walker(cr3: cr3).translate(address).value
  }

  /// A CR3 given by the caller names a page-table page; low bits set are a mistake to say,
  /// not to mask quietly (they may be a PCID copied from a live CR3, or a wrong number).
  private func check(_ cr3: UInt64?) throws {
    guard let cr3, cr3 & 0xfff != 0 else { return }
    throw IntrospectionError(
      "CR3 0x\(String(cr3, radix: 16)) is not page-aligned (bits 11:0 hold PCID or cache flags; pass cr3 & ~0xfff)")
  }

  public func readPhysical(_ address: UInt64, count: Int) throws -> [UInt8] {
    try stepper.machine.memory.read(at: GuestAddress(address), count: count)
  }

  public func writePhysical(_ address: UInt64, _ bytes: [UInt8]) throws {
    try stepper.machine.memory.write(bytes[...], at: GuestAddress(address))
    stepper.machine.hostWroteGuestMemory()
  }

  /// Subscribes from inside a handler, during a run: the new subscription counts from this
  /// vCPU's next instruction boundary, and other vCPUs running free are stopped once to pick
  /// it up. A software breakpoint is planted at once. Port, MMIO and MSR filters are refused
  /// here (their exits are arranged when the run starts): subscribe to them before `run()`.
  @discardableResult
  public func subscribe(_ filter: EventFilter, vcpus: Set<Int>? = nil, handler: @escaping EventHandler) throws
    -> IntrospectionSession.SubscriptionID
  {
    guard let session else { throw IntrospectionError("the session of this context has ended") }
    return try session.subscribe(fromHandlerOn: vcpu, filter, vcpus: vcpus, handler: handler)
  }

  /// Ends a subscription from inside a handler (a software breakpoint no other subscription
  /// uses comes out of guest memory at once).
  public func unsubscribe(_ id: IntrospectionSession.SubscriptionID) throws {
    guard let session else { throw IntrospectionError("the session of this context has ended") }
    try session.unsubscribe(fromHandlerOn: vcpu, id)
  }

  /// Reads MSRs the guest has (KVM_GET_MSRS).
  public func modelSpecificRegister(_ index: UInt32) throws -> UInt64 {
    guard let value = try stepper.vcpu.modelSpecificRegisters([index]).first else {
      throw IntrospectionError("MSR 0x\(String(index, radix: 16)) cannot be read")
    }
    return value
  }
}
