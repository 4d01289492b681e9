/// SSE/SSE2 forms (SDM Vol. 2, appendix A, table A-3): every implemented opcode with each of
/// its mandatory prefixes. RCPPS/RSQRTPS (and SS) are left out: their results are
/// approximations the SDM does not define bit for bit. MASKMOVDQU is left out: it stores
/// through RDI, which the generator does not aim at the window for it.
extension InstructionForm {
  static func simd(
    _ mnemonic: String, _ opcode: [UInt8], access: Int, _ size: Size = .none, _ immediate: Immediate = .none,
    digit: UInt8? = nil, memoryOnly: Bool = false, registerOnly: Bool = false
  ) -> InstructionForm {
    var form = InstructionForm(
      mnemonic, opcode, size, .modrm(digit: digit), immediate, memoryOnly: memoryOnly, registerOnly: registerOnly)
    form.vectorAccess = access
    return form
  }

  public static let simdForms: [InstructionForm] = {
    var forms: [InstructionForm] = []
    // Packed/scalar FP arithmetic in four flavours: PS (none), PD (66), SS (F3), SD (F2).
    let flavours: [(String, [UInt8], Int)] = [("ps", [], 16), ("pd", [0x66], 16), ("ss", [0xf3], 4), ("sd", [0xf2], 8)]
    for (name, op) in [
      ("sqrt", 0x51), ("add", 0x58), ("mul", 0x59), ("sub", 0x5c), ("min", 0x5d), ("div", 0x5e), ("max", 0x5f),
    ] {
      for (suffix, prefix, access) in flavours {
        forms.append(.simd(name + suffix, prefix + [0x0f, UInt8(op)], access: access))
      }
    }
    for (suffix, prefix, access) in flavours {
      forms.append(.simd("cmp" + suffix, prefix + [0x0f, 0xc2], access: access, .none, .byte))
    }
    // Logic, unpacks, shuffles (PS and PD).
    for (name, op) in [("and", 0x54), ("andn", 0x55), ("or", 0x56), ("xor", 0x57), ("unpckl", 0x14), ("unpckh", 0x15)] {
      forms.append(.simd(name + "ps", [0x0f, UInt8(op)], access: 16))
      forms.append(.simd(name + "pd", [0x66, 0x0f, UInt8(op)], access: 16))
    }
    forms.append(.simd("shufps", [0x0f, 0xc6], access: 16, .none, .byte))
    forms.append(.simd("shufpd", [0x66, 0x0f, 0xc6], access: 16, .none, .byte))
    // Moves.
    forms += [
      .simd("movups", [0x0f, 0x10], access: 16), .simd("movups", [0x0f, 0x11], access: 16),
      .simd("movupd", [0x66, 0x0f, 0x10], access: 16), .simd("movupd", [0x66, 0x0f, 0x11], access: 16),
      .simd("movss", [0xf3, 0x0f, 0x10], access: 4), .simd("movss", [0xf3, 0x0f, 0x11], access: 4),
      .simd("movsd", [0xf2, 0x0f, 0x10], access: 8), .simd("movsd", [0xf2, 0x0f, 0x11], access: 8),
      .simd("movlps", [0x0f, 0x12], access: 8), .simd("movlps", [0x0f, 0x13], access: 8, memoryOnly: true),
      .simd("movlpd", [0x66, 0x0f, 0x12], access: 8, memoryOnly: true),
      .simd("movlpd", [0x66, 0x0f, 0x13], access: 8, memoryOnly: true),
      .simd("movhps", [0x0f, 0x16], access: 8), .simd("movhps", [0x0f, 0x17], access: 8, memoryOnly: true),
      .simd("movhpd", [0x66, 0x0f, 0x16], access: 8, memoryOnly: true),
      .simd("movhpd", [0x66, 0x0f, 0x17], access: 8, memoryOnly: true),
      .simd("movaps", [0x0f, 0x28], access: 16), .simd("movaps", [0x0f, 0x29], access: 16),
      .simd("movapd", [0x66, 0x0f, 0x28], access: 16), .simd("movapd", [0x66, 0x0f, 0x29], access: 16),
      .simd("movntps", [0x0f, 0x2b], access: 16, memoryOnly: true),
      .simd("movntpd", [0x66, 0x0f, 0x2b], access: 16, memoryOnly: true),
      .simd("movmskps", [0x0f, 0x50], access: 16, registerOnly: true),
      .simd("movmskpd", [0x66, 0x0f, 0x50], access: 16, registerOnly: true),
      .simd("movd", [0x66, 0x0f, 0x6e], access: 8, .wide), .simd("movd", [0x66, 0x0f, 0x7e], access: 8, .wide),
      .simd("movdqa", [0x66, 0x0f, 0x6f], access: 16), .simd("movdqa", [0x66, 0x0f, 0x7f], access: 16),
      .simd("movdqu", [0xf3, 0x0f, 0x6f], access: 16), .simd("movdqu", [0xf3, 0x0f, 0x7f], access: 16),
      .simd("movq", [0xf3, 0x0f, 0x7e], access: 8), .simd("movq", [0x66, 0x0f, 0xd6], access: 8),
      .simd("movntdq", [0x66, 0x0f, 0xe7], access: 16, memoryOnly: true),
      .simd("pinsrw", [0x66, 0x0f, 0xc4], access: 2, .none, .byte),
      .simd("pextrw", [0x66, 0x0f, 0xc5], access: 16, .none, .byte, registerOnly: true),
      .simd("pmovmskb", [0x66, 0x0f, 0xd7], access: 16, registerOnly: true),
    ]
    // Conversions.
    forms += [
      .simd("cvtsi2ss", [0xf3, 0x0f, 0x2a], access: 8, .wide), .simd("cvtsi2sd", [0xf2, 0x0f, 0x2a], access: 8, .wide),
      .simd("cvttss2si", [0xf3, 0x0f, 0x2c], access: 4, .wide),
      .simd("cvttsd2si", [0xf2, 0x0f, 0x2c], access: 8, .wide),
      .simd("cvtss2si", [0xf3, 0x0f, 0x2d], access: 4, .wide), .simd("cvtsd2si", [0xf2, 0x0f, 0x2d], access: 8, .wide),
      .simd("cvtps2pd", [0x0f, 0x5a], access: 8), .simd("cvtpd2ps", [0x66, 0x0f, 0x5a], access: 16),
      .simd("cvtss2sd", [0xf3, 0x0f, 0x5a], access: 4), .simd("cvtsd2ss", [0xf2, 0x0f, 0x5a], access: 8),
      .simd("cvtdq2ps", [0x0f, 0x5b], access: 16), .simd("cvtps2dq", [0x66, 0x0f, 0x5b], access: 16),
      .simd("cvttps2dq", [0xf3, 0x0f, 0x5b], access: 16),
      .simd("cvtdq2pd", [0xf3, 0x0f, 0xe6], access: 8), .simd("cvttpd2dq", [0x66, 0x0f, 0xe6], access: 16),
      .simd("cvtpd2dq", [0xf2, 0x0f, 0xe6], access: 16),
      .simd("ucomiss", [0x0f, 0x2e], access: 4), .simd("ucomisd", [0x66, 0x0f, 0x2e], access: 8),
      .simd("comiss", [0x0f, 0x2f], access: 4), .simd("comisd", [0x66, 0x0f, 0x2f], access: 8),
    ]
    // Integer SIMD (66 0F xx, m128).
    let integer: [(String, UInt8)] = [
      ("punpcklbw", 0x60), ("punpcklwd", 0x61), ("punpckldq", 0x62), ("packsswb", 0x63), ("pcmpgtb", 0x64),
      ("pcmpgtw", 0x65), ("pcmpgtd", 0x66), ("packuswb", 0x67), ("punpckhbw", 0x68), ("punpckhwd", 0x69),
      ("punpckhdq", 0x6a), ("packssdw", 0x6b), ("punpcklqdq", 0x6c), ("punpckhqdq", 0x6d), ("pcmpeqb", 0x74),
      ("pcmpeqw", 0x75), ("pcmpeqd", 0x76), ("psrlw", 0xd1), ("psrld", 0xd2), ("psrlq", 0xd3), ("paddq", 0xd4),
      ("pmullw", 0xd5), ("psubusb", 0xd8), ("psubusw", 0xd9), ("pminub", 0xda), ("pand", 0xdb), ("paddusb", 0xdc),
      ("paddusw", 0xdd), ("pmaxub", 0xde), ("pandn", 0xdf), ("pavgb", 0xe0), ("psraw", 0xe1), ("psrad", 0xe2),
      ("pavgw", 0xe3), ("pmulhuw", 0xe4), ("pmulhw", 0xe5), ("psubsb", 0xe8), ("psubsw", 0xe9), ("pminsw", 0xea),
      ("por", 0xeb), ("paddsb", 0xec), ("paddsw", 0xed), ("pmaxsw", 0xee), ("pxor", 0xef), ("psllw", 0xf1),
      ("pslld", 0xf2), ("psllq", 0xf3), ("pmuludq", 0xf4), ("pmaddwd", 0xf5), ("psadbw", 0xf6), ("psubb", 0xf8),
      ("psubw", 0xf9), ("psubd", 0xfa), ("psubq", 0xfb), ("paddb", 0xfc), ("paddw", 0xfd), ("paddd", 0xfe),
    ]
    for (name, op) in integer { forms.append(.simd(name, [0x66, 0x0f, op], access: 16)) }
    forms += [
      .simd("pshufd", [0x66, 0x0f, 0x70], access: 16, .none, .byte),
      .simd("pshuflw", [0xf2, 0x0f, 0x70], access: 16, .none, .byte),
      .simd("pshufhw", [0xf3, 0x0f, 0x70], access: 16, .none, .byte),
    ]
    for (name, op, digit) in [
      ("psrlw", 0x71, 2), ("psraw", 0x71, 4), ("psllw", 0x71, 6), ("psrld", 0x72, 2), ("psrad", 0x72, 4),
      ("pslld", 0x72, 6), ("psrlq", 0x73, 2), ("psrldq", 0x73, 3), ("psllq", 0x73, 6), ("pslldq", 0x73, 7),
    ] {
      forms.append(
        .simd(name, [0x66, 0x0f, UInt8(op)], access: 16, .none, .byte, digit: UInt8(digit), registerOnly: true))
    }
    // Group 15 and MOVNTI.
    forms += [
      .simd("ldmxcsr", [0x0f, 0xae], access: 4, digit: 2, memoryOnly: true),
      .simd("stmxcsr", [0x0f, 0xae], access: 4, digit: 3, memoryOnly: true),
      .simd("lfence", [0x0f, 0xae], access: 16, digit: 5, registerOnly: true),
      .simd("mfence", [0x0f, 0xae], access: 16, digit: 6, registerOnly: true),
      .simd("sfence", [0x0f, 0xae], access: 16, digit: 7, registerOnly: true),
      .simd("fxsave", [0x0f, 0xae], access: 512, digit: 0, memoryOnly: true),
      .simd("fxrstor", [0x0f, 0xae], access: 512, digit: 1, memoryOnly: true),
      .init("movnti", [0x0f, 0xc3], .wide, .modrm(digit: nil), memoryOnly: true),
    ]
    return forms
  }()
}
