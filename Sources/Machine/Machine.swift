import Devices
import GuestMemory
import KVM
import Synchronization
import X86

/// A built virtual machine: guest RAM with the kernel loaded, devices, and vCPUs in their
/// boot state on one engine (KVM or the interpreter). `run()` starts it.
public final class Machine: @unchecked Sendable {
  // @unchecked: the bus and devices are only touched under `busLock`; each vCPU is driven by
  // one thread; shared run state lives in `runState`.
  public let configuration: MachineConfiguration
  public let image: BootImage
  public let memory: GuestRAM
  /// The engine every vCPU of this machine runs on.
  public let engine: EngineKind
  /// The KVM VM (nil on the interpreter).
  public let vm: VirtualMachine?
  /// The vCPUs, engine-neutral: what the debugger, the event API and the GDB server use.
  public let cpus: [any VirtualCPU]
  /// The same vCPUs when KVM runs them (empty otherwise), for KVM-specific code.
  public let kvmVCPUs: [VCPU]
  /// The same vCPUs when the interpreter runs them (empty otherwise).
  public let interpreterVCPUs: [InterpreterVCPU]
  /// The interrupt controllers, timers and clock an interpreter machine has in user space.
  let interpreterPlatform: InterpreterPlatform?
  public let bus = IOBus()
  public let serial: Serial8250
  let console: any ConsoleSink
  let busLock = Mutex(0)
  /// With more than one vCPU the in-kernel local APICs are needed so that application
  /// processors wait for INIT/SIPI as on a PC.
  public let hasInterruptController: Bool
  let runState: Mutex<RunState>
  /// The serial console's input, when the CLI attaches one.
  public let consoleInput = ConsoleInput()
  /// Who sees chosen accesses before they are carried out (the event API); nil: nobody.
  let accessWatcher = Mutex<(any AccessWatcher)?>(nil)
  /// Addresses of instructions the interpreter did not know, already reported.
  let unknownInstructions = Mutex<Set<UInt64>>([])
  /// Guest-physical pages KVM sees read-only or absent, so that accesses to them leave KVM
  /// (WriteProtection.swift); empty: none.
  let writeProtection = Mutex(MemoryProtection())
  /// What that protection is made of: the debugger's watches, the guest's own data breakpoints.
  let protectionParts = Mutex((debugger: MemoryProtection(), guest: MemoryProtection()))
  /// Whether the guest's data breakpoints are served where the host delivers none (the
  /// default; off only to measure what following them costs: Benchmarks/events.sh).
  public let followsGuestDebugRegisters = Atomic<Bool>(true)
  /// The guest's data breakpoints Hyperstep serves (GuestDataBreakpoints.swift), per vCPU id.
  let guestDataBreakpoints = Mutex<[Int: GuestDataBreakpoints]>([:])
  /// The accesses to those pages carried out for each vCPU (by id), not yet taken.
  let protectedAccesses = Mutex<[Int: [ProtectedAccess]]>([:])
  /// The host's KVM has read-only memory slots (KVM_CAP_READONLY_MEM).
  public let hasReadOnlySlots: Bool
  /// The interpreter twins of KVM vCPUs, made when a vCPU first moves to the interpreter
  /// (EngineSwitch.swift) or first needs an instruction completed (KVMAssist.swift).
  let interpreterTwins = Mutex<[Int: InterpreterVCPU]>([:])
  /// On a KVM machine with in-kernel interrupt controllers: Hyperstep's models of those chips,
  /// which hold their state while the vCPUs run on the interpreter (EngineSwitch.swift), on
  /// a virtual time of their own; nil otherwise.
  let kernelChipModels: InterpreterPlatform?
  /// Where the in-kernel chips' state is: with KVM, or in `kernelChipModels` with the vCPUs
  /// moved to the interpreter.
  let carriedKernelChips = Mutex(CarriedKernelChips())
  /// The interpreters that complete instructions KVM cannot, per vCPU id (KVMAssist.swift).
  let kvmAssists = Mutex<[Int: KVMAssist]>([:])
  /// MSRs whose guest writes are trapped (`trapMSRWrites`).
  let trappedMSRs = Mutex<Set<UInt32>>([])

  struct RunState {
    var outcome: RunOutcome?
    /// Tick number at which each vCPU last reported itself halted with interrupts off.
    var quiescentTick: [Int]
    var tick = 0
  }

  /// Validates the configuration and image, then builds the VM. Bad input is reported
  /// before /dev/kvm is touched.
  public init(configuration: MachineConfiguration, console: any ConsoleSink = StandardOutputConsole())
    throws(MachineError)
  {
    self.configuration = configuration
    self.console = console
    try Self.validate(configuration)
    let image: BootImage
    do {
      image = try BootImage.parse(
        configuration.kernel, format: configuration.format, loadAddress: configuration.loadAddress,
        linuxDecompressor: configuration.linuxDecompressor)
    } catch {
      throw .badImage(file: configuration.kernelName, error)
    }
    self.image = image
    let ram = BootLayout.ramRegions(memorySize: configuration.memorySize)
    if let linux = image.linux, linux.loadAddress + linux.initSize > ram[0].start + ram[0].size {
      // The kernel uses init_size bytes from its load address before it looks at the memory map.
      let needed = (linux.loadAddress + linux.initSize + (1 << 20) - 1) >> 20
      throw .badConfiguration(
        "the Linux kernel needs more than \(needed) MiB of memory (its init_size from its load address at \(linux.loadAddress >> 20) MiB), and --memory gives \(describeSize(configuration.memorySize))"
      )
    }
    do {
      try image.checkPlacement(ram: ram, commandLineLength: configuration.commandLine.utf8.count)
    } catch {
      throw .badImage(file: configuration.kernelName, error)
    }

    // The engine: KVM when asked for, or (auto) when /dev/kvm can be used; else the interpreter.
    var hypervisor: Hypervisor?
    switch configuration.accelerator {
    case .kvm:
      do {
        hypervisor = try Hypervisor()
      } catch {
        throw .host("cannot use KVM: \(error) (--accel emu runs the guest on Hyperstep's own CPU)")
      }
    case .auto:
      hypervisor = try? Hypervisor()  // no usable KVM: the interpreter, as documented
    case .emu:
      hypervisor = nil
    }
    engine = hypervisor == nil ? .interpreter : .kvm
    if let hypervisor {
      let maximumVCPUs = hypervisor.maximumVCPUs
      guard configuration.cpuCount <= maximumVCPUs else {
        throw .badConfiguration(
          "--cpus \(configuration.cpuCount) is more than this host's KVM supports (\(maximumVCPUs))")
      }
    }
    // Linux needs the local APIC and the PIT for its timers even on one vCPU. The interpreter
    // has no interrupt controllers yet: its machines have none.
    hasInterruptController =
      hypervisor != nil && (configuration.interruptController ?? (configuration.cpuCount > 1 || image.linux != nil))
    runState = Mutex(RunState(quiescentTick: Array(repeating: -1, count: configuration.cpuCount)))
    // A Linux kernel's panic ends the run at its closing line (KernelPanicWatch.swift).
    let panicWatch = image.linux != nil ? KernelPanicWatch() : nil
    serial = Serial8250(output: { byte in
      console.write(byte)
      panicWatch?.note(byte)
    })

    hasReadOnlySlots = hypervisor.map { $0.check(.readOnlyMemory) != 0 } ?? false
    do {
      var specs = ram.map { MemoryRegionSpec(start: GuestAddress($0.start), size: $0.size) }
      if hasReadOnlySlots || hypervisor == nil {
        specs.append(MemoryRegionSpec(start: GuestAddress(BootLayout.rom), size: BootLayout.romSize, readOnly: true))
      }
      memory = try GuestRAM(specs)
      if specs.last?.readOnly == true {
        try memory.fill(at: GuestAddress(BootLayout.rom), count: Int(BootLayout.romSize), with: 0xf4)  // HLT
      }
    } catch {
      throw .host(error.description)
    }

    interpreterPlatform =
      hypervisor == nil
      ? InterpreterPlatform(
        cpuCount: configuration.cpuCount, memorySize: configuration.memorySize, clockStart: configuration.clockStart)
      : nil
    kernelChipModels =
      hasInterruptController
      ? InterpreterPlatform(
        cpuCount: configuration.cpuCount, memorySize: configuration.memorySize, clockStart: configuration.clockStart)
      : nil
    // A timer count carried in mid-period started before the moment it is carried: the
    // models' clock starts late enough (2^40 ns) for the longest APIC period (2^39 ns).
    kernelChipModels?.advance(to: 1 << 40)
    if let hypervisor {
      do {
        let vm = try hypervisor.makeVirtualMachine()
        try vm.setTSSAddress(BootLayout.tss)
        try vm.setIdentityMapAddress(BootLayout.identityMap)
        if hasInterruptController {
          try vm.createInterruptController()
          try vm.createPIT()
        }
        try memory.register(with: vm)
        let cpuid = try hypervisor.supportedCPUID()
        var vcpus: [VCPU] = []
        for id in 0..<configuration.cpuCount {
          let vcpu = try vm.makeVCPU(id: id)
          try vcpu.setCPUID(CPUIDTable.forVCPU(id, supported: cpuid))
          vcpus.append(vcpu)
        }
        self.vm = vm
        kvmVCPUs = vcpus
        interpreterVCPUs = []
        cpus = vcpus
      } catch {
        throw .host("cannot create the virtual machine: \(error)")
      }
    } else {
      vm = nil
      kvmVCPUs = []
      // The buses need the machine (for its lock and watcher), so they are attached below.
      let guestRAM = memory
      let vcpus = (0..<configuration.cpuCount).map { InterpreterVCPU(id: $0, memory: guestRAM) }
      interpreterVCPUs = vcpus
      cpus = vcpus
    }
    for vcpu in interpreterVCPUs {
      // Every interpreter machine has the platform (set above whenever there is no KVM).
      vcpu.attach(InterpreterBus(machine: self, vcpu: vcpu, platform: interpreterPlatform!))
      vcpu.cpu.localAPICID = UInt8(truncatingIfNeeded: vcpu.id)  // the platform's APIC IDs are the vCPU indices
    }

    do {
      try bus.register(serial, ports: Serial8250.com1Base...Serial8250.com1Base + 7)
      try bus.register(DebugExitPort(), ports: DebugExitPort.defaultPort...DebugExitPort.defaultPort)
      try bus.register(ControlPort(), ports: ControlPort.port...ControlPort.port + 3)
      if image.linux != nil {
        // The fixed hardware the ACPI tables describe (ACPITables.swift).
        try bus.register(ACPIPowerManagement(), ports: ACPIPowerManagement.ports)
        try bus.register(ResetControlRegister(), ports: ResetControlRegister.port...ResetControlRegister.port)
      }
      if let interpreterPlatform {
        try interpreterPlatform.chips.register(on: bus)
        interpreterPlatform.chips.attach(serial: serial, irq: 4)
      }
    } catch {
      throw .host(error.description)
    }

    panicWatch?.onPanic = { [weak self] reason in
      self?.console.flush()
      self?.finish(.kernelPanic(reason: reason))
    }

    do {
      try load(image)
      try BootState.apply(
        image.entry, multibootInfo: multibootInfoAddress, linux: image.linux != nil, to: cpus[0], memory: memory)
    } catch let error as MachineError {
      throw error
    } catch {
      throw .host("cannot prepare the boot state: \(error)")
    }
  }

  private var multibootInfoAddress: UInt64? {
    image.multiboot ? BootLayout.multibootInfo : nil
  }

  // MARK: Validation

  static func validate(_ configuration: MachineConfiguration) throws(MachineError) {
    let size = configuration.memorySize
    guard size >= MachineConfiguration.minimumMemory else {
      throw .badConfiguration("memory size \(describeSize(size)) is too small; Hyperstep needs at least 2 MiB")
    }
    guard size % 4096 == 0 else {
      throw .badConfiguration("memory size \(size) bytes is not a whole number of 4 KiB pages")
    }
    let host = HostIO.physicalMemory
    guard size <= host else {
      throw .badConfiguration("memory size \(describeSize(size)) is more than this host has (\(describeSize(host)))")
    }
    guard configuration.cpuCount >= 1 else {
      throw .badConfiguration("--cpus must be at least 1, got \(configuration.cpuCount)")
    }
    guard configuration.cpuCount <= MachineConfiguration.maximumCPUs else {
      throw .badConfiguration(
        "--cpus \(configuration.cpuCount) is more than the \(MachineConfiguration.maximumCPUs) vCPUs an xAPIC machine can address"
      )
    }
    if let timeout = configuration.timeoutMilliseconds, timeout <= 0 {
      throw .badConfiguration("the timeout must be positive")
    }
    if let initrd = configuration.initrd, !InitrdFormat.isRecognized(initrd) {
      let head = initrd.prefix(4).map { String($0, radix: 16) }.joined(separator: " ")
      throw .badConfiguration(
        "the initrd \(configuration.initrdName ?? "") is not a cpio archive (newc) nor one compressed with gzip, XZ, zstd, bzip2, LZMA, LZO or LZ4 (first bytes: \(initrd.isEmpty ? "none, it is empty" : head))"
      )
    }
  }

  // MARK: Loading

  private func load(_ image: BootImage) throws {
    for chunk in image.chunks {
      try memory.write(chunk.bytes, at: GuestAddress(chunk.address))
      let bss = chunk.memorySize - UInt64(chunk.bytes.count)
      if bss > 0 {
        try memory.fill(at: GuestAddress(chunk.address + UInt64(chunk.bytes.count)), count: Int(bss), with: 0)
      }
    }
    if case .real = image.entry { return }
    let gdt = image.linux != nil ? Descriptors.linuxGDTEntries : Descriptors.gdtEntries
    try memory.write(
      gdt.flatMap { entry in (0..<8).map { UInt8(truncatingIfNeeded: entry >> (8 * $0)) } },
      at: GuestAddress(BootLayout.gdt))
    if let linux = image.linux {
      try memory.write(Array(configuration.commandLine.utf8) + [0], at: GuestAddress(BootLayout.commandLine))
      var initrd: (UInt64, UInt64)?
      if let bytes = configuration.initrd {
        let address = try Self.initrdAddress(
          size: UInt64(bytes.count), kernel: linux, image: image, memorySize: configuration.memorySize)
        try memory.write(bytes, at: GuestAddress(address))
        initrd = (address, UInt64(bytes.count))
      }
      try LinuxBootParams.write(
        into: memory, at: BootLayout.zeroPage, kernel: linux, commandLine: BootLayout.commandLine, initrd: initrd,
        memoryMap: MemoryMapEntry.entries(for: BootLayout.ramRegions(memorySize: configuration.memorySize)))
      try ACPITables.write(into: memory, cpuCount: configuration.cpuCount)
      try memory.store(
        ACPITables.rsdp, at: GuestAddress(BootLayout.zeroPage + UInt64(ACPITables.zeroPageRSDP)))
    }
    if image.multiboot {
      try memory.write(Array(configuration.commandLine.utf8) + [0], at: GuestAddress(BootLayout.commandLine))
      _ = try MultibootInfo.write(
        into: memory, at: BootLayout.multibootInfo,
        ramRegions: BootLayout.ramRegions(memorySize: configuration.memorySize),
        commandLine: BootLayout.commandLine)
    }
  }
}

extension Machine {
  /// Where the initrd goes: as high as the kernel allows in the RAM below the 3 GiB hole,
  /// page-aligned, above the kernel's whole init_size.
  static func initrdAddress(size: UInt64, kernel: LinuxKernel, image: BootImage, memorySize: UInt64)
    throws(MachineError)
    -> UInt64
  {
    let lowEnd = BootLayout.ramRegions(memorySize: memorySize)[0].size
    let ceiling = min(lowEnd, kernel.initrdAddressMaximum + 1)
    // The kernel may use init_size bytes from its load address before it reserves memory.
    let kernelEnd = max(
      image.chunks.map { $0.address + $0.memorySize }.max() ?? 0, kernel.loadAddress + kernel.initSize)
    guard size <= ceiling, (ceiling - size) & ~0xfff >= kernelEnd else {
      throw .badConfiguration(
        "the initrd (\(describeSize(size))) does not fit in guest memory above the kernel; raise --memory (now \(describeSize(memorySize)))"
      )
    }
    return (ceiling - size) & ~0xfff
  }
}

/// "64 MiB", "1.5 GiB", "4097 bytes": a size as messages show it (the CLI's too).
public func describeSize(_ bytes: UInt64) -> String {
  if bytes >= 1 << 30 && bytes % (1 << 30) == 0 { return "\(bytes >> 30) GiB" }
  if bytes >= 1 << 30 {
    let tenths = (bytes * 10) >> 30
    return "\(tenths / 10).\(tenths % 10) GiB"
  }
  if bytes >= 1 << 20 && bytes % (1 << 20) == 0 { return "\(bytes >> 20) MiB" }
  if bytes >= 1 << 10 && bytes % (1 << 10) == 0 { return "\(bytes >> 10) KiB" }
  return "\(bytes) bytes"
}
