/// The flags the Intel SDM (Vol. 2, each instruction's "Flags Affected") leaves undefined, per
/// instruction, in one place, so that a differential tester can mask exactly these when it
/// compares the interpreter with hardware. Everything not listed is defined and must match.
///
/// | instruction | undefined | SDM Vol. 2 entry, "Flags Affected" |
/// |-------------|-----------|--------------------------------------|
/// | AND OR XOR TEST | AF | AND, OR, XOR, TEST |
/// | MUL, IMUL (all forms) | SF ZF AF PF | MUL, IMUL |
/// | DIV, IDIV | CF OF SF ZF AF PF | DIV, IDIV |
/// | SHL SAL SHR SAR, count ≠ 0 | AF; OF unless count = 1 | SAL/SAR/SHL/SHR |
/// | SHL SHR, 8/16-bit operand, count ≥ width | CF too | SAL/SAR/SHL/SHR ("count ≥ size") |
/// | ROL ROR RCL RCR, count ≠ 1 | OF (none when the masked count is 0) | RCL/RCR/ROL/ROR |
/// | SHLD SHRD, count ≠ 0 | AF; OF unless count = 1; all six (and the result) when count > width | SHLD, SHRD |
/// | BT BTS BTR BTC | OF SF AF PF | BT, BTS, BTR, BTC |
/// | BSF BSR | CF OF SF AF PF | BSF, BSR |
/// | DAA DAS | OF | DAA, DAS |
/// | AAA AAS | OF SF ZF PF | AAA, AAS |
/// | AAM AAD | OF AF CF | AAM, AAD |
/// | everything else implemented | none | |
///
/// Results that are undefined, not flags: BSF/BSR's destination when the source is 0 (both
/// vendors keep it; so do we), BSWAP with a 16-bit operand, SHLD/SHRD past a 16-bit width.
public enum UndefinedFlags {
  static let c = RFlagsBit.carry
  static let p = RFlagsBit.parity
  static let a = RFlagsBit.auxiliaryCarry
  static let z = RFlagsBit.zero
  static let s = RFlagsBit.sign
  static let o = RFlagsBit.overflow

  /// The RFLAGS bits undefined after `instruction` ran with count register CL = `cl` (shifts
  /// by CL need it; pass anything for other instructions).
  public static func mask(for instruction: DecodedInstruction, cl: UInt8 = 0) -> UInt64 {
    switch instruction.operation {
    case .aluRmReg, .aluRegRm, .aluRmImm:
      return [1, 4, 6].contains(instruction.sub) ? a : 0
    case .testRmReg, .testRmImm: return a
    case .mulRm, .imulRm, .imulRegRm, .imulRegRmImm: return s | z | a | p
    case .divRm, .idivRm: return c | o | s | z | a | p
    case .btRmReg, .btRmImm: return o | s | a | p
    case .bsf, .bsr: return c | o | s | a | p
    case .daa, .das: return o
    case .aaa, .aas: return o | s | z | p
    case .aam, .aad: return o | a | c
    case .shiftRm, .shld, .shrd:
      let raw = instruction.has(DecodedInstruction.Flag.countInCL) ? UInt64(cl) : instruction.immediate
      let count = raw & (instruction.operandSize == 8 ? 0x3f : 0x1f)
      if count == 0 { return 0 }
      let width = UInt64(instruction.operandSize) * 8
      if instruction.operation != .shiftRm {
        if count > width { return c | o | s | z | a | p }
        return a | (count == 1 ? 0 : o)
      }
      let rotate = instruction.sub < 4
      var mask: UInt64 = count == 1 ? 0 : o
      if !rotate {
        mask |= a
        if count >= width && (instruction.sub == 4 || instruction.sub == 5 || instruction.sub == 6) { mask |= c }
      }
      return mask
    default:
      return 0
    }
  }
}
