/// SplitMix64 (Steele, Lea and Flood, 2014): a seeded generator, so that a seed names the
/// same instruction stream on every machine and every run (the standard library's generator
/// cannot be seeded).
public struct GeneratorRandom: RandomNumberGenerator, Sendable {
  private var state: UInt64

  public init(seed: UInt64) { state = seed }

  public mutating func next() -> UInt64 {
    state &+= 0x9e37_79b9_7f4a_7c15
    var z = state
    z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
    z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
    return z ^ (z >> 31)
  }

  /// True with probability `percent`/100.
  mutating func chance(_ percent: Int) -> Bool { Int.random(in: 0..<100, using: &self) < percent }

  mutating func pick<T>(_ choices: [T]) -> T { choices[Int.random(in: 0..<choices.count, using: &self)] }

  /// A register value: half the time an edge value (zero, one, all ones, sign bits of every
  /// width, shift counts at their boundaries), otherwise random at a random width.
  mutating func edgyValue() -> UInt64 {
    if chance(50) { return pick(Self.edges) }
    switch Int.random(in: 0..<4, using: &self) {
    case 0: return next() & 0xff
    case 1: return next() & 0xffff
    case 2: return next() & 0xffff_ffff
    default: return next()
    }
  }

  static let edges: [UInt64] = [
    0, 1, 2, 3, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 255, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff,
    0x1_0000, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, 0x1_0000_0000, 0x7fff_ffff_ffff_ffff, 0x8000_0000_0000_0000,
    .max, .max - 1, 0xffff_ffff_ffff_ff80, 0xffff_ffff_ffff_8000, 0xffff_ffff_8000_0000, 0x5555_5555_5555_5555,
    0xaaaa_aaaa_aaaa_aaaa, 0x0123_4567_89ab_cdef,
  ]
}
