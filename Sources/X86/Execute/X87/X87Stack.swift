/// The x87 register stack (SDM Vol. 1, 8.1): TOP in FSW bits 13:11, ST(i) = physical
/// register (TOP + i) mod 8, the tag word (kept abridged in `FloatingPointState.ftw`, one
/// valid bit per physical register, as FXSAVE stores it), and conversions between the
/// 80-bit register format and Swift's `Float80`, which has the same layout on x86-64.
enum FSWBit {
  static let invalid: UInt16 = 1 << 0
  static let stackFault: UInt16 = 1 << 6
  static let errorSummary: UInt16 = 1 << 7
  static let c0: UInt16 = 1 << 8
  static let c1: UInt16 = 1 << 9
  static let c2: UInt16 = 1 << 10
  static let c3: UInt16 = 1 << 14
  static let busy: UInt16 = 1 << 15
  static let conditions: UInt16 = c0 | c1 | c2 | c3
}

extension X87Register {
  /// The value as `Float80`. Unnormals (exponent nonzero, integer bit clear) are unsupported
  /// formats that x87 arithmetic treats as invalid operands: they become the indefinite QNaN.
  /// Pseudo-denormals (exponent 0, integer bit set) have the value of exponent 1.
  var float80: Float80 {
    let sign: FloatingPointSign = signExponent & 0x8000 != 0 ? .minus : .plus
    let exponent = UInt(signExponent & 0x7fff)
    let integerBit = significand >> 63 != 0
    if exponent != 0 && !integerBit { return -Float80.nan }
    let fraction = significand & ~(1 << 63)
    return Float80(
      sign: sign, exponentBitPattern: exponent == 0 && integerBit ? 1 : exponent, significandBitPattern: fraction)
  }

  init(_ value: Float80) {
    let exponent = UInt16(value.exponentBitPattern)
    self.init(
      significand: value.significandBitPattern | (exponent != 0 ? 1 << 63 : 0),
      signExponent: (value.sign == .minus ? 0x8000 : 0) | exponent)
  }
}

extension X86Core {
  @inline(__always) var x87Top: Int { mutating get { Int((state.fpu.fsw >> 11) & 7) } }

  mutating func setX87Top(_ top: Int) {
    state.fpu.fsw = state.fpu.fsw & ~(7 << 11) | UInt16(top & 7) << 11
  }

  @inline(__always) mutating func x87Physical(_ i: Int) -> Int { (x87Top + i) & 7 }

  mutating func x87IsEmpty(_ i: Int) -> Bool { state.fpu.ftw & (1 << UInt8(x87Physical(i))) == 0 }

  /// ST(i) without checks (the caller checked for an empty register).
  mutating func st(_ i: Int) -> Float80 { state.fpu.st[x87Physical(i)].float80 }

  mutating func setST(_ i: Int, _ value: Float80) {
    let physical = x87Physical(i)
    state.fpu.st[physical] = X87Register(value)
    state.fpu.ftw |= 1 << UInt8(physical)
  }

  mutating func x87Pop() {
    state.fpu.ftw &= ~(1 << UInt8(x87Physical(0)))
    setX87Top(x87Top + 1)
  }

  /// Pushes `value`, or answers stack overflow (the new ST0 is not empty) with IE, SF and
  /// C1 = 1, pushing the indefinite when IE is masked (SDM Vol. 1, 8.5.1.1). False when an
  /// unmasked overflow left the stack unchanged.
  @discardableResult
  mutating func x87Push(_ value: Float80) -> Bool {
    let newTop = (x87Top + 7) & 7
    if state.fpu.ftw & (1 << UInt8(newTop)) != 0 {
      state.fpu.fsw |= FSWBit.invalid | FSWBit.stackFault | FSWBit.c1
      if !x87Masked(FSWBit.invalid) {
        updateErrorSummary()
        return false
      }
      setX87Top(newTop)
      setST(0, -Float80.nan)
      return true
    }
    setX87Top(newTop)
    setST(0, value)
    return true
  }

  /// Stack underflow (an empty source register): IE, SF, C1 = 0 (SDM Vol. 1, 8.5.1.1).
  /// True when IE is masked and the caller should go on with the indefinite as its result.
  mutating func x87Underflow() -> Bool {
    state.fpu.fsw = state.fpu.fsw & ~FSWBit.c1 | FSWBit.invalid | FSWBit.stackFault
    if x87Masked(FSWBit.invalid) { return true }
    updateErrorSummary()
    return false
  }

  @inline(__always) mutating func x87Masked(_ exception: UInt16) -> Bool { state.fpu.fcw & exception != 0 }

  /// ES and B follow "some exception flag is set whose mask is clear" (SDM Vol. 1, 8.1.3.1).
  mutating func updateErrorSummary() {
    let pending = state.fpu.fsw & ~state.fpu.fcw & 0x3f != 0
    state.fpu.fsw =
      pending ? state.fpu.fsw | FSWBit.errorSummary | FSWBit.busy : state.fpu.fsw & ~(FSWBit.errorSummary | FSWBit.busy)
  }

  /// The rounding control and underflow mask as the shared IEEE code reads them.
  mutating func x87Environment() -> FloatEnvironment {
    var env = FloatEnvironment(mxcsr: 0x1f80)
    env.rounding = RoundingMode(rawValue: UInt32((state.fpu.fcw >> 10) & 3)) ?? .nearest
    env.underflowMasked = state.fpu.fcw & (1 << 4) != 0
    env.masks = MXCSRBit.flags  // the SSE rules for PE with unmasked OE/UE do not apply
    env.x87 = true
    return env
  }

  /// Commits an operation's flags to FSW. Returns false when an unmasked exception means the
  /// result must not be stored (the pre-computation ones always; this model also withholds
  /// the result for unmasked OE/UE rather than storing the SDM's biased value, a known gap;
  /// an unmasked PE stores it). The #MF
  /// itself comes at the next waiting x87 instruction (SDM Vol. 1, 8.6).
  mutating func commitX87Flags(_ flags: FloatFlags) -> Bool {
    let masks = UInt32(state.fpu.fcw & 0x3f)
    var pre = flags.pre
    // Within one operation an invalid operation or a division by zero hides a denormal operand.
    if pre & (MXCSRBit.invalid | MXCSRBit.divideByZero) != 0 { pre &= ~MXCSRBit.denormal }
    let raised = pre & ~masks != 0 ? pre : pre | flags.post
    state.fpu.fsw |= UInt16(raised)
    updateErrorSummary()
    // An unmasked precision exception still stores the rounded result (only the pending #MF
    // remains); unmasked OE/UE would store a biased result, which this model does not.
    return raised & ~masks & ~MXCSRBit.precision == 0
  }

  /// Full tag word (FNSTENV/FNSAVE): 00 valid, 01 zero, 10 special, 11 empty, per physical register.
  mutating func fullTagWord() -> UInt16 {
    var tags: UInt16 = 0
    for physical in 0..<8 {
      let tag: UInt16
      if state.fpu.ftw & (1 << UInt8(physical)) == 0 {
        tag = 3
      } else {
        let register = state.fpu.st[physical]
        let exponent = register.signExponent & 0x7fff
        if exponent == 0 {
          tag = register.significand == 0 ? 1 : 2
        } else if exponent == 0x7fff || register.significand >> 63 == 0 {
          tag = 2
        } else {
          tag = 0
        }
      }
      tags |= tag << UInt16(physical * 2)
    }
    return tags
  }
}
