/// Lazily computed arithmetic flags.
///
/// Most instructions that set flags are followed by another that overwrites them before any
/// reads them, so ADD/SUB/logic/INC/DEC/NEG/CMP/TEST only record their operands and result
/// here (three stores), and CF..OF are derived when something asks: a Jcc, SETcc, PUSHF,
/// or a reader of `X86State.rflags`. Values are stored already truncated to the operand size.
/// Instructions with rarer flag rules (shifts, multiplies, bit ops) write flags eagerly.
struct LazyFlags: Sendable, Equatable {
  enum Op: UInt8, Sendable {
    /// The status flags are in `X86State.flagBits`.
    case none
    case add, adc, sub, sbb
    /// AND/OR/XOR/TEST: CF=OF=0, AF undefined (we give 0).
    case logic
    /// INC/DEC: like ADD/SUB of 1, with CF kept in `carryIn`.
    case inc, dec
    /// SHL/SHR/SAR by a nonzero count (the block loop's `fastShift`): CF in `carryIn`, OF in
    /// `source` (0 or 1), AF clear, as the eager formulas of Shifts.swift give them.
    case shift
  }

  var op: Op = .none
  /// Operand size in bytes: 1, 2, 4 or 8.
  var size: UInt8 = 8
  /// ADC/SBB: the carry that went in. INC/DEC: CF before the instruction (which they keep).
  var carryIn = false
  var result: UInt64 = 0
  var destination: UInt64 = 0
  var source: UInt64 = 0

  @inline(__always) var signBit: UInt64 { 1 &<< (UInt64(size) &* 8 &- 1) }

  @inline(__always) var carry: Bool {
    switch op {
    case .none, .logic: false
    case .add: result < destination
    case .adc: carryIn ? result <= destination : result < destination
    case .sub: destination < source
    case .sbb: carryIn ? destination <= source : destination < source
    case .inc, .dec, .shift: carryIn
    }
  }

  @inline(__always) var overflow: Bool {
    switch op {
    case .none, .logic: false
    case .add, .adc, .inc: (destination ^ result) & (source ^ result) & signBit != 0
    case .sub, .sbb, .dec: (destination ^ source) & (destination ^ result) & signBit != 0
    case .shift: source != 0
    }
  }

  /// CF as `carry` gives it, for INC/DEC (which keep CF): the records that precede them in
  /// loops (ADD, SUB, INC, DEC, shifts) first. The optimiser still makes a jump table of the
  /// chain, but a shorter path than `carry`'s: 0.6% fewer instructions on the compute guest
  /// (cachegrind); a branch-free version cost 2% more.
  @inline(__always) func quickCarry(flagBits: UInt64) -> Bool {
    if op == .add { return result < destination }
    if op == .sub { return destination < source }
    if op == .inc || op == .dec || op == .shift { return carryIn }
    return op == .none ? flagBits & RFlagsBit.carry != 0 : carry
  }

  @inline(__always) var zero: Bool { result == 0 }
  @inline(__always) var sign: Bool { result & signBit != 0 }
  @inline(__always) var parity: Bool { evenParity(result) }
  @inline(__always) var auxiliaryCarry: Bool {
    op == .logic || op == .shift ? false : (destination ^ source ^ result) & 0x10 != 0
  }

  /// Evaluates condition code `cc` (the low nibble of Jcc/SETcc/CMOVcc; SDM Vol. 1, B.1).
  /// Lives here, on the 40-byte lazy record, not on `X86State`: a non-inlined method on the
  /// 1 KiB state made the optimiser copy all of it for every Jcc.
  @inline(__always)
  func condition(_ cc: UInt8, flagBits: UInt64) -> Bool {
    // CMP followed by a branch is the commonest pair: answer it straight from the operands.
    if op == .sub {
      let taken: Bool
      switch cc >> 1 {
      case 1: taken = destination < source
      case 2: taken = result == 0
      case 3: taken = destination <= source
      case 6:
        taken =
          Int64(bitPattern: signExtend(destination, size: size))
          < Int64(bitPattern: signExtend(source, size: size))
      case 7:
        taken =
          Int64(bitPattern: signExtend(destination, size: size))
          <= Int64(bitPattern: signExtend(source, size: size))
      default: return genericCondition(cc, flagBits: flagBits)
      }
      return taken != (cc & 1 != 0)
    }
    return genericCondition(cc, flagBits: flagBits)
  }

  @inline(__always)
  private func genericCondition(_ cc: UInt8, flagBits: UInt64) -> Bool {
    let live = op != .none
    let taken: Bool
    switch cc >> 1 {
    case 0: taken = live ? overflow : flagBits & RFlagsBit.overflow != 0
    case 1: taken = live ? carry : flagBits & RFlagsBit.carry != 0
    case 2: taken = live ? zero : flagBits & RFlagsBit.zero != 0
    case 3: taken = live ? carry || zero : flagBits & (RFlagsBit.carry | RFlagsBit.zero) != 0
    case 4: taken = live ? sign : flagBits & RFlagsBit.sign != 0
    case 5: taken = live ? parity : flagBits & RFlagsBit.parity != 0
    case 6: taken = live ? sign != overflow : (flagBits & RFlagsBit.sign != 0) != (flagBits & RFlagsBit.overflow != 0)
    default:
      taken =
        live
        ? zero || sign != overflow
        : flagBits & RFlagsBit.zero != 0 || (flagBits & RFlagsBit.sign != 0) != (flagBits & RFlagsBit.overflow != 0)
    }
    return taken != (cc & 1 != 0)
  }

  /// CF PF AF ZF SF OF in their RFLAGS positions.
  var statusFlags: UInt64 {
    (carry ? RFlagsBit.carry : 0) | (parity ? RFlagsBit.parity : 0)
      | (auxiliaryCarry ? RFlagsBit.auxiliaryCarry : 0) | (zero ? RFlagsBit.zero : 0)
      | (sign ? RFlagsBit.sign : 0) | (overflow ? RFlagsBit.overflow : 0)
  }
}

/// PF: set when the low byte of the result has an even number of 1 bits.
@inline(__always) func evenParity(_ value: UInt64) -> Bool {
  UInt8(truncatingIfNeeded: value).nonzeroBitCount & 1 == 0
}

/// The all-ones mask of an operand size in bytes.
@inline(__always) func sizeMask(_ size: UInt8) -> UInt64 {
  UInt64.max &>> (64 &- UInt64(size) &* 8)  // branchless: size 8 shifts by 0
}

/// Sign-extends the low `size` bytes of `value` to 64 bits.
@inline(__always) func signExtend(_ value: UInt64, size: UInt8) -> UInt64 {
  let shift = 64 &- UInt64(size) &* 8
  return UInt64(bitPattern: Int64(bitPattern: value &<< shift) &>> shift)
}

extension X86State {
  // Single flags, computed from the lazy record when there is one.
  @inline(__always) var cf: Bool { lazy.op == .none ? flagBits & RFlagsBit.carry != 0 : lazy.carry }
  @inline(__always) var zf: Bool { lazy.op == .none ? flagBits & RFlagsBit.zero != 0 : lazy.zero }
  @inline(__always) var sf: Bool { lazy.op == .none ? flagBits & RFlagsBit.sign != 0 : lazy.sign }
  @inline(__always) var of: Bool { lazy.op == .none ? flagBits & RFlagsBit.overflow != 0 : lazy.overflow }
  @inline(__always) var pf: Bool { lazy.op == .none ? flagBits & RFlagsBit.parity != 0 : lazy.parity }
  @inline(__always) var df: Bool { flagBits & RFlagsBit.direction != 0 }

  /// Records an arithmetic result for lazy flags (values already truncated to `size`).
  @inline(__always)
  mutating func setLazyFlags(
    _ op: LazyFlags.Op, size: UInt8, result: UInt64, destination: UInt64, source: UInt64, carryIn: Bool = false
  ) {
    lazy.op = op
    lazy.size = size
    lazy.result = result
    lazy.destination = destination
    lazy.source = source
    lazy.carryIn = carryIn
  }

  /// Turns lazy flags into bits, so that an instruction can then set some flags eagerly.
  @inline(__always)
  mutating func materializeFlags() {
    if lazy.op != .none {
      flagBits = (flagBits & ~RFlagsBit.status) | lazy.statusFlags
      lazy.op = .none
    }
  }

  /// Sets the given status flags eagerly; the others keep their values.
  @inline(__always)
  mutating func setFlag(_ bit: UInt64, _ value: Bool) {
    materializeFlags()
    flagBits = value ? flagBits | bit : flagBits & ~bit
  }

  /// Sets SF, ZF and PF from a result, as logic instructions and shifts define them.
  @inline(__always)
  mutating func setResultFlags(_ result: UInt64, size: UInt8) {
    materializeFlags()
    var bits = flagBits & ~(RFlagsBit.zero | RFlagsBit.sign | RFlagsBit.parity)
    let masked = result & sizeMask(size)
    if masked == 0 { bits |= RFlagsBit.zero }
    if masked & (1 &<< (UInt64(size) &* 8 &- 1)) != 0 { bits |= RFlagsBit.sign }
    if evenParity(masked) { bits |= RFlagsBit.parity }
    flagBits = bits
  }

  /// Writes all six status flags: SF, ZF and PF from `result`, CF and OF as given, AF clear
  /// (shifts and multiplies). The lazy record is dropped without being evaluated, since every
  /// flag it could give is overwritten (evaluating it showed as 3% of the compute benchmark).
  @inline(__always)
  mutating func setStatusFlags(result: UInt64, size: UInt8, carry: Bool, overflow: Bool) {
    lazy.op = .none
    var bits = flagBits & ~RFlagsBit.status
    let masked = result & sizeMask(size)
    if masked == 0 { bits |= RFlagsBit.zero }
    if masked & (1 &<< (UInt64(size) &* 8 &- 1)) != 0 { bits |= RFlagsBit.sign }
    if evenParity(masked) { bits |= RFlagsBit.parity }
    if carry { bits |= RFlagsBit.carry }
    if overflow { bits |= RFlagsBit.overflow }
    flagBits = bits
  }

  /// Evaluates condition code `cc` (see `LazyFlags.condition`).
  @inline(__always) func condition(_ cc: UInt8) -> Bool { lazy.condition(cc, flagBits: flagBits) }
}
