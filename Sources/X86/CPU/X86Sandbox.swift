import GuestMemory

/// A ready-made 64-bit environment for running single instructions: the setup a
/// differential tester (or a unit test) needs, in one call.
///
/// Memory layout (all identity-mapped, linear = physical):
/// - `pageTableBase` (0x1000): PML4, then PDPT (0x2000), then one page directory (0x3000)
///   mapping the first GiB with 2 MiB pages, present, writable, user, A and D already set
///   (so running code never changes the tables);
/// - code and data anywhere else in the first GiB below `memorySize`.
///
/// The CPU starts in 64-bit mode at CPL 0 (CR0.PE/PG/WP, CR4.PAE/OSFXSR/OSXMMEXCPT, EFER.LME/LMA/NXE, flat
/// CS/SS/DS/ES/FS/GS), RFLAGS = 2, all GPRs 0. Typical use:
///
/// ```swift
/// let sandbox = try X86Sandbox()
/// try sandbox.load(code: [0x48, 0x01, 0xd8], at: 0x10_0000)   // add rax, rbx
/// sandbox.cpu.state.rip = 0x10_0000
/// sandbox.cpu.state[.rax] = 1; sandbox.cpu.state[.rbx] = 2
/// let result = sandbox.cpu.step()                          // .retired, or .exception(...)
/// let rax = sandbox.cpu.state[.rax], flags = sandbox.cpu.state.rflags
/// let bytes = try sandbox.read(at: 0x20_0000, count: 8)   // a data window
/// ```
public final class X86Sandbox {
  public static let pageTableBase: UInt64 = 0x1000
  public let memory: GuestRAM
  public let cpu: X86CPU

  /// - Parameter memorySize: guest RAM from physical 0 (at most 1 GiB is mapped).
  public init(memorySize: UInt64 = 16 << 20, bus: any X86IOBus = UnmappedIOBus()) throws(MemoryError) {
    memory = try GuestRAM([MemoryRegionSpec(start: 0, size: memorySize)])
    let pml4 = X86Sandbox.pageTableBase
    let pdpt = pml4 + 0x1000
    let directory = pml4 + 0x2000
    // present | writable | user | accessed (| dirty | page size for the 2 MiB leaves)
    try memory.store(pdpt | 0x27, at: GuestAddress(pml4))
    try memory.store(directory | 0x27, at: GuestAddress(pdpt))
    for index in 0..<UInt64(512) {
      try memory.store(index << 21 | 0xe7, at: GuestAddress(directory + index * 8))
    }
    cpu = X86CPU(memory: memory, bus: bus)
    cpu.state = X86Sandbox.longModeState(cr3: pml4)
  }

  /// The 64-bit, CPL-0, paging-on state described above, with CR3 given.
  public static func longModeState(cr3: UInt64) -> X86State {
    var state = X86State()
    state.cr0 = ControlBit.cr0PE | ControlBit.cr0PG | ControlBit.cr0WP | 0x10
    // OSFXSR and OSXMMEXCPT, as an SSE-using OS sets them: SSE is usable, #XM is delivered.
    state.cr4 = ControlBit.cr4PAE | 1 << 9 | 1 << 10
    state.cr3 = cr3
    state.efer = ControlBit.eferLME | ControlBit.eferLMA | ControlBit.eferNXE | ControlBit.eferSCE
    state[.cs] = .flatCode64()
    for segment in [SegmentName.ss, .ds, .es, .fs, .gs] { state[segment] = .flatData() }
    state.rflags = RFlagsBit.reserved1
    return state
  }

  /// Writes code (or any bytes) into guest RAM and drops decoded instructions that may be stale.
  public func load(code bytes: [UInt8], at address: UInt64) throws(MemoryError) {
    try memory.write(bytes, at: GuestAddress(address))
    cpu.invalidateDecodedInstructions()
  }

  public func read(at address: UInt64, count: Int) throws(MemoryError) -> [UInt8] {
    try memory.read(at: GuestAddress(address), count: count)
  }

  public func write(_ bytes: [UInt8], at address: UInt64) throws(MemoryError) {
    try memory.write(bytes, at: GuestAddress(address))
    cpu.invalidateDecodedInstructions()
  }
}
