/// The architectural state of one ARMv8-A processor running AArch64 at EL0 and EL1, as the
/// interpreter keeps it (EL2 and EL3 are not modelled: HVC and SMC go to the platform).
///
/// Register 31 is the zero register or the current stack pointer depending on the
/// instruction (ARM ARM C1.2.5), so X0-X30 are stored apart from the two stack pointers;
/// `sp` picks SP_EL0 or SP_EL1 from PSTATE.SPSel and the exception level.
public struct A64State: Sendable, Equatable {
  /// X0-X30.
  public var x: InlineArray<31, UInt64> = .init(repeating: 0)
  public var spEL0: UInt64 = 0
  public var spEL1: UInt64 = 0
  public var pc: UInt64 = 0
  public var pstate = PState()
  /// V0-V31, each as two 64-bit halves (low first): the 128-bit SIMD&FP registers.
  public var v: InlineArray<64, UInt64> = .init(repeating: 0)
  public var fpcr: UInt64 = 0
  public var fpsr: UInt64 = 0
  public var system = SystemRegisters()
  /// The processor is in WFI (or WFE with no event) until an interrupt or event.
  public var waiting = false
  /// The local exclusive monitor (ARM ARM B2.9.2): the address and size an LDXR/LDAXR/LDXP
  /// marked, nil when it is in the Open Access state.
  public var exclusive: ExclusiveMark?
  /// The event register that WFE consumes and SEV/SEVL and exception returns set (D1.16.1).
  public var eventRegister = false

  public init() {}

  /// The stack pointer register 31 names in instructions that take SP (ARM ARM D1.6.2).
  @inline(__always) public var sp: UInt64 {
    get { pstate.spSel && pstate.el != 0 ? spEL1 : spEL0 }
    set {
      if pstate.spSel && pstate.el != 0 { spEL1 = newValue } else { spEL0 = newValue }
    }
  }

  /// Writes register `n`; a write to 31 (XZR) is discarded.
  @inline(__always) public mutating func setRegister(_ n: UInt8, _ value: UInt64) {
    if n != 31 { x[Int(n)] = value }
  }

  /// Writes register `n` where 31 is the stack pointer.
  @inline(__always) public mutating func setRegisterOrSP(_ n: UInt8, _ value: UInt64) {
    if n == 31 { sp = value } else { x[Int(n)] = value }
  }

  /// The low 64 bits of V`n` (D`n`), and the high half.
  @inline(__always) public func vLow(_ n: UInt8) -> UInt64 { v[Int(n) &* 2] }
  @inline(__always) public func vHigh(_ n: UInt8) -> UInt64 { v[Int(n) &* 2 &+ 1] }
  @inline(__always) public mutating func setV(_ n: UInt8, low: UInt64, high: UInt64) {
    v[Int(n) &* 2] = low
    v[Int(n) &* 2 &+ 1] = high
  }

  public static func == (a: A64State, b: A64State) -> Bool {
    for i in 0..<31 where a.x[i] != b.x[i] { return false }
    for i in 0..<64 where a.v[i] != b.v[i] { return false }
    return a.spEL0 == b.spEL0 && a.spEL1 == b.spEL1 && a.pc == b.pc && a.pstate == b.pstate
      && a.fpcr == b.fpcr && a.fpsr == b.fpsr && a.system == b.system && a.waiting == b.waiting
      && a.exclusive == b.exclusive && a.eventRegister == b.eventRegister
  }
}

/// What the local exclusive monitor holds after a load-exclusive.
public struct ExclusiveMark: Sendable, Equatable {
  /// The physical address of the first byte marked.
  public var address: UInt64
  /// How many bytes: 1-8, or 16 for a pair of doublewords.
  public var size: UInt8
}

/// PSTATE as AArch64 sees it (ARM ARM D1.7): the condition flags, the interrupt masks, the
/// software-step and illegal-execution bits, the exception level and the stack pointer choice.
public struct PState: Sendable, Equatable {
  /// N, Z, C, V in bits 31-28, where SPSR and NZCV keep them.
  public var nzcv: UInt32 = 0
  /// D, A, I, F in bits 9-6, as in SPSR and DAIF.
  public var daif: UInt32 = 0x3c0
  public var ss = false
  public var il = false
  /// The exception level, 0 or 1.
  public var el: UInt8 = 1
  /// SPSel: at EL1, true uses SP_EL1, false SP_EL0.
  public var spSel = true

  public init() {}

  public static let n: UInt32 = 1 << 31
  public static let z: UInt32 = 1 << 30
  public static let c: UInt32 = 1 << 29
  public static let v: UInt32 = 1 << 28
  public static let d: UInt32 = 1 << 9
  public static let a: UInt32 = 1 << 8
  public static let i: UInt32 = 1 << 7
  public static let f: UInt32 = 1 << 6

  /// PSTATE as an SPSR_ELx value for AArch64 (ARM ARM C5.2.18): M[3:0] = EL << 2 | SPSel.
  public var spsr: UInt64 {
    var value = UInt64(nzcv & 0xf000_0000) | UInt64(daif & 0x3c0)
    if ss { value |= 1 << 21 }
    if il { value |= 1 << 20 }
    value |= UInt64(el) << 2 | (spSel ? 1 : 0)
    return value
  }

  /// The mode field M[4:0] an SPSR must hold to return to AArch64 EL0t, EL1t or EL1h.
  public static func isLegalReturn(_ spsr: UInt64) -> Bool {
    let mode = spsr & 0x1f
    return mode == 0b00000 || mode == 0b00100 || mode == 0b00101
  }

  /// Restores PSTATE from an SPSR (ERET, exception return).
  public mutating func restore(_ spsr: UInt64) {
    nzcv = UInt32(truncatingIfNeeded: spsr) & 0xf000_0000
    daif = UInt32(truncatingIfNeeded: spsr) & 0x3c0
    ss = spsr & (1 << 21) != 0
    il = spsr & (1 << 20) != 0
    el = UInt8((spsr >> 2) & 3)
    spSel = spsr & 1 != 0
  }
}
