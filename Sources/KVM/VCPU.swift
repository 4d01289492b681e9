import CKVM
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// One virtual CPU: its file descriptor and the `kvm_run` area it shares with the kernel.
///
/// A VCPU is driven from one thread at a time (KVM requires vCPU ioctls to come from the
/// thread that runs it); `kick()` is the only method that may be called from elsewhere.
@safe public final class VCPU: @unchecked Sendable {
  public let id: Int
  let fd: OwnedFileDescriptor
  let shared: UnsafeMutablePointer<kvm_run>
  let mmapSize: Int
  /// Kept so the VM (and its memory) outlives its vCPUs.
  public let vm: VirtualMachine
  /// The thread that runs this vCPU, once known, so `kick()` can signal it.
  /// (pthread_t is an integer on Linux; 0 means none yet. Atomic, as `bindToCurrentThread`
  /// runs before every step and must stay cheap.)
  private let runner = Atomic<UInt>(0)
  /// What this vCPU's state reads returned since it last ran, and the debug setting last
  /// given to KVM. A vCPU's registers change only inside KVM_RUN or through our own set
  /// calls, so while it is stopped one read serves every caller (a debugger stop reads the
  /// registers several times over), and re-sending an unchanged KVM_SET_GUEST_DEBUG is saved.
  var cache = StateCache()
  /// What KVM copies into `kvm_run` on every exit (KVM_CAP_SYNC_REGS), so a debugger reads
  /// it there instead of with an ioctl a stop; see `mirrorStateOnExit`.
  public private(set) var mirrored = MirroredState()

  init(id: Int, fd: OwnedFileDescriptor, mmapSize: Int, vm: VirtualMachine) throws(KVMError) {
    self.id = id
    self.fd = fd
    self.mmapSize = mmapSize
    self.vm = vm
    // SAFETY: the vCPU fd offers a shared kvm_run mapping of exactly mmapSize bytes.
    let area = try unsafe Syscall.mmap(
      length: mmapSize, protection: PROT_READ | PROT_WRITE, flags: MAP_SHARED, fd: fd.rawValue, name: "mmap kvm_run")
    // SAFETY: KVM guarantees the vCPU mapping starts with a struct kvm_run.
    unsafe shared = area.bindMemory(to: kvm_run.self, capacity: 1)
    VCPU.installKickHandler
  }

  deinit {
    // SAFETY: unmaps the kvm_run mapping made in init, once, when nothing can use it any more.
    unsafe Syscall.munmap(UnsafeMutableRawPointer(shared), length: mmapSize)
  }

  // MARK: Running

  /// Enters the guest until the next exit that needs user space.
  public func run() throws(KVMError) -> VCPUExit {
    cache.forgetRegisters()
    let entered = try Syscall.run(fd.rawValue)
    // SAFETY: `run` maps this vCPU's kvm_run for the lifetime of self; only this thread reads it now.
    let area = unsafe shared
    guard entered else {
      unsafe area.pointee.immediate_exit = 0
      return .interrupted
    }
    if !mirrored.isEmpty {
      // Loaded field by field from their offsets: reading `area.pointee.s.regs` would copy
      // the whole 2 KiB union first, twice an exit.
      let sync = unsafe UnsafeRawPointer(area) + VCPU.syncRegistersOffset
      // SAFETY: KVM filled the s.regs parts named in kvm_valid_regs on this exit (KVM API,
      // "kvm_run"); each is a kvm_regs / kvm_sregs at its offset in struct kvm_sync_regs.
      if mirrored.contains(.registers) {
        cache.registers = Registers(unsafe sync.loadUnaligned(fromByteOffset: VCPU.syncRegsOffset, as: kvm_regs.self))
      }
      if mirrored.contains(.specialRegisters) {
        cache.special = SpecialRegisters(
          unsafe sync.loadUnaligned(fromByteOffset: VCPU.syncSregsOffset, as: kvm_sregs.self))
      }
    }
    switch Int32(unsafe area.pointee.exit_reason) {
    case KVM_EXIT_IO:
      let io = unsafe area.pointee.io
      let size = Int(io.size)
      let count = Int(io.count)
      return io.direction == UInt8(KVM_EXIT_IO_OUT)
        ? .portOut(port: io.port, size: size, count: count) : .portIn(port: io.port, size: size, count: count)
    case KVM_EXIT_MMIO:
      let mmio = unsafe area.pointee.mmio
      let size = Int(mmio.len)
      if mmio.is_write == 0 { return .mmioRead(address: mmio.phys_addr, size: size) }
      var value: UInt64 = 0
      unsafe withUnsafeBytes(of: mmio.data) { bytes in
        for index in 0..<min(size, 8) { value |= unsafe UInt64(bytes[index]) << (8 * index) }
      }
      return .mmioWrite(address: mmio.phys_addr, size: size, value: value)
    case KVM_EXIT_HLT:
      return .halt
    case KVM_EXIT_SHUTDOWN:
      return .shutdown
    case KVM_EXIT_DEBUG:
      let arch = unsafe area.pointee.debug.arch
      return .debug(DebugExit(exception: arch.exception, pc: arch.pc, dr6: arch.dr6, dr7: arch.dr7))
    case KVM_EXIT_INTR:
      return .interrupted
    case KVM_EXIT_FAIL_ENTRY:
      return .failedEntry(reason: unsafe area.pointee.fail_entry.hardware_entry_failure_reason)
    case KVM_EXIT_INTERNAL_ERROR:
      let info = unsafe area.pointee.internal
      let count = min(Int(info.ndata), 16)
      let data = unsafe withUnsafeBytes(of: info.data) { bytes in
        (0..<count).map { unsafe bytes.load(fromByteOffset: $0 * 8, as: UInt64.self) }
      }
      return .internalError(suberror: info.suberror, data: data)
    case KVM_EXIT_X86_RDMSR:
      return .msrRead(index: unsafe area.pointee.msr.index)
    case KVM_EXIT_X86_WRMSR:
      return .msrWrite(index: unsafe area.pointee.msr.index, value: unsafe area.pointee.msr.data)
    case KVM_EXIT_SYSTEM_EVENT:
      return .systemEvent(type: unsafe area.pointee.system_event.type)
    default:
      return .other(reason: unsafe area.pointee.exit_reason)
    }
  }

  /// The `index`th value of the current OUT/OUTS exit.
  @inline(__always)
  public func ioValue(at index: Int) -> UInt32 {
    // SAFETY: only called while a port I/O exit is current; KVM placed count*size bytes at data_offset.
    let io = unsafe shared.pointee.io
    let base = unsafe UnsafeRawPointer(shared) + Int(io.data_offset) + index * Int(io.size)
    switch io.size {
    case 1: return UInt32(unsafe base.load(as: UInt8.self))
    case 2: return UInt32(unsafe base.loadUnaligned(as: UInt16.self))
    default: return unsafe base.loadUnaligned(as: UInt32.self)
    }
  }

  /// Supplies the `index`th value for the current IN/INS exit.
  @inline(__always)
  public func setIOValue(_ value: UInt32, at index: Int) {
    // SAFETY: only called while a port I/O exit is current; KVM reads count*size bytes from data_offset.
    let io = unsafe shared.pointee.io
    let base = unsafe UnsafeMutableRawPointer(shared) + Int(io.data_offset) + index * Int(io.size)
    switch io.size {
    case 1: unsafe base.storeBytes(of: UInt8(truncatingIfNeeded: value), as: UInt8.self)
    case 2: unsafe base.storeBytes(of: UInt16(truncatingIfNeeded: value), toByteOffset: 0, as: UInt16.self)
    default: unsafe base.storeBytes(of: value, toByteOffset: 0, as: UInt32.self)
    }
  }

  /// Supplies the value of the current MMIO read exit.
  public func setMMIOReadValue(_ value: UInt64) {
    // SAFETY: kvm_run.mmio.data is 8 bytes in the mapping this vCPU owns.
    unsafe withUnsafeMutableBytes(of: &shared.pointee.mmio.data) { bytes in
      for index in 0..<8 { unsafe bytes[index] = UInt8(truncatingIfNeeded: value >> (8 * index)) }
    }
  }

  /// Where `kvm_run.s.regs` (a struct kvm_sync_regs) begins, and its members within it.
  static let syncRegistersOffset = MemoryLayout<kvm_run>.offset(of: \kvm_run.s)!
  static let syncRegsOffset = MemoryLayout<kvm_sync_regs>.offset(of: \kvm_sync_regs.regs)!
  static let syncSregsOffset = MemoryLayout<kvm_sync_regs>.offset(of: \kvm_sync_regs.sregs)!

  /// Asks KVM to copy these parts of the vCPU's state into `kvm_run` on every exit from now
  /// on: worth it where nearly every exit is followed by reading them (stepping, events), a
  /// waste where few are (a guest running free). Returns false, changing nothing, on a host
  /// whose KVM_CAP_SYNC_REGS lacks any of them.
  @discardableResult
  public func mirrorStateOnExit(_ parts: MirroredState) -> Bool {
    guard UInt64(vm.hypervisor.check(.syncRegisters)) & parts.rawValue == parts.rawValue else { return false }
    // SAFETY: kvm_valid_regs is a field of this vCPU's kvm_run, written by its own thread.
    unsafe shared.pointee.kvm_valid_regs = parts.rawValue
    mirrored = parts
    return true
  }

  // MARK: Kicking

  /// Records the calling thread as the one that runs this vCPU, so `kick()` can reach it.
  /// Also unblocks the kick signal here: threads made by libdispatch, or by threads that
  /// were, start with every signal blocked, and a blocked kick would never interrupt KVM_RUN.
  public func bindToCurrentThread() {
    let me = pthread_self()
    if runner.load(ordering: .acquiring) == me { return }
    var kickOnly = sigset_t()
    // SAFETY: a local sigset_t, changed only through the libc calls made for it.
    unsafe sigemptyset(&kickOnly)
    unsafe sigaddset(&kickOnly, VCPU.kickSignal)
    unsafe pthread_sigmask(SIG_UNBLOCK, &kickOnly, nil)
    runner.store(me, ordering: .releasing)
  }

  /// Makes the current or next KVM_RUN of this vCPU return `.interrupted`. Safe from any thread.
  public func kick() {
    // SAFETY: immediate_exit is a byte the kernel reads on entry; a racing store is benign.
    unsafe shared.pointee.immediate_exit = 1
    let thread = runner.load(ordering: .acquiring)
    if thread != 0 { _ = pthread_kill(thread, VCPU.kickSignal) }
  }

  /// The signal used to knock a vCPU thread out of KVM_RUN. Its handler does nothing: the
  /// point is the EINTR it causes.
  public static let kickSignal = SIGUSR1

  private static let installKickHandler: Void = {
    var action = sigaction()
    // SAFETY: installs a handler that touches no state, once per process (a lazy static).
    unsafe action.__sigaction_handler.sa_handler = { _ in }
    unsafe sigemptyset(&action.sa_mask)
    action.sa_flags = 0  // no SA_RESTART: the interruption is the message
    unsafe sigaction(kickSignal, &action, nil)
  }()

  // MARK: Registers

  public func registers() throws(KVMError) -> Registers {
    if let known = cache.registers { return known }
    var raw = kvm_regs()
    try ioctl(CKVM_GET_REGS, &raw, "KVM_GET_REGS")
    let registers = Registers(raw)
    cache.registers = registers
    return registers
  }

  public func setRegisters(_ registers: Registers) throws(KVMError) {
    // Read back on next use rather than cached as written: KVM normalises some bits (RFLAGS
    // bit 1, for one).
    cache.registers = nil
    var raw = registers.raw
    try ioctl(CKVM_SET_REGS, &raw, "KVM_SET_REGS")
  }

  public func specialRegisters() throws(KVMError) -> SpecialRegisters {
    if let known = cache.special { return known }
    var raw = kvm_sregs()
    try ioctl(CKVM_GET_SREGS, &raw, "KVM_GET_SREGS")
    let special = SpecialRegisters(raw)
    cache.special = special
    return special
  }

  public func setSpecialRegisters(_ registers: SpecialRegisters) throws(KVMError) {
    cache.special = nil
    var raw = registers.raw
    try ioctl(CKVM_SET_SREGS, &raw, "KVM_SET_SREGS")
  }

  /// Sets the CPUID leaves the guest sees (KVM_SET_CPUID2).
  public func setCPUID(_ entries: [CPUIDEntry]) throws(KVMError) {
    let size = MemoryLayout<kvm_cpuid2>.size + entries.count * MemoryLayout<kvm_cpuid_entry2>.stride
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
    // SAFETY: the buffer is allocated just above and freed when this scope ends.
    defer { unsafe buffer.deallocate() }
    // SAFETY: the buffer holds a kvm_cpuid2 header followed by `entries.count` entries.
    let header = unsafe buffer.bindMemory(to: kvm_cpuid2.self, capacity: 1)
    unsafe header.pointee.nent = UInt32(entries.count)
    unsafe header.pointee.padding = 0
    let slots = unsafe (buffer + MemoryLayout<kvm_cpuid2>.size).bindMemory(
      to: kvm_cpuid_entry2.self, capacity: entries.count)
    for (index, entry) in entries.enumerated() { unsafe slots[index] = entry.raw }
    _ = try unsafe Syscall.ioctl(fd.rawValue, CKVM_SET_CPUID2, buffer, "KVM_SET_CPUID2")
  }

  /// Reads model-specific registers by index; the result is in the same order.
  public func modelSpecificRegisters(_ indices: [UInt32]) throws(KVMError) -> [UInt64] {
    // SAFETY: withMSRBuffer hands over a kvm_msrs header with room for every requested entry.
    try unsafe withMSRBuffer(indices.map { ($0, 0) }) { header throws(KVMError) in
      let read = try unsafe Syscall.ioctl(fd.rawValue, CKVM_GET_MSRS, UnsafeMutableRawPointer(header), "KVM_GET_MSRS")
      guard read == indices.count else {
        throw KVMError(errno: EINVAL, operation: "KVM_GET_MSRS (read \(read) of \(indices.count))")
      }
      // SAFETY: KVM filled `indices.count` entries after the header.
      let entries = unsafe UnsafeMutableRawPointer(header + 1).bindMemory(
        to: kvm_msr_entry.self, capacity: indices.count)
      return (0..<indices.count).map { unsafe entries[$0].data }
    }
  }

  public func setModelSpecificRegisters(_ values: [(index: UInt32, value: UInt64)]) throws(KVMError) {
    cache.special = nil  // EFER and the APIC base are special registers too
    // SAFETY: withMSRBuffer hands over a kvm_msrs header with room for every entry to write.
    try unsafe withMSRBuffer(values.map { ($0.index, $0.value) }) { header throws(KVMError) in
      let written = try unsafe Syscall.ioctl(
        fd.rawValue, CKVM_SET_MSRS, UnsafeMutableRawPointer(header), "KVM_SET_MSRS")
      guard written == values.count else {
        let failed = values[Int(written)].index
        throw KVMError(errno: EINVAL, operation: "KVM_SET_MSRS (MSR 0x\(String(failed, radix: 16)) refused)")
      }
    }
  }

  private func withMSRBuffer<Result>(
    _ entries: [(UInt32, UInt64)], _ body: (UnsafeMutablePointer<kvm_msrs>) throws(KVMError) -> Result
  ) throws(KVMError) -> Result {
    let size = MemoryLayout<kvm_msrs>.size + entries.count * MemoryLayout<kvm_msr_entry>.stride
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
    // SAFETY: the buffer is allocated just above, zeroed in full, and freed when this scope ends.
    defer { unsafe buffer.deallocate() }
    unsafe buffer.initializeMemory(as: UInt8.self, repeating: 0, count: size)
    // SAFETY: the buffer holds a kvm_msrs header followed by `entries.count` kvm_msr_entry slots.
    let header = unsafe buffer.bindMemory(to: kvm_msrs.self, capacity: 1)
    unsafe header.pointee.nmsrs = UInt32(entries.count)
    let slots = unsafe (buffer + MemoryLayout<kvm_msrs>.size).bindMemory(
      to: kvm_msr_entry.self, capacity: entries.count)
    for (offset, entry) in entries.enumerated() {
      unsafe slots[offset].index = entry.0
      unsafe slots[offset].data = entry.1
    }
    return try unsafe body(header)
  }

  @inline(__always)
  private func ioctl<T>(_ request: UInt, _ value: inout T, _ name: StaticString) throws(KVMError) {
    try Syscall.ioctl(fd.rawValue, request, on: &value, name)
  }
}

/// A vCPU's multiprocessing state (KVM_GET_MP_STATE), as the local APIC sees it.
public enum MPState: Sendable, Equatable {
  case runnable
  /// An application processor waiting for INIT/SIPI.
  case uninitialized
  case initReceived
  /// Halted in the kernel (HLT with an in-kernel local APIC).
  case halted
  case sipiReceived
  case other(UInt32)
}

extension VCPU {
  /// Puts the vCPU into a multiprocessing state; `.halted` makes it wait in the kernel for
  /// an interrupt, as after HLT (needs the in-kernel local APIC).
  public func setMultiprocessingState(_ state: MPState) throws(KVMError) {
    var raw = kvm_mp_state()
    switch state {
    case .runnable: raw.mp_state = UInt32(KVM_MP_STATE_RUNNABLE)
    case .uninitialized: raw.mp_state = UInt32(KVM_MP_STATE_UNINITIALIZED)
    case .initReceived: raw.mp_state = UInt32(KVM_MP_STATE_INIT_RECEIVED)
    case .halted: raw.mp_state = UInt32(KVM_MP_STATE_HALTED)
    case .sipiReceived: raw.mp_state = UInt32(KVM_MP_STATE_SIPI_RECEIVED)
    case .other(let value): raw.mp_state = value
    }
    cache.forgetRegisters()
    try Syscall.ioctl(fd.rawValue, CKVM_SET_MP_STATE, on: &raw, "KVM_SET_MP_STATE")
  }

  /// The multiprocessing state, after KVM has acted on any INIT or start-up IPI pending for
  /// the vCPU (KVM_GET_MP_STATE does that first, resetting the registers or loading CS:IP):
  /// with `freshRegisters` the registers are read again afterwards rather than from the cache.
  public func multiprocessingState(freshRegisters: Bool) throws(KVMError) -> MPState {
    defer { if freshRegisters { cache.forgetRegisters() } }
    return try multiprocessingState()
  }

  public func multiprocessingState() throws(KVMError) -> MPState {
    var raw = kvm_mp_state()
    try Syscall.ioctl(fd.rawValue, CKVM_GET_MP_STATE, on: &raw, "KVM_GET_MP_STATE")
    switch Int32(raw.mp_state) {
    case KVM_MP_STATE_RUNNABLE: return .runnable
    case KVM_MP_STATE_UNINITIALIZED: return .uninitialized
    case KVM_MP_STATE_INIT_RECEIVED: return .initReceived
    case KVM_MP_STATE_HALTED: return .halted
    case KVM_MP_STATE_SIPI_RECEIVED: return .sipiReceived
    default: return .other(raw.mp_state)
    }
  }
}

/// Register state read from KVM while a vCPU is stopped, and the debug setting it was last
/// given; see `VCPU.cache`.
struct StateCache {
  var registers: Registers?
  var special: SpecialRegisters?
  var guestDebug: GuestDebug?

  /// After anything that may change the vCPU's registers behind our back (running it,
  /// changing its multiprocessing state or pending events).
  mutating func forgetRegisters() {
    registers = nil
    special = nil
  }
}

/// The parts of a vCPU's state KVM can copy into `kvm_run` on each exit (KVM_SYNC_X86_*).
public struct MirroredState: OptionSet, Sendable {
  public let rawValue: UInt64
  public init(rawValue: UInt64) { self.rawValue = rawValue }
  /// The general-purpose registers, RIP and RFLAGS (what KVM_GET_REGS reads).
  public static let registers = MirroredState(rawValue: UInt64(KVM_SYNC_X86_REGS))
  /// Segments, control registers, EFER (what KVM_GET_SREGS reads).
  public static let specialRegisters = MirroredState(rawValue: UInt64(KVM_SYNC_X86_SREGS))
}
