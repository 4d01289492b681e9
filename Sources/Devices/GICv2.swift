/// Arm's Generic Interrupt Controller, architecture version 2, without the security
/// extensions (what a guest at non-secure EL1 sees on QEMU virt): the distributor at
/// 0x08000000 and one CPU interface per vCPU at 0x08010000 (banked by the accessing CPU).
/// Register offsets and behaviour follow the GICv2 architecture specification (IHI 0048B):
/// chapter 4 for the registers, 3.2 for the interrupt life cycle, 3.3 for priorities.
///
/// INTIDs 0-15 are SGIs and 16-31 PPIs, both banked per CPU; 32 up are SPIs. An interrupt is
/// signalled to a CPU when both the distributor and that CPU's interface are enabled and its
/// highest-priority pending interrupt has a priority numerically below both the priority mask
/// and the running priority (the active interrupt's, the last acknowledged and not ended).
public final class GICv2: @unchecked Sendable {
  public static let virtDistributor: UInt64 = 0x0800_0000
  public static let virtCPUInterface: UInt64 = 0x0801_0000
  /// Interrupts implemented: 16 SGIs, 16 PPIs and 224 SPIs.
  public static let interruptCount = 256
  /// The ID an acknowledge returns when nothing is pending (4.4.4).
  public static let spurious = 1023

  struct Interrupt {
    var enabled = false
    /// Pending latched by an edge, a write to GICD_ISPENDR or (SGIs) a GICD_SGIR.
    var latched = false
    var active = false
    /// The input line, for level-sensitive interrupts.
    var level = false
    var edgeTriggered = false
    var priority: UInt8 = 0
    /// GICD_ITARGETSR: the CPUs an SPI goes to, one bit each.
    var targets: UInt8 = 0
    var pending: Bool { latched || !edgeTriggered && level }
  }

  struct CPUInterface {
    var enabled = false
    var priorityMask: UInt8 = 0
    var binaryPoint: UInt8 = 2
    /// Acknowledged, not yet ended: (INTID, priority), the last acknowledged last.
    var active: [(id: Int, priority: UInt8)] = []
    var runningPriority: Int { active.last.map { Int($0.priority) } ?? 0x100 }
  }

  public let cpuCount: Int
  private var distributorEnabled = false
  /// INTIDs 0-31 of each CPU.
  private var banked: [[Interrupt]]
  /// INTIDs 32 up.
  private var shared: [Interrupt]
  /// Per CPU and SGI: the CPUs that sent it and wait to be acknowledged, one bit each.
  private var sgiSources: [[UInt8]]
  private var interfaces: [CPUInterface]
  /// Priority bits implemented: the top five (4.3.11: at least 16 levels).
  static let priorityMask: UInt8 = 0xf8

  public init(cpuCount: Int) {
    self.cpuCount = cpuCount
    var local = Array(repeating: Interrupt(), count: 32)
    for id in 0..<16 {
      local[id].edgeTriggered = true  // SGIs are always edge-triggered
      local[id].enabled = true
    }
    banked = Array(repeating: local, count: cpuCount)
    shared = Array(repeating: Interrupt(), count: GICv2.interruptCount - 32)
    sgiSources = Array(repeating: Array(repeating: 0, count: 16), count: cpuCount)
    interfaces = Array(repeating: CPUInterface(), count: cpuCount)
  }

  private func interrupt(_ id: Int, cpu: Int) -> Interrupt { id < 32 ? banked[cpu][id] : shared[id - 32] }

  private func update(_ id: Int, cpu: Int, _ change: (inout Interrupt) -> Void) {
    if id < 32 { change(&banked[cpu][id]) } else if id < GICv2.interruptCount { change(&shared[id - 32]) }
  }

  // MARK: Input lines

  /// Drives an interrupt's input: a PPI of `cpu` (16-31) or an SPI (32 up, `cpu` ignored).
  /// A rising edge latches an edge-triggered interrupt pending.
  public func setLevel(_ id: Int, cpu: Int = 0, _ level: Bool) {
    guard id >= 16 && id < GICv2.interruptCount else { return }
    update(id, cpu: cpu) { line in
      if line.edgeTriggered && level && !line.level { line.latched = true }
      line.level = level
    }
  }

  /// Whether `cpu`'s IRQ input is asserted now.
  public func irqLine(cpu: Int) -> Bool { highestPending(cpu: cpu, checkPriority: true) != nil }

  /// The highest-priority pending, enabled, inactive interrupt for `cpu` (lowest INTID on a
  /// tie, 3.3.3); with `checkPriority`, only one that may be signalled past the priority mask
  /// and the running priority.
  private func highestPending(cpu: Int, checkPriority: Bool) -> Int? {
    guard distributorEnabled, interfaces[cpu].enabled else { return nil }
    var best: Int?
    var bestPriority = 0x100
    for id in 0..<GICv2.interruptCount {
      let line = interrupt(id, cpu: cpu)
      guard line.enabled && line.pending && !line.active && Int(line.priority) < bestPriority else { continue }
      if id >= 32 && line.targets & (1 << UInt8(cpu)) == 0 { continue }
      best = id
      bestPriority = Int(line.priority)
    }
    guard let best else { return nil }
    if checkPriority {
      let interface = interfaces[cpu]
      guard bestPriority < Int(interface.priorityMask) && bestPriority < interface.runningPriority else { return nil }
    }
    return best
  }

  // MARK: CPU interface (4.4)

  public func readCPUInterface(cpu: Int, offset: UInt64, size: Int) -> UInt64 {
    let interface = interfaces[cpu]
    switch offset {
    case 0x00: return interface.enabled ? 1 : 0
    case 0x04: return UInt64(interface.priorityMask)
    case 0x08: return UInt64(interface.binaryPoint)
    case 0x0c: return UInt64(acknowledge(cpu: cpu))
    case 0x14: return UInt64(min(interface.runningPriority, 0xff))
    case 0x18:
      guard let id = highestPending(cpu: cpu, checkPriority: false) else { return UInt64(GICv2.spurious) }
      return UInt64(id < 16 ? id | lowestSource(cpu: cpu, sgi: id) << 10 : id)
    case 0xfc: return 0x0202_143b  // GICC_IIDR: GICv2, Arm's implementer code
    default: return 0
    }
  }

  public func writeCPUInterface(cpu: Int, offset: UInt64, size: Int, value: UInt64) {
    switch offset {
    case 0x00: interfaces[cpu].enabled = value & 1 != 0
    case 0x04: interfaces[cpu].priorityMask = UInt8(truncatingIfNeeded: value) & GICv2.priorityMask
    case 0x08: interfaces[cpu].binaryPoint = UInt8(truncatingIfNeeded: value) & 7
    case 0x10: endOfInterrupt(cpu: cpu, id: Int(value & 0x3ff))
    default: break
    }
  }

  /// GICC_IAR: the highest-priority pending interrupt becomes active (an SGI's source CPU in
  /// bits 12-10); its edge or software latch is cleared, a level input keeps it pending.
  private func acknowledge(cpu: Int) -> Int {
    guard let id = highestPending(cpu: cpu, checkPriority: true) else { return GICv2.spurious }
    var source = 0
    if id < 16 {
      source = lowestSource(cpu: cpu, sgi: id)
      sgiSources[cpu][id] &= ~(1 << UInt8(source))
      let remaining = sgiSources[cpu][id] != 0
      update(id, cpu: cpu) { $0.latched = remaining }
    } else {
      update(id, cpu: cpu) { $0.latched = false }
    }
    update(id, cpu: cpu) { $0.active = true }
    interfaces[cpu].active.append((id, interrupt(id, cpu: cpu).priority))
    return id | source << 10
  }

  private func lowestSource(cpu: Int, sgi: Int) -> Int {
    let sources = sgiSources[cpu][sgi]
    return sources == 0 ? 0 : sources.trailingZeroBitCount
  }

  /// GICC_EOIR: priority drop and deactivation of the interrupt (4.4.5).
  private func endOfInterrupt(cpu: Int, id: Int) {
    guard id < GICv2.interruptCount, let index = interfaces[cpu].active.lastIndex(where: { $0.id == id }) else {
      return
    }
    interfaces[cpu].active.remove(at: index)
    update(id, cpu: cpu) { $0.active = false }
  }

  // MARK: Distributor (4.3)

  public func readDistributor(cpu: Int, offset: UInt64, size: Int) -> UInt64 {
    switch offset {
    case 0x000: return distributorEnabled ? 1 : 0
    case 0x004:
      // GICD_TYPER: ITLinesNumber = 32 * (N + 1) interrupts, CPUNumber = CPUs - 1.
      return UInt64(GICv2.interruptCount / 32 - 1) | UInt64(cpuCount - 1) << 5
    case 0x008: return 0x0200_143b  // GICD_IIDR
    case 0x100..<0x180: return bits(offset - 0x100, cpu: cpu) { $0.enabled }
    case 0x180..<0x200: return bits(offset - 0x180, cpu: cpu) { $0.enabled }
    case 0x200..<0x280: return bits(offset - 0x200, cpu: cpu) { $0.pending }
    case 0x280..<0x300: return bits(offset - 0x280, cpu: cpu) { $0.pending }
    case 0x300..<0x380: return bits(offset - 0x300, cpu: cpu) { $0.active }
    case 0x380..<0x400: return bits(offset - 0x380, cpu: cpu) { $0.active }
    case 0x400..<0x800: return bytes(offset - 0x400, size: size, cpu: cpu) { UInt64($0.priority) }
    case 0x800..<0xc00:
      // ITARGETSR0-7 (INTIDs 0-31) read as the accessing CPU's own bit.
      return targetBytes(offset - 0x800, size: size, cpu: cpu)
    case 0xc00..<0xd00:
      // Two bits per interrupt; bit 1 of each pair: edge-triggered.
      let first = Int(offset - 0xc00) * 4
      var value: UInt64 = 0
      for k in 0..<16 where first + k < GICv2.interruptCount && interrupt(first + k, cpu: cpu).edgeTriggered {
        value |= 2 << UInt64(2 * k)
      }
      return value
    case 0xfe8: return 0x2b  // ICPIDR2: architecture version 2
    default: return 0
    }
  }

  public func writeDistributor(cpu: Int, offset: UInt64, size: Int, value: UInt64) {
    switch offset {
    case 0x000: distributorEnabled = value & 1 != 0
    case 0x100..<0x180: setBits(offset - 0x100, value, cpu: cpu) { $0.enabled = true }
    case 0x180..<0x200: setBits(offset - 0x180, value, cpu: cpu, keepSGIs: true) { $0.enabled = false }
    case 0x200..<0x280: setBits(offset - 0x200, value, cpu: cpu, keepSGIs: true) { $0.latched = true }
    case 0x280..<0x300: setBits(offset - 0x280, value, cpu: cpu, keepSGIs: true) { $0.latched = false }
    case 0x300..<0x380: setBits(offset - 0x300, value, cpu: cpu) { $0.active = true }
    case 0x380..<0x400: setBits(offset - 0x380, value, cpu: cpu) { $0.active = false }
    case 0x400..<0x800:
      for k in 0..<size {
        let id = Int(offset - 0x400) + k
        update(id, cpu: cpu) { $0.priority = UInt8(truncatingIfNeeded: value >> UInt64(8 * k)) & GICv2.priorityMask }
      }
    case 0x800..<0xc00:
      for k in 0..<size where Int(offset - 0x800) + k >= 32 {
        let mask = UInt8((1 << cpuCount) - 1)
        update(Int(offset - 0x800) + k, cpu: cpu) {
          $0.targets = UInt8(truncatingIfNeeded: value >> UInt64(8 * k)) & mask
        }
      }
    case 0xc00..<0xd00:
      let first = Int(offset - 0xc00) * 4
      for k in 0..<16 where first + k >= 16 {
        update(first + k, cpu: cpu) { $0.edgeTriggered = value >> UInt64(2 * k + 1) & 1 != 0 }
      }
    case 0xf00:
      sendSGI(from: cpu, value: value)
    default: break
    }
  }

  /// GICD_SGIR (4.3.15): TargetListFilter 0 = the list, 1 = all but the sender, 2 = the sender.
  private func sendSGI(from sender: Int, value: UInt64) {
    let sgi = Int(value & 15)
    let list = UInt8(truncatingIfNeeded: value >> 16)
    let targets: [Int]
    switch value >> 24 & 3 {
    case 0: targets = (0..<cpuCount).filter { list & (1 << UInt8($0)) != 0 }
    case 1: targets = (0..<cpuCount).filter { $0 != sender }
    case 2: targets = [sender]
    default: return
    }
    for target in targets {
      sgiSources[target][sgi] |= 1 << UInt8(sender)
      banked[target][sgi].latched = true
    }
  }

  /// A 32-bit register of one bit per interrupt, starting at INTID 8 * `offset`.
  private func bits(_ offset: UInt64, cpu: Int, _ bit: (Interrupt) -> Bool) -> UInt64 {
    let first = Int(offset & ~3) * 8
    var value: UInt64 = 0
    for k in 0..<32 where first + k < GICv2.interruptCount && bit(interrupt(first + k, cpu: cpu)) {
      value |= 1 << UInt64(k)
    }
    return value
  }

  /// Applies `change` to each interrupt whose bit is set in a set/clear register write.
  /// `keepSGIs`: writes there do not reach SGIs (their enables stay, their pending state is
  /// GICD_SPENDSGIR's).
  private func setBits(
    _ offset: UInt64, _ value: UInt64, cpu: Int, keepSGIs: Bool = false, _ change: (inout Interrupt) -> Void
  ) {
    let first = Int(offset & ~3) * 8
    for k in 0..<32 where value >> UInt64(k) & 1 != 0 {
      let id = first + k
      if keepSGIs && id < 16 { continue }
      update(id, cpu: cpu, change)
    }
  }

  private func bytes(_ offset: UInt64, size: Int, cpu: Int, _ byte: (Interrupt) -> UInt64) -> UInt64 {
    var value: UInt64 = 0
    for k in 0..<size where Int(offset) + k < GICv2.interruptCount {
      value |= (byte(interrupt(Int(offset) + k, cpu: cpu)) & 0xff) << UInt64(8 * k)
    }
    return value
  }

  private func targetBytes(_ offset: UInt64, size: Int, cpu: Int) -> UInt64 {
    var value: UInt64 = 0
    for k in 0..<size where Int(offset) + k < GICv2.interruptCount {
      let id = Int(offset) + k
      let target = id < 32 ? UInt64(1) << UInt64(cpu) : UInt64(interrupt(id, cpu: cpu).targets)
      value |= target << UInt64(8 * k)
    }
    return value
  }
}
