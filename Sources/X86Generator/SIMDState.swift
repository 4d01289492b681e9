import HostCPU

/// Random XMM registers and MXCSR for the SSE/SSE2 forms: lanes drawn from the values where
/// IEEE arithmetic has its edges (zeros, infinities, quiet and signalling NaNs, denormals, the
/// extremes of the normal range, values near 1) as singles or doubles, or random bits; MXCSR
/// with every rounding mode, FTZ/DAZ, mostly masked exceptions and sometimes flags already set.
extension CaseBuilder {
  static let singleEdges: [UInt64] = [
    0, 0x8000_0000, 0x7f80_0000, 0xff80_0000, 0x7fc0_0000, 0xffc0_0000, 0x7f80_0001, 0x7fa0_0000, 0x0000_0001,
    0x8000_0001, 0x007f_ffff, 0x0080_0000, 0x8080_0000, 0x7f7f_ffff, 0xff7f_ffff, 0x3f80_0000, 0xbf80_0000,
    0x3f7f_ffff, 0x3f80_0001, 0x4040_0000, 0x4f00_0000, 0xcf00_0000, 0x5f00_0000, 0x3f00_0000, 0x4b80_0000,
  ]
  static let doubleEdges: [UInt64] = [
    0, 0x8000_0000_0000_0000, 0x7ff0_0000_0000_0000, 0xfff0_0000_0000_0000, 0x7ff8_0000_0000_0000,
    0xfff8_0000_0000_0000, 0x7ff0_0000_0000_0001, 0x7ff4_0000_0000_0000, 1, 0x8000_0000_0000_0001,
    0x000f_ffff_ffff_ffff, 0x0010_0000_0000_0000, 0x8010_0000_0000_0000, 0x7fef_ffff_ffff_ffff,
    0xffef_ffff_ffff_ffff, 0x3ff0_0000_0000_0000, 0xbff0_0000_0000_0000, 0x3fef_ffff_ffff_ffff,
    0x3ff0_0000_0000_0001, 0x4008_0000_0000_0000, 0x41e0_0000_0000_0000, 0xc1e0_0000_0000_0000,
    0x43e0_0000_0000_0000, 0xc3e0_0000_0000_0000, 0x3fe0_0000_0000_0000, 0x4340_0000_0000_0000,
  ]

  mutating func singleLane() -> UInt64 {
    switch Int.random(in: 0..<4, using: &random) {
    case 0: return random.pick(Self.singleEdges)
    case 1: return random.pick(Self.singleEdges) ^ (random.next() & 0xff)  // near an edge
    case 2:
      // A normal number of moderate exponent, so arithmetic mostly stays in range.
      return (random.next() & 0x807f_ffff) | UInt64.random(in: 0x60...0x9f, using: &random) << 23
    default: return random.next() & 0xffff_ffff
    }
  }

  mutating func doubleLane() -> UInt64 {
    switch Int.random(in: 0..<4, using: &random) {
    case 0: return random.pick(Self.doubleEdges)
    case 1: return random.pick(Self.doubleEdges) ^ (random.next() & 0xffff)
    case 2: return (random.next() & 0x800f_ffff_ffff_ffff) | UInt64.random(in: 0x3c0...0x43f, using: &random) << 52
    default: return random.next()
    }
  }

  mutating func randomSIMDRegister() -> UInt128 {
    var value: UInt128 = 0
    if random.chance(50) {
      for lane in 0..<4 { value |= UInt128(singleLane()) << (32 * lane) }
    } else if random.chance(80) {
      for lane in 0..<2 { value |= UInt128(doubleLane()) << (64 * lane) }
    } else {
      value = UInt128(random.next()) << 64 | UInt128(random.next())
    }
    return value
  }

  mutating func randomizeSIMDState() {
    for index in 0..<16 { state.setXMM(index, randomSIMDRegister()) }
    var mxcsr: UInt32 = 0x1f80
    mxcsr |= UInt32.random(in: 0...3, using: &random) << 13  // RC
    if random.chance(20) { mxcsr |= 1 << 15 }  // FTZ
    if random.chance(20) { mxcsr |= 1 << 6 }  // DAZ
    if random.chance(15) { mxcsr &= ~(UInt32(random.next() & 0x3f) << 7) }  // unmask some
    if random.chance(20) { mxcsr |= UInt32(random.next() & 0x3f) }  // flags already set
    state.mxcsr = mxcsr
  }
}
