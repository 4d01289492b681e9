import GuestMemory
import KVM
import Machine
import Synchronization

/// INT3 bytes planted at the first instruction of every handler the guest's IDT names,
/// so that the stop after an exception or interrupt is at the handler's first instruction
/// rather than after it. (Delivery clears TF, so single-stepping alone runs the first
/// handler instruction, or the whole handler, unseen.)
///
/// While planted, a guest that reads its own handler code sees 0xCC there; the debugger's
/// own memory reads go through `originalBytes` and see the real code.
final class HandlerBreakpoints: @unchecked Sendable {
  // @unchecked: shared by the steppers of all vCPUs; every entry point takes `lock`.
  struct Planted {
    var physical: GuestAddress
    var original: UInt8
    var vectors: [UInt8]
    var lifted = false
  }

  private(set) var planted: [UInt64: Planted] = [:]
  private var currentTable: DescriptorTable?
  var table: DescriptorTable? { lock.withLock { _ in currentTable } }
  private let memory: GuestRAM
  private let lock = Mutex(())
  /// The table's bytes when last planted, to notice a guest that rewrites its gates
  /// (or fills the real-mode IVT) without loading a new IDTR.
  private var tableBytes: [UInt8] = []
  private var scratch: [UInt8] = []
  private var tablePhysical: GuestAddress?

  init(memory: GuestRAM) { self.memory = memory }

  var isEmpty: Bool { lock.withLock { _ in planted.isEmpty } }

  func vectors(at linear: UInt64) -> [UInt8]? { lock.withLock { _ in planted[linear]?.vectors } }

  /// Replants when the IDTR or the table's contents changed since the last planting. The
  /// contents check is one copy and compare of at most 4 KiB, done before every step.
  func refresh(for special: SpecialRegisters) { lock.withLock { _ in unlockedRefresh(for: special) } }

  private func unlockedRefresh(for special: SpecialRegisters) {
    guard currentTable == special.idt, let physical = tablePhysical else {
      unlockedPlant(for: special)
      return
    }
    guard !tableBytes.isEmpty else { return }
    if scratch.count != tableBytes.count { scratch = [UInt8](repeating: 0, count: tableBytes.count) }
    // The table was read at this physical address before; RAM does not move, so this holds.
    guard (try? memory.read(at: physical, into: &scratch)) != nil else { return }
    if scratch != tableBytes { unlockedPlant(for: special) }
  }

  /// Reads the IDT (or real-mode IVT) and plants a breakpoint at each distinct handler.
  func plant(for special: SpecialRegisters) { lock.withLock { _ in unlockedPlant(for: special) } }

  private func unlockedPlant(for special: SpecialRegisters) {
    unlockedRemove()
    currentTable = special.idt
    snapshotTable(special)
    let walker = PageWalker(
      memory: memory, mode: PagingMode(cr0: special.cr0, cr3: special.cr3, cr4: special.cr4, efer: special.efer))
    var handlers: [UInt64: [UInt8]] = [:]
    for (vector, address) in Self.handlerAddresses(special, walker) { handlers[address, default: []].append(vector) }
    // The gates themselves (at most 256 of them) are never patched.
    let protected = special.cr0 & 1 != 0
    let gateSize: UInt64 = protected ? (special.efer & (1 << 10) != 0 ? 16 : 8) : 4
    let tableRange = special.idt.base...(special.idt.base + min(UInt64(special.idt.limit), 256 * gateSize - 1))
    // In real mode KVM emulates every instruction, and its emulator takes a planted INT3 for
    // the guest's own; the stepper uses a hardware breakpoint there instead (see
    // Stepper+HandlerEntry).
    guard protected else { return }
    // A handler address that is not mapped RAM gets no INT3: delivery there faults in the
    // guest before any handler instruction runs, and that fault's handler is planted.
    for (address, vectors) in handlers where !tableRange.contains(address) {
      guard let physical = try? walker.translate(address), let original = try? memory.load(UInt8.self, at: physical),
        original != 0xcc
      else { continue }
      try? memory.store(UInt8(0xcc), at: physical)  // just read from there: cannot fail
      planted[address] = Planted(physical: physical, original: original, vectors: vectors)
    }
  }

  /// Restores every original byte.
  func remove() { lock.withLock { _ in unlockedRemove() } }

  private func unlockedRemove() {
    // Each byte was read from its address when planted, and RAM does not move: these cannot fail.
    for (_, entry) in planted where !entry.lifted { try? memory.store(entry.original, at: entry.physical) }
    planted.removeAll()
    currentTable = nil
    tablePhysical = nil
    tableBytes = []
  }

  /// Remembers where the table is and what it holds, when it is physically contiguous.
  private func snapshotTable(_ special: SpecialRegisters) {
    let protected = special.cr0 & 1 != 0
    let gateSize: UInt64 = protected ? (special.efer & (1 << 10) != 0 ? 16 : 8) : 4
    let size = min(256 * gateSize, UInt64(special.idt.limit) + 1)
    let walker = PageWalker(
      memory: memory, mode: PagingMode(cr0: special.cr0, cr3: special.cr3, cr4: special.cr4, efer: special.efer))
    // A table that is unmapped or split across physical pages gets no snapshot (left as a
    // known limit): rewrites of its gates are then noticed only with a new IDTR.
    guard size > 0, let start = try? walker.translate(special.idt.base),
      let end = try? walker.translate(special.idt.base + size - 1), end.value - start.value == size - 1,
      let bytes = try? memory.read(at: start, count: Int(size))
    else {
      tablePhysical = GuestAddress(0)
      tableBytes = []
      return
    }
    tablePhysical = start
    tableBytes = bytes
  }

  /// Puts the original byte back at `linear` for one step; returns whether there was one.
  func lift(at linear: UInt64) -> Bool { lock.withLock { _ in unlockedLift(at: linear) } }

  private func unlockedLift(at linear: UInt64) -> Bool {
    guard var entry = planted[linear], !entry.lifted else { return false }
    try? memory.store(entry.original, at: entry.physical)  // an address written when planted: cannot fail
    entry.lifted = true
    planted[linear] = entry
    return true
  }

  func replant(at linear: UInt64) { lock.withLock { _ in unlockedReplant(at: linear) } }

  private func unlockedReplant(at linear: UInt64) {
    guard var entry = planted[linear], entry.lifted else { return }
    try? memory.store(UInt8(0xcc), at: entry.physical)  // an address written when planted: cannot fail
    entry.lifted = false
    planted[linear] = entry
  }

  /// The bytes the guest really has at a physical range, with planted INT3s taken out.
  func originalBytes(_ bytes: [UInt8], at physical: GuestAddress) -> [UInt8] {
    lock.withLock { _ in unlockedOriginalBytes(bytes, at: physical) }
  }

  private func unlockedOriginalBytes(_ bytes: [UInt8], at physical: GuestAddress) -> [UInt8] {
    var result = bytes
    for (_, entry) in planted where !entry.lifted {
      let offset = Int64(bitPattern: entry.physical.value &- physical.value)
      if offset >= 0 && offset < Int64(result.count) { result[Int(offset)] = entry.original }
    }
    return result
  }

  /// Handler linear addresses by vector, from whichever table the mode uses.
  static func handlerAddresses(_ special: SpecialRegisters, _ walker: PageWalker) -> [(UInt8, UInt64)] {
    var result: [(UInt8, UInt64)] = []
    let protected = special.cr0 & 1 != 0
    let long = special.efer & (1 << 10) != 0
    let gateSize: UInt64 = protected ? (long ? 16 : 8) : 4
    let count = min(256, (UInt64(special.idt.limit) + 1) / gateSize)
    // A table the guest has not mapped yet has no handlers to plant; the CPU could not use it either.
    guard count > 0, let raw = try? walker.read(linear: special.idt.base, count: Int(count * gateSize)) else {
      return []
    }
    for vector in 0..<Int(count) {
      let gate = raw[vector * Int(gateSize)..<(vector + 1) * Int(gateSize)].map { UInt64($0) }
      let g = Array(gate)
      if !protected {
        let offset = g[0] | g[1] << 8
        let segment = g[2] | g[3] << 8
        if offset == 0 && segment == 0 { continue }
        result.append((UInt8(vector), (segment << 4) + offset))
        continue
      }
      let attributes = g[5]
      let type = attributes & 0xf
      guard attributes & 0x80 != 0, [0x6, 0x7, 0xe, 0xf].contains(type) else { continue }
      var offset = g[0] | g[1] << 8 | g[6] << 16 | g[7] << 24
      if long { offset |= (g[8] | g[9] << 8 | g[10] << 16 | g[11] << 24) << 32 }
      let selector = UInt16(g[2] | g[3] << 8)
      // A gate whose code selector does not resolve raises #GP/#NP when used, not the handler:
      // base 0 then only plants a harmless INT3 at an address the guest never reaches this way.
      let base =
        long ? 0 : ((try? SegmentDescriptors.descriptor(selector, special: special, walker: walker))?.base ?? 0)
      result.append((UInt8(vector), base &+ offset))
    }
    return result
  }
}
