/// Loads and stores (C6.2, the LDR/STR/LDP/STP families, the exclusives, LDAR/STLR): address
/// generation, SP alignment checking, write-back, extension, and the local exclusive monitor.
extension A64Core {
  /// Rn as a base register: register 31 is SP, which must be 16-byte aligned when SCTLR_EL1.SA
  /// (at EL1) or SA0 (at EL0) says so (D1.8.2).
  @inline(__always)
  mutating func baseRegister(_ n: UInt8) throws(A64Exception) -> UInt64 {
    guard n == 31 else { return state.x[Int(n)] }
    let sp = state.sp
    let check = state.pstate.el == 0 ? state.system.sctlr >> 4 & 1 != 0 : state.system.sctlr >> 3 & 1 != 0
    if check && sp & 15 != 0 { throw .spAlignment }
    return sp
  }

  mutating func loadStore(_ i: A64Instruction, at pc: UInt64) throws(A64Exception) {
    let kind = LoadStoreKind(rawValue: i.variant) ?? .load
    if kind == .storeVector || kind == .loadVector { try checkFloatingPointAccess() }
    let address: UInt64
    var base: UInt64 = 0
    switch i.addressing {
    case .literal: address = pc &+ i.imm
    case .offset:
      base = try baseRegister(i.rn)
      address = base &+ i.imm
    case .preIndex:
      base = try baseRegister(i.rn)
      address = base &+ i.imm
    case .postIndex:
      base = try baseRegister(i.rn)
      address = base
    case .register:
      base = try baseRegister(i.rn)
      address = base &+ A64Core.extend(reg(i.rm), option: UInt8(i.imm2), shift: i.amount)
    }
    let size = 1 << Int(i.size)
    switch kind {
    case .store:
      try write(address, size: size, reg(i.rd), unprivileged: i.unprivileged)
    case .load:
      state.setRegister(i.rd, try read(address, size: size, unprivileged: i.unprivileged))
    case .loadSigned64:
      let value = try read(address, size: size, unprivileged: i.unprivileged)
      state.setRegister(i.rd, A64Core.signExtend(value, bytes: size))
    case .loadSigned32:
      let value = try read(address, size: size, unprivileged: i.unprivileged)
      state.setRegister(i.rd, A64Core.signExtend(value, bytes: size) & 0xffff_ffff)
    case .prefetch:
      break  // PRFM: a hint, which never faults
    case .storeVector:
      try writeVector(i.rd, at: address, size: size)
    case .loadVector:
      try readVector(i.rd, at: address, size: size)
    }
    if i.addressing == .preIndex || i.addressing == .postIndex {
      state.setRegisterOrSP(i.rn, base &+ i.imm)
    }
  }

  @inline(__always) static func signExtend(_ value: UInt64, bytes: Int) -> UInt64 {
    let unused = UInt64(64 - 8 * bytes)
    return UInt64(bitPattern: Int64(bitPattern: value << unused) >> Int64(unused))
  }

  /// LDP, STP, LDNP, STNP, LDPSW, and their SIMD&FP forms. Both elements are read before
  /// either register is written, so a fault on the second leaves both registers as they were.
  mutating func loadStorePair(_ i: A64Instruction) throws(A64Exception) {
    let kind = LoadStoreKind(rawValue: i.variant) ?? .load
    if kind == .storeVector || kind == .loadVector { try checkFloatingPointAccess() }
    let base = try baseRegister(i.rn)
    let address = i.addressing == .postIndex ? base : base &+ i.imm
    let size = 1 << Int(i.size)
    let second = address &+ UInt64(size)
    switch kind {
    case .store:
      try write(address, size: size, reg(i.rd))
      try write(second, size: size, reg(i.ra))
    case .load, .loadSigned64, .loadSigned32:
      var first = try read(address, size: size)
      var other = try read(second, size: size)
      if kind == .loadSigned64 {
        first = A64Core.signExtend(first, bytes: size)
        other = A64Core.signExtend(other, bytes: size)
      }
      state.setRegister(i.rd, first)
      state.setRegister(i.ra, other)
    case .storeVector:
      try writeVector(i.rd, at: address, size: size)
      try writeVector(i.ra, at: second, size: size)
    case .loadVector:
      try readVector(i.rd, at: address, size: size)
      try readVector(i.ra, at: second, size: size)
    case .prefetch:
      break
    }
    if i.addressing != .offset { state.setRegisterOrSP(i.rn, base &+ i.imm) }
  }

  /// B, H, S, D or Q register `n` to memory (the low `size` bytes of V`n`).
  mutating func writeVector(_ n: UInt8, at address: UInt64, size: Int) throws(A64Exception) {
    if size == 16 {
      try write(address, size: 8, state.vLow(n))
      try write(address &+ 8, size: 8, state.vHigh(n))
    } else {
      try write(address, size: size, state.vLow(n))
    }
  }

  /// Memory to B, H, S, D or Q register `n`: the rest of the 128 bits is zeroed.
  mutating func readVector(_ n: UInt8, at address: UInt64, size: Int) throws(A64Exception) {
    if size == 16 {
      let low = try read(address, size: 8)
      let high = try read(address &+ 8, size: 8)
      state.setV(n, low: low, high: high)
    } else {
      state.setV(n, low: try read(address, size: size), high: 0)
    }
  }

  // MARK: Exclusives and acquire/release (B2.9, C6.2)

  /// LDXR, LDAXR: loads and marks the location in the local monitor. Exclusives must be
  /// aligned to their size on every memory type.
  mutating func loadExclusive(_ i: A64Instruction) throws(A64Exception) {
    let address = try baseRegister(i.rn)
    let size = 1 << Int(i.size)
    let value = try read(address, size: size, mustAlign: true)
    try markExclusive(address, size: size)
    state.setRegister(i.rd, value)
  }

  /// LDXP, LDAXP: two W or X registers from one naturally aligned 8- or 16-byte location.
  mutating func loadExclusivePair(_ i: A64Instruction) throws(A64Exception) {
    let address = try baseRegister(i.rn)
    let size = 1 << Int(i.size)
    if address & UInt64(2 * size - 1) != 0 { throw abort(address, .read, .alignment, level: 0) }
    let first: UInt64
    let second: UInt64
    if size == 4 {
      let pair = try read(address, size: 8, mustAlign: true)
      (first, second) = (pair & 0xffff_ffff, pair >> 32)
    } else {
      first = try read(address, size: 8, mustAlign: true)
      second = try read(address &+ 8, size: 8, mustAlign: true)
    }
    try markExclusive(address, size: 2 * size)
    state.setRegister(i.rd, first)
    state.setRegister(i.ra, second)
  }

  /// STXR, STLXR: stores only if the monitor still marks exactly this location, writing 0 to
  /// Ws on success and 1 on failure; the monitor is cleared either way. The write's
  /// translation and alignment are checked first, so an access that would fault faults
  /// whether or not the monitor would have let it through.
  mutating func storeExclusive(_ i: A64Instruction) throws(A64Exception) {
    let address = try baseRegister(i.rn)
    let size = 1 << Int(i.size)
    if address & UInt64(size - 1) != 0 { throw abort(address, .write, .alignment, level: 0) }
    let passes = try exclusivePasses(address, size: size)
    if passes { try write(address, size: size, reg(i.rd), mustAlign: true) }
    clearExclusive()
    state.setRegister(i.rm, passes ? 0 : 1)
  }

  mutating func storeExclusivePair(_ i: A64Instruction) throws(A64Exception) {
    let address = try baseRegister(i.rn)
    let size = 1 << Int(i.size)
    if address & UInt64(2 * size - 1) != 0 { throw abort(address, .write, .alignment, level: 0) }
    let passes = try exclusivePasses(address, size: 2 * size)
    if passes {
      if size == 4 {
        let pair = reg(i.rd) & 0xffff_ffff | reg(i.ra) << 32
        try write(address, size: 8, pair, mustAlign: true)
      } else {
        try write(address, size: 8, reg(i.rd), mustAlign: true)
        try write(address &+ 8, size: 8, reg(i.ra), mustAlign: true)
      }
    }
    clearExclusive()
    state.setRegister(i.rm, passes ? 0 : 1)
  }

  /// A load-exclusive marks the location in the local monitor and its granule in the global one.
  mutating func markExclusive(_ address: UInt64, size: Int) throws(A64Exception) {
    let physical = try translate(address, .read)
    state.exclusive = ExclusiveMark(address: physical, size: UInt8(size))
    globalMonitor?.mark(Int(cpuIndex), physical)
  }

  /// Whether a store-exclusive of `size` bytes may store: the local monitor marks exactly this
  /// location and no other CPU has stored into its granule since. The write's translation is
  /// checked first, so an access that would fault faults whichever way the monitors say.
  mutating func exclusivePasses(_ address: UInt64, size: Int) throws(A64Exception) -> Bool {
    let physical = try translate(address, .write)
    guard state.exclusive == ExclusiveMark(address: physical, size: UInt8(size)) else { return false }
    return globalMonitor?.holds(Int(cpuIndex), physical) ?? true
  }

  mutating func clearExclusive() {
    state.exclusive = nil
    globalMonitor?.clear(Int(cpuIndex))
  }

  mutating func loadAcquire(_ i: A64Instruction) throws(A64Exception) {
    let address = try baseRegister(i.rn)
    state.setRegister(i.rd, try read(address, size: 1 << Int(i.size), mustAlign: true))
  }

  mutating func storeRelease(_ i: A64Instruction) throws(A64Exception) {
    let address = try baseRegister(i.rn)
    try write(address, size: 1 << Int(i.size), reg(i.rd), mustAlign: true)
  }
}
