/// Loads and stores by virtual address: translation, the alignment rules (B2.5), RAM through
/// GuestRAM's inlinable accessors, MMIO through the bus, and the decode cache kept coherent.
extension A64Core {
  /// Reads `size` bytes (1, 2, 4 or 8), little-endian. `mustAlign`: exclusives and
  /// acquire/release accesses, which fault when unaligned on any memory type.
  @inline(__always)
  mutating func read(_ address: UInt64, size: Int, mustAlign: Bool = false, unprivileged: Bool = false)
    throws(A64Exception) -> UInt64
  {
    let (physical, device) = try translateWithType(address, .read, unprivileged: unprivileged)
    if debugArmed, let hit = watchpointHit(address, size: size, write: false, unprivileged: unprivileged) { throw hit }
    try checkHostWatch(address, size: size, write: false)
    if address & UInt64(size &- 1) != 0 {
      try checkUnaligned(address, .read, device: device, mustAlign: mustAlign)
      if (address & 0xfff) &+ UInt64(size) > 0x1000 {
        return try readBytes(address, size: size, unprivileged: unprivileged)
      }
    }
    return try readPhysical(physical, virtual: address, size: size)
  }

  @inline(__always)
  mutating func write(
    _ address: UInt64, size: Int, _ value: UInt64, mustAlign: Bool = false, unprivileged: Bool = false
  ) throws(A64Exception) {
    let (physical, device) = try translateWithType(address, .write, unprivileged: unprivileged)
    if debugArmed, let hit = watchpointHit(address, size: size, write: true, unprivileged: unprivileged) { throw hit }
    try checkHostWatch(address, size: size, write: true)
    if address & UInt64(size &- 1) != 0 {
      try checkUnaligned(address, .write, device: device, mustAlign: mustAlign)
      if (address & 0xfff) &+ UInt64(size) > 0x1000 {
        // Translate the second page before writing anything, so a fault writes nothing.
        _ = try translate((address | 0xfff) &+ 1, .write, unprivileged: unprivileged)
        for byte in 0..<size {
          try write(address &+ UInt64(byte), size: 1, value >> UInt64(8 * byte) & 0xff, unprivileged: unprivileged)
        }
        return
      }
    }
    try writePhysical(physical, virtual: address, size: size, value)
  }

  /// An unaligned access: allowed to Normal memory unless SCTLR_EL1.A or the instruction
  /// demands alignment (B2.5.2); Device memory always faults.
  mutating func checkUnaligned(_ address: UInt64, _ kind: A64Access, device: Bool, mustAlign: Bool)
    throws(A64Exception)
  {
    if device || mustAlign || state.system.sctlr & 2 != 0 {
      throw abort(address, kind, .alignment, level: 0)
    }
  }

  mutating func readBytes(_ address: UInt64, size: Int, unprivileged: Bool) throws(A64Exception) -> UInt64 {
    var value: UInt64 = 0
    for byte in 0..<size {
      value |= try read(address &+ UInt64(byte), size: 1, unprivileged: unprivileged) << UInt64(8 * byte)
    }
    return value
  }

  @inline(__always)
  mutating func readPhysical(_ physical: UInt64, virtual: UInt64, size: Int) throws(A64Exception) -> UInt64 {
    let value: UInt64?
    switch size {
    case 1: value = ram.loadPhysical(UInt8.self, at: physical).map(UInt64.init)
    case 2: value = ram.loadPhysical(UInt16.self, at: physical).map(UInt64.init)
    case 4: value = ram.loadPhysical(UInt32.self, at: physical).map(UInt64.init)
    default: value = ram.loadPhysical(UInt64.self, at: physical)
    }
    if let value { return value }
    platformEpoch &+= 1
    guard let device = bus.mmioRead(physical, size: size) else {
      throw abort(virtual, .read, .synchronousExternal, level: 0)
    }
    return device
  }

  @inline(__always)
  mutating func writePhysical(_ physical: UInt64, virtual: UInt64, size: Int, _ value: UInt64) throws(A64Exception) {
    let stored: Bool
    switch size {
    case 1: stored = ram.storePhysical(UInt8(truncatingIfNeeded: value), at: physical)
    case 2: stored = ram.storePhysical(UInt16(truncatingIfNeeded: value), at: physical)
    case 4: stored = ram.storePhysical(UInt32(truncatingIfNeeded: value), at: physical)
    default: stored = ram.storePhysical(value, at: physical)
    }
    if stored {
      if decodeCache.holdsCode(physical, size: size) { decodeCache.invalidate(physical, size: size) }
      globalMonitor?.stored(by: Int(cpuIndex), physical, size: size)
      return
    }
    platformEpoch &+= 1
    switch bus.mmioWrite(physical, size: size, value: value) {
    case .done: break
    case .stop: ioStopRequested = true
    case .unmapped: throw abort(virtual, .write, .synchronousExternal, level: 0)
    }
  }
}
