import KVM

/// One contiguous guest-physical range backed by host memory.
public struct MemoryRegionSpec: Sendable, Equatable {
  public var start: GuestAddress
  public var size: UInt64
  /// Read-only to the guest (a ROM): guest stores to it become MMIO exits that the VMM ignores.
  public var readOnly: Bool

  public init(start: GuestAddress, size: UInt64, readOnly: Bool = false) {
    self.start = start
    self.size = size
    self.readOnly = readOnly
  }

  var end: UInt64 { start.value + size }
}

/// Guest-physical memory: a fixed set of regions, each bounds-checked on every access.
///
/// Reads and writes from the VMM side ignore `readOnly` (that is how ROM contents are loaded);
/// the guest side is enforced by KVM.
///
/// Safe to use: the one raw pointer it keeps (`fastPointer`, into the main mapping, which lives
/// as long as this object) is only dereferenced after a bounds check.
@safe public final class GuestRAM: @unchecked Sendable {
  private struct Region {
    let spec: MemoryRegionSpec
    let mapping: AnonymousMapping
  }

  private let regions: [Region]

  // The interpreter's fast path: the largest writable region, checked with one comparison
  // before the general search. Guests live almost entirely in one big RAM region.
  @usableFromInline let fastStart: UInt64
  @usableFromInline let fastSize: UInt64
  @usableFromInline let fastPointer: UnsafeMutableRawPointer?

  public var layout: [MemoryRegionSpec] { regions.map(\.spec) }

  /// Total bytes of guest RAM (read-only regions excluded).
  public var ramSize: UInt64 { regions.filter { !$0.spec.readOnly }.reduce(0) { $0 + $1.spec.size } }

  public init(_ specs: [MemoryRegionSpec]) throws(MemoryError) {
    let sorted = specs.sorted { $0.start < $1.start }
    for spec in sorted where spec.size == 0 || spec.start.advanced(by: spec.size) == nil {
      throw .invalidLayout("region at \(spec.start) has size 0x\(String(spec.size, radix: 16))")
    }
    for (first, second) in zip(sorted, sorted.dropFirst()) where first.end > second.start.value {
      throw .invalidLayout("regions at \(first.start) and \(second.start) overlap")
    }
    var regions: [Region] = []
    for spec in sorted {
      guard spec.size <= UInt64(Int.max) else {
        throw .hostAllocationFailed(size: spec.size, reason: "larger than the host address space")
      }
      do {
        regions.append(Region(spec: spec, mapping: try AnonymousMapping(size: Int(spec.size))))
      } catch {
        throw .hostAllocationFailed(size: spec.size, reason: error.description)
      }
    }
    self.regions = regions
    let largest = regions.filter { !$0.spec.readOnly }.max { $0.spec.size < $1.spec.size }
    fastStart = largest?.spec.start.value ?? 0
    fastSize = largest?.spec.size ?? 0
    // SAFETY: the pointer is only dereferenced within [0, fastSize), the mapping's live extent.
    unsafe fastPointer = largest?.mapping.pointer
  }

  /// Hands every region to KVM as a memory slot. The VM must not outlive this object.
  public func register(with vm: VirtualMachine) throws(KVMError) {
    try registerSlots(with: vm, writeProtected: [])
  }

  /// The KVM memory slots in force: their numbers, per region (one each, or the pieces
  /// `protectFromWrites` cut the region into).
  private var slots: [[UInt32]] = []

  /// Makes these guest-physical pages (page numbers: address >> 12) read-only to KVM, and
  /// every other RAM page writable again: the region holding them is cut into slots around
  /// them, the protected ones KVM_MEM_READONLY. A guest write to one then leaves KVM as an
  /// MMIO write, which the caller carries out (`store(bytes:)`) after looking at it; reads
  /// and instruction fetches are served by KVM as before. Host writes (through this object)
  /// are not affected. Only while no vCPU is in KVM_RUN.
  public func protectFromWrites(pages: Set<UInt64>, with vm: VirtualMachine) throws(KVMError) {
    try protect(readOnly: pages, absent: [], with: vm)
  }

  /// As `protectFromWrites`, and besides makes the `absent` pages no memory at all to KVM:
  /// they get no slot, so every guest access there (read, write, instruction fetch) leaves
  /// KVM as MMIO, or as an emulation failure where KVM cannot fetch an instruction from MMIO.
  /// The caller serves those accesses from this RAM, which keeps the pages' contents. A page
  /// in both sets is absent. Only while no vCPU is in KVM_RUN.
  public func protect(readOnly: Set<UInt64>, absent: Set<UInt64>, with vm: VirtualMachine) throws(KVMError) {
    // Every slot goes first: KVM refuses a slot that overlaps one still registered.
    for slot in slots.joined() {
      // SAFETY: a size of 0 deletes the slot; no host memory is named.
      try unsafe vm.setUserMemoryRegion(slot: slot, guestAddress: 0, size: 0, hostAddress: regions[0].mapping.pointer)
    }
    try registerSlots(with: vm, writeProtected: readOnly, absent: absent)
  }

  /// How KVM sees one page of a region.
  private enum PageAccess { case normal, readOnly, absent }

  private func registerSlots(
    with vm: VirtualMachine, writeProtected pages: Set<UInt64>, absent: Set<UInt64> = []
  ) throws(KVMError) {
    slots = []
    // Slot numbers from 0 again: the ones in force were all deleted first.
    var nextSlot: UInt32 = 0
    for region in regions {
      var pieces: [UInt32] = []
      let start = region.spec.start.value
      let firstPage = start >> 12
      let pageCount = region.spec.size >> 12
      func access(_ page: UInt64) -> PageAccess {
        if region.spec.readOnly { return .readOnly }  // a ROM stays one, whole
        if absent.contains(firstPage + page) { return .absent }
        return pages.contains(firstPage + page) ? .readOnly : .normal
      }
      // Runs of pages with the same access (region boundaries are page-aligned: BootLayout).
      var runStart: UInt64 = 0
      while runStart < pageCount || (runStart == 0 && pageCount == 0) {
        let kind = pageCount == 0 ? PageAccess.normal : access(runStart)
        var runEnd = runStart + 1
        while runEnd < pageCount && access(runEnd) == kind { runEnd += 1 }
        if kind != .absent {
          let size = pageCount == 0 ? region.spec.size : (runEnd - runStart) << 12
          let slot = nextSlot
          nextSlot += 1
          // SAFETY: each piece lies inside its region's mapping, which stays alive as long as
          // this GuestRAM, which the VM must not outlive.
          try unsafe vm.setUserMemoryRegion(
            slot: slot, guestAddress: start + (runStart << 12), size: size,
            hostAddress: region.mapping.pointer + Int(runStart << 12),
            readOnly: region.spec.readOnly || kind == .readOnly)
          pieces.append(slot)
        }
        if pageCount == 0 { break }
        runStart = runEnd
      }
      slots.append(pieces)
    }
  }

  /// Whether every byte of [address, address+length) is backed by one region.
  public func contains(_ address: GuestAddress, length: UInt64 = 1) -> Bool {
    (try? locate(address, length)) != nil  // the error says why not; this asks only whether
  }

  /// Finds the region holding the whole range and the offset of `address` in it.
  @inline(__always)
  private func locate(_ address: GuestAddress, _ length: UInt64) throws(MemoryError) -> (Region, Int) {
    for region in regions where address.value >= region.spec.start.value {
      let offset = address.value - region.spec.start.value
      if offset < region.spec.size && length <= region.spec.size - offset {
        return (region, Int(offset))
      }
    }
    throw .outOfRange(address: address, length: length)
  }

  // MARK: Bytes

  public func read(at address: GuestAddress, count: Int) throws(MemoryError) -> [UInt8] {
    let (region, offset) = try locate(address, UInt64(count))
    // SAFETY: locate() proved [offset, offset+count) lies inside this region's live mapping.
    return unsafe Array(UnsafeRawBufferPointer(start: region.mapping.pointer + offset, count: count))
  }

  /// Copies guest bytes into `buffer` (no allocation), filling it completely.
  public func read(at address: GuestAddress, into buffer: inout [UInt8]) throws(MemoryError) {
    let (region, offset) = try locate(address, UInt64(buffer.count))
    // SAFETY: locate() proved the source range is inside the mapping; the destination is the array's storage.
    unsafe buffer.withUnsafeMutableBytes { destination in
      unsafe destination.copyMemory(
        from: UnsafeRawBufferPointer(start: region.mapping.pointer + offset, count: destination.count))
    }
  }

  public func write(_ bytes: some Collection<UInt8>, at address: GuestAddress) throws(MemoryError) {
    let (region, offset) = try locate(address, UInt64(bytes.count))
    // SAFETY: locate() proved [offset, offset+count) lies inside this region's live mapping.
    let destination = unsafe UnsafeMutableRawBufferPointer(start: region.mapping.pointer + offset, count: bytes.count)
    unsafe destination.copyBytes(from: bytes)
  }

  /// Sets `count` bytes at `address` to `value`.
  public func fill(at address: GuestAddress, count: Int, with value: UInt8) throws(MemoryError) {
    let (region, offset) = try locate(address, UInt64(count))
    // SAFETY: locate() proved [offset, offset+count) lies inside this region's live mapping.
    unsafe (region.mapping.pointer + offset).initializeMemory(as: UInt8.self, repeating: value, count: count)
  }

  // MARK: Little-endian integers

  public func load<T: FixedWidthInteger>(_ type: T.Type = T.self, at address: GuestAddress) throws(MemoryError) -> T {
    let (region, offset) = try locate(address, UInt64(MemoryLayout<T>.size))
    // SAFETY: locate() proved the integer's bytes lie inside the mapping; the load tolerates misalignment.
    return T(littleEndian: unsafe (region.mapping.pointer + offset).loadUnaligned(as: T.self))
  }

  public func store<T: FixedWidthInteger>(_ value: T, at address: GuestAddress) throws(MemoryError) {
    let (region, offset) = try locate(address, UInt64(MemoryLayout<T>.size))
    // SAFETY: locate() proved the integer's bytes lie inside the mapping.
    unsafe (region.mapping.pointer + offset).storeBytes(of: value.littleEndian, as: T.self)
  }

  // MARK: Interpreter fast path

  /// Loads a little-endian integer at a guest-physical address, or nil when any of its bytes
  /// is outside guest RAM (the caller treats that as MMIO). Does not allocate or throw; inlined
  /// into the interpreter so that an access to the main region costs one comparison.
  @inlinable @inline(__always)
  public func loadPhysical<T: FixedWidthInteger>(_ type: T.Type, at address: UInt64) -> T? {
    let offset = address &- fastStart
    if offset < fastSize && UInt64(MemoryLayout<T>.size) <= fastSize &- offset, let base = unsafe fastPointer {
      // SAFETY: the two comparisons above prove the integer lies inside the live main mapping.
      return T(littleEndian: unsafe (base + Int(offset)).loadUnaligned(as: T.self))
    }
    return try? load(T.self, at: GuestAddress(address))
  }

  /// The host address (as a number) of the 4 KiB guest-physical page at `physicalPage`, when
  /// the whole page lies in the main writable region: what the x86 translator's data TLB adds
  /// to a linear address. Valid while this object lives (the translator's owner holds it).
  public func hostAddress(ofPhysicalPage physicalPage: UInt64) -> UInt64? {
    let offset = physicalPage &- fastStart
    guard physicalPage & 0xfff == 0, offset < fastSize, 0x1000 <= fastSize &- offset, let base = unsafe fastPointer
    else { return nil }
    // SAFETY: only the integer value of an address inside the live main mapping is taken.
    return UInt64(UInt(bitPattern: unsafe base + Int(offset)))
  }

  /// Stores a little-endian integer at a guest-physical address, as the guest would: false when
  /// any byte is outside guest RAM or in a read-only region (nothing is written then; the
  /// caller treats it as MMIO, as KVM does for a ROM).
  @inlinable @inline(__always)
  public func storePhysical<T: FixedWidthInteger>(_ value: T, at address: UInt64) -> Bool {
    let offset = address &- fastStart
    if offset < fastSize && UInt64(MemoryLayout<T>.size) <= fastSize &- offset, let base = unsafe fastPointer {
      // SAFETY: the two comparisons above prove the integer lies inside the live main mapping.
      unsafe (base + Int(offset)).storeBytes(of: value.littleEndian, as: T.self)
      return true
    }
    return storeOutsideMainRegion(value, at: address)
  }

  @usableFromInline
  func storeOutsideMainRegion<T: FixedWidthInteger>(_ value: T, at address: UInt64) -> Bool {
    guard let (region, _) = try? locate(GuestAddress(address), UInt64(MemoryLayout<T>.size)), !region.spec.readOnly
    else { return false }
    return (try? store(value, at: GuestAddress(address))) != nil
  }
}
