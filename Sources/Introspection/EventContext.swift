import AArch64
import Debugger
import GuestMemory
import KVM
import Machine

/// What a handler may look at and change while it handles an event on one vCPU.
///
/// Port, MMIO and MSR events arrive while the vCPU is inside the accessing instruction: their
/// handlers may read registers and read or write memory, but a register write is refused
/// (KVM would finish the instruction over it); answer `.stop` and write them then.
///
/// One context type serves both machines: memory, the PC and subscriptions work on either;
/// `registers()`, `specialRegisters()` and `modelSpecificRegister` are x86's, `aarch64State()`
/// and `systemRegister` AArch64's, and each says so when asked on the other machine.
public final class EventContext {
  /// The vCPU the event happened on (0-based, as in `Stop.vcpu`).
  public let vcpu: Int
  private let x86Stepper: Stepper?
  private let virt: VirtMachine?
  var insideAccess = false
  weak var session: (any SubscriptionOwner)?
  /// The stop the vCPU stands at, for instruction-boundary events: its reason says what the
  /// last instruction did (a step, the delivery of an exception, a guest request, ...), so a
  /// tracer can write it as one line. Nil during port, MMIO and MSR events.
  public internal(set) var stop: Stop?

  init(stepper: Stepper) {
    x86Stepper = stepper
    virt = nil
    vcpu = stepper.vcpu.id
  }

  init(virt machine: VirtMachine, cpu: Int) {
    x86Stepper = nil
    virt = machine
    vcpu = cpu
  }

  /// The x86 vCPU's stepper; on an AArch64 machine, an error naming what to use instead.
  private var stepper: Stepper {
    get throws {
      guard let x86Stepper else {
        throw IntrospectionError("x86 registers asked of an AArch64 CPU: use aarch64State() and systemRegister(_:)")
      }
      return x86Stepper
    }
  }

  /// The AArch64 CPU; on an x86 machine, an error.
  private var a64: A64CPU {
    get throws {
      guard let virt else { throw IntrospectionError("AArch64 state asked of an x86 vCPU: use registers()") }
      return virt.cpus[vcpu]
    }
  }

  /// AArch64: the CPU's whole state (X0-X30, SP, PC, PSTATE, the EL1 system registers).
  public func aarch64State() throws -> A64State { try a64.state }

  /// AArch64: replaces the CPU's state (between instructions; cached translations drop).
  public func setAArch64State(_ state: A64State) throws {
    if insideAccess {
      throw IntrospectionError("registers cannot be written during an access event; answer .stop first")
    }
    try a64.state = state
  }

  /// AArch64: a system register as an EL1 MRS reads it.
  public func systemRegister(_ name: SystemRegisterName) throws -> UInt64 {
    guard let value = try a64.systemRegister(name) else {
      throw IntrospectionError("\(name) cannot be read")
    }
    return value
  }

  /// The general registers, with EFLAGS as the guest sees it (never the host's stepping TF).
  public func registers() throws -> Registers {
    var registers = try stepper.vcpu.registers()
    registers.rflags = try stepper.guestFlags(registers)
    return registers
  }

  public func setRegisters(_ registers: Registers) throws {
    if insideAccess {
      throw IntrospectionError("registers cannot be written during a port, MMIO or MSR event; answer .stop first")
    }
    try stepper.vcpu.setRegisters(registers)
    try stepper.registersChanged(registers, special: nil)
  }

  /// Segment, control and descriptor-table registers, read from KVM (never a stale copy).
  public func specialRegisters() throws -> SpecialRegisters {
    try stepper.refreshSpecialRegisters()
    return try stepper.specialRegisters
  }

  /// The linear PC of the instruction the vCPU will execute next (for access events: the
  /// one making the access, or the one after it, as KVM left RIP).
  public func pc() throws -> UInt64 {
    if virt != nil { return try a64.pc }
    let special = try specialRegisters()
    return special.cs.base &+ (try stepper.vcpu.registers().rip)
  }

  /// Reads guest memory by virtual address, through the page tables at `cr3` (another
  /// address space) or the vCPU's own. Host breakpoints show as the bytes they replaced.
  public func readMemory(virtual address: UInt64, count: Int, cr3: UInt64? = nil) throws -> [UInt8] {
    if virt != nil {
      var bytes: [UInt8] = []
      try forEachPage(address, count: count, cr3: cr3) { physical, chunk in
        bytes += try readPhysical(physical, count: chunk)
      }
      return bytes
    }
    try check(cr3)
    try stepper.refreshSpecialRegisters()
    return try stepper.readMemory(linear: address, count: count, cr3: cr3)
  }

  public func writeMemory(virtual address: UInt64, _ bytes: [UInt8], cr3: UInt64? = nil) throws {
    if virt != nil {
      var offset = 0
      try forEachPage(address, count: bytes.count, cr3: cr3) { physical, chunk in
        try writePhysical(physical, Array(bytes[offset..<offset + chunk]))
        offset += chunk
      }
      return
    }
    try check(cr3)
    try stepper.refreshSpecialRegisters()
    try stepper.writeMemory(linear: address, bytes, cr3: cr3)
  }

  /// The guest-physical address behind a virtual one, under `cr3` or the vCPU's own.
  public func translate(virtual address: UInt64, cr3: UInt64? = nil) throws -> UInt64 {
    if virt != nil {
      guard cr3 == nil else { throw Self.noCR3 }
      guard let physical = try a64.translate(address) else {
        throw IntrospectionError("0x\(String(address, radix: 16)) does not translate (no valid stage 1 mapping)")
      }
      return physical
    }
    try check(cr3)
    try stepper.refreshSpecialRegisters()
    return try stepper.walker(cr3: cr3).translate(address).value
  }

  static let noCR3 = IntrospectionError(
    "a CR3 names an x86 address space; an AArch64 CPU translates through its own TTBR0/TTBR1_EL1")

  /// AArch64: the physical pieces of a virtual range, one page at a time, as an EL1 access
  /// translates them.
  private func forEachPage(_ address: UInt64, count: Int, cr3: UInt64?, _ body: (UInt64, Int) throws -> Void) throws {
    guard cr3 == nil else { throw Self.noCR3 }
    var cursor = address
    var left = count
    while left > 0 {
      let chunk = min(left, Int(0x1000 - (cursor & 0xfff)))
      try body(try translate(virtual: cursor), chunk)
      cursor &+= UInt64(chunk)
      left -= chunk
    }
  }

  /// A CR3 given by the caller names a page-table page; low bits set are a mistake to say,
  /// not to mask quietly (they may be a PCID copied from a live CR3, or a wrong number).
  private func check(_ cr3: UInt64?) throws {
    guard let cr3, cr3 & 0xfff != 0 else { return }
    throw IntrospectionError(
      "CR3 0x\(String(cr3, radix: 16)) is not page-aligned (bits 11:0 hold PCID or cache flags; pass cr3 & ~0xfff)")
  }

  public func readPhysical(_ address: UInt64, count: Int) throws -> [UInt8] {
    if let virt { return try virt.memory.read(at: GuestAddress(address), count: count) }
    return try stepper.machine.memory.read(at: GuestAddress(address), count: count)
  }

  public func writePhysical(_ address: UInt64, _ bytes: [UInt8]) throws {
    if let virt {
      try virt.memory.write(bytes[...], at: GuestAddress(address))
      // The CPUs may hold the old bytes decoded.
      for cpu in virt.cpus { cpu.invalidateDecodedInstructions() }
      return
    }
    try stepper.machine.memory.write(bytes[...], at: GuestAddress(address))
    try stepper.machine.hostWroteGuestMemory()
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

/// A session that takes subscriptions from handlers during its run (`EventContext.subscribe`).
protocol SubscriptionOwner: AnyObject {
  func subscribe(fromHandlerOn vcpu: Int, _ filter: EventFilter, vcpus: Set<Int>?, handler: @escaping EventHandler)
    throws -> IntrospectionSession.SubscriptionID
  func unsubscribe(fromHandlerOn vcpu: Int, _ id: IntrospectionSession.SubscriptionID) throws
}

extension IntrospectionSession: SubscriptionOwner {}
