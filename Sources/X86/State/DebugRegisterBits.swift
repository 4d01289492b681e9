/// DR6 and DR7 bits (SDM Vol. 3, 18.2.3 and 18.2.4; AMD APM Vol. 2, 13.1.1).
public enum DebugRegisterBit {
  // MARK: DR6, the debug status register

  /// B0-B3: breakpoint condition n was met. A #DB rewrites these four and only ORs in the rest
  /// ("certain debug exceptions may clear bits 0-3; the remaining contents of DR6 are never
  /// cleared by the processor", SDM Vol. 3, 18.2.3).
  public static let dr6Breakpoints: UInt64 = 0xf
  /// BD: the next instruction accesses a debug register while DR7.GD is set.
  public static let dr6BD: UInt64 = 1 << 13
  /// BS: single step (RFLAGS.TF).
  public static let dr6BS: UInt64 = 1 << 14
  /// BT: task switch to a TSS with its T flag set (no task switches are modelled).
  public static let dr6BT: UInt64 = 1 << 15
  /// The DR6 bits software can write; every other bit reads fixed.
  public static let dr6Writable: UInt64 = dr6Breakpoints | dr6BD | dr6BS | dr6BT
  /// The bits that read 1: 4-11 and 16-31 (RTM and bus-lock detection, active low, are not
  /// supported, so they read 1 too). Bit 12 and 63:32 read 0. DR6 is 0xffff0ff0 at reset.
  public static let dr6FixedOnes: UInt64 = 0xffff_0ff0

  /// CR4.DE (SDM Vol. 3, 2.5), kept here so this file owns everything the debug unit reads:
  /// DR4/DR5 references raise #UD instead of aliasing DR6/DR7; R/W = 10 means I/O breakpoints.
  public static let cr4DE: UInt64 = 1 << 3

  // MARK: DR7, the debug control register

  /// L0 G0 L1 G1 L2 G2 L3 G3: slot n is enabled when either of its two bits is set.
  public static let dr7Enables: UInt64 = 0xff
  /// GD: general detect, a MOV DR raises #DB (BD) instead of executing.
  public static let dr7GD: UInt64 = 1 << 13
  /// Bit 10 reads 1; 11, 12, 14 and 15 read 0; 63:32 must be written as 0 in 64-bit mode.
  public static let dr7FixedOnes: UInt64 = 0x400
  /// L0-G3, LE, GE, GD and the R/W and LEN fields.
  public static let dr7Writable: UInt64 = 0xffff_23ff

  /// R/Wn values: break on instruction execution, data writes, I/O (CR4.DE), data reads or writes.
  public static let conditionExecute: UInt64 = 0
  public static let conditionWrite: UInt64 = 1
  public static let conditionIO: UInt64 = 2
  public static let conditionReadWrite: UInt64 = 3

  /// Slot n's R/W field (`condition…`).
  @inline(__always)
  public static func condition(_ dr7: UInt64, slot: Int) -> UInt64 { (dr7 >> (16 + 4 * UInt64(slot))) & 3 }

  /// Slot n's length in bytes from its LEN field: 00 = 1, 01 = 2, 11 = 4, 10 = 8 (8 is
  /// defined in IA-32e mode; SDM Vol. 3, 18.2.5).
  @inline(__always)
  public static func length(_ dr7: UInt64, slot: Int) -> UInt64 {
    switch (dr7 >> (18 + 4 * UInt64(slot))) & 3 {
    case 0: 1
    case 1: 2
    case 2: 8
    default: 4
    }
  }
}
