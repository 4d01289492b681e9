/// The forms the generator draws from: the general-purpose integer ISA of the one-byte and
/// 0F opcode maps that ring-3 64-bit code can run, plus a few that must fault (#UD for
/// opcodes invalid in 64-bit mode, #GP for privileged ones) so exceptions are compared too.
///
/// Refused, because in a live process they would change the process instead of faulting or
/// cannot be compared (see docs/ARCHITECTURE.md, "The hardware oracle"): SYSCALL, SYSENTER,
/// INT n, INT3, INT1, INTO is kept (it is #UD in 64-bit mode); far CALL/JMP/RET and IRET;
/// MOV and POP to segment registers, FS/GS overrides, WRFSBASE/WRGSBASE; CPUID, RDTSC(P),
/// RDPID, RDRAND, RDSEED, XGETBV (host- or time-dependent); LAR/LSL/VERR/VERW and the
/// descriptor-table instructions (UMIP); x87, SSE and AVX (not integer state).
extension InstructionForm {
  public static let all: [InstructionForm] = {
    var forms: [InstructionForm] = []
    // ALU: 00-3F in eight rows of six.
    let alu = ["add", "or", "adc", "sbb", "and", "sub", "xor", "cmp"]
    for (row, name) in alu.enumerated() {
      let base = UInt8(row * 8)
      let lock = name != "cmp"
      forms.append(.init(name, [base], .byte, .modrm(digit: nil), lockable: lock))
      forms.append(.init(name, [base + 1], .sized, .modrm(digit: nil), lockable: lock))
      forms.append(.init(name, [base + 2], .byte, .modrm(digit: nil)))
      forms.append(.init(name, [base + 3], .sized, .modrm(digit: nil)))
      forms.append(.init(name, [base + 4], .byte, .none, .byte))
      forms.append(.init(name, [base + 5], .sized, .none, .z))
      forms.append(.init(name, [0x80], .byte, .modrm(digit: UInt8(row)), .byte, lockable: lock))
      forms.append(.init(name, [0x81], .sized, .modrm(digit: UInt8(row)), .z, lockable: lock))
      forms.append(.init(name, [0x83], .sized, .modrm(digit: UInt8(row)), .byte, lockable: lock))
    }
    forms += [
      .init("push", [0x50], .stack, .opcodeRegister, special: .stack),
      .init("pop", [0x58], .stack, .opcodeRegister, special: .stack),
      .init("movsxd", [0x63], .sized, .modrm(digit: nil)),
      .init("push", [0x68], .stack, .none, .z, special: .stack),
      .init("push", [0x6a], .stack, .none, .byte, special: .stack),
      .init("imul", [0x69], .sized, .modrm(digit: nil), .z),
      .init("imul", [0x6b], .sized, .modrm(digit: nil), .byte),
      .init("test", [0x84], .byte, .modrm(digit: nil)),
      .init("test", [0x85], .sized, .modrm(digit: nil)),
      .init("xchg", [0x86], .byte, .modrm(digit: nil), lockable: true),
      .init("xchg", [0x87], .sized, .modrm(digit: nil), lockable: true),
      .init("mov", [0x88], .byte, .modrm(digit: nil)),
      .init("mov", [0x89], .sized, .modrm(digit: nil)),
      .init("mov", [0x8a], .byte, .modrm(digit: nil)),
      .init("mov", [0x8b], .sized, .modrm(digit: nil)),
      .init("lea", [0x8d], .sized, .modrm(digit: nil), memoryOnly: true),
      .init("pop", [0x8f], .stack, .modrm(digit: 0), special: .stack),
      .init("xchg", [0x90], .sized, .opcodeRegister),  // 90 without REX.B is NOP
      .init("pause", [0xf3, 0x90], .none, .none),
      .init("cbw", [0x98], .sized, .none),
      .init("cwd", [0x99], .sized, .none),
      .init("pushf", [0x9c], .stack, .none, special: .stack),
      .init("popf", [0x9d], .stack, .none, special: .popf),
      .init("sahf", [0x9e], .none, .none),
      .init("lahf", [0x9f], .none, .none),
      .init("mov", [0xa0], .byte, .moffs),
      .init("mov", [0xa1], .sized, .moffs),
      .init("mov", [0xa2], .byte, .moffs),
      .init("mov", [0xa3], .sized, .moffs),
      .init("movs", [0xa4], .byte, .none, special: .string, repeatable: true),
      .init("movs", [0xa5], .sized, .none, special: .string, repeatable: true),
      .init("cmps", [0xa6], .byte, .none, special: .string, repeatable: true),
      .init("cmps", [0xa7], .sized, .none, special: .string, repeatable: true),
      .init("test", [0xa8], .byte, .none, .byte),
      .init("test", [0xa9], .sized, .none, .z),
      .init("stos", [0xaa], .byte, .none, special: .string, repeatable: true),
      .init("stos", [0xab], .sized, .none, special: .string, repeatable: true),
      .init("lods", [0xac], .byte, .none, special: .string, repeatable: true),
      .init("lods", [0xad], .sized, .none, special: .string, repeatable: true),
      .init("scas", [0xae], .byte, .none, special: .string, repeatable: true),
      .init("scas", [0xaf], .sized, .none, special: .string, repeatable: true),
      .init("mov", [0xb0], .byte, .opcodeRegister, .byte),
      .init("mov", [0xb8], .sized, .opcodeRegister, .full),
      .init("ret", [0xc2], .stack, .none, .word, special: .ret),
      .init("ret", [0xc3], .stack, .none, special: .ret),
      .init("mov", [0xc6], .byte, .modrm(digit: 0), .byte),
      .init("mov", [0xc7], .sized, .modrm(digit: 0), .z),
      .init("enter", [0xc8], .stack, .none, .enter, special: .enter),
      .init("leave", [0xc9], .stack, .none, special: .leave),
      .init("xlat", [0xd7], .none, .none, special: .xlat),
      .init("loopne", [0xe0], .none, .none, .rel8, special: .loop),
      .init("loope", [0xe1], .none, .none, .rel8, special: .loop),
      .init("loop", [0xe2], .none, .none, .rel8, special: .loop),
      .init("jrcxz", [0xe3], .none, .none, .rel8, special: .loop),
      .init("call", [0xe8], .stack, .none, .relZ, special: .relativeBranch),
      .init("jmp", [0xe9], .stack, .none, .relZ, special: .relativeBranch),
      .init("jmp", [0xeb], .none, .none, .rel8, special: .relativeBranch),
      .init("cmc", [0xf5], .none, .none), .init("clc", [0xf8], .none, .none), .init("stc", [0xf9], .none, .none),
      .init("cld", [0xfc], .none, .none), .init("std", [0xfd], .none, .none),
      .init("inc", [0xfe], .byte, .modrm(digit: 0), lockable: true),
      .init("dec", [0xfe], .byte, .modrm(digit: 1), lockable: true),
      .init("inc", [0xff], .sized, .modrm(digit: 0), lockable: true),
      .init("dec", [0xff], .sized, .modrm(digit: 1), lockable: true),
      .init("call", [0xff], .stack, .modrm(digit: 2), special: .indirectBranch),
      .init("jmp", [0xff], .stack, .modrm(digit: 4), special: .indirectBranch),
      .init("push", [0xff], .stack, .modrm(digit: 6), special: .stack),
    ]
    // Jcc rel8 and rel32, SETcc, CMOVcc.
    for cc in UInt8(0)..<16 {
      forms.append(.init("j\(conditions[Int(cc)])", [0x70 + cc], .none, .none, .rel8, special: .relativeBranch))
      forms.append(.init("j\(conditions[Int(cc)])", [0x0f, 0x80 + cc], .stack, .none, .relZ, special: .relativeBranch))
      forms.append(.init("set\(conditions[Int(cc)])", [0x0f, 0x90 + cc], .byte, .modrm(digit: 0)))
      forms.append(.init("cmov\(conditions[Int(cc)])", [0x0f, 0x40 + cc], .sized, .modrm(digit: nil)))
    }
    // Shifts and rotates: by 1, by CL, by imm8.
    let shifts = ["rol", "ror", "rcl", "rcr", "shl", "shr", "sal", "sar"]
    for (digit, name) in shifts.enumerated() {
      let d = UInt8(digit)
      forms += [
        .init(name, [0xd0], .byte, .modrm(digit: d)), .init(name, [0xd1], .sized, .modrm(digit: d)),
        .init(name, [0xd2], .byte, .modrm(digit: d)), .init(name, [0xd3], .sized, .modrm(digit: d)),
        .init(name, [0xc0], .byte, .modrm(digit: d), .byte), .init(name, [0xc1], .sized, .modrm(digit: d), .byte),
      ]
    }
    // Group 3: TEST/NOT/NEG/MUL/IMUL/DIV/IDIV.
    let group3: [(String, UInt8, Special, Bool)] = [
      ("test", 0, .none, false), ("test", 1, .none, false), ("not", 2, .none, true), ("neg", 3, .none, true),
      ("mul", 4, .none, false), ("imul", 5, .none, false), ("div", 6, .divide, false), ("idiv", 7, .divide, false),
    ]
    for (name, digit, special, lock) in group3 {
      let imm: Immediate = digit < 2 ? .byte : .none
      let immZ: Immediate = digit < 2 ? .z : .none
      forms.append(.init(name, [0xf6], .byte, .modrm(digit: digit), imm, special: special, lockable: lock))
      forms.append(.init(name, [0xf7], .sized, .modrm(digit: digit), immZ, special: special, lockable: lock))
    }
    // 0F map.
    forms += [
      .init("nop", [0x0f, 0x1f], .sized, .modrm(digit: 0)),
      .init("bt", [0x0f, 0xa3], .sized, .modrm(digit: nil), special: .bitOffset),
      .init("bts", [0x0f, 0xab], .sized, .modrm(digit: nil), special: .bitOffset, lockable: true),
      .init("btr", [0x0f, 0xb3], .sized, .modrm(digit: nil), special: .bitOffset, lockable: true),
      .init("btc", [0x0f, 0xbb], .sized, .modrm(digit: nil), special: .bitOffset, lockable: true),
      .init("bt", [0x0f, 0xba], .sized, .modrm(digit: 4), .byte),
      .init("bts", [0x0f, 0xba], .sized, .modrm(digit: 5), .byte, lockable: true),
      .init("btr", [0x0f, 0xba], .sized, .modrm(digit: 6), .byte, lockable: true),
      .init("btc", [0x0f, 0xba], .sized, .modrm(digit: 7), .byte, lockable: true),
      .init("shld", [0x0f, 0xa4], .sized, .modrm(digit: nil), .byte),
      .init("shld", [0x0f, 0xa5], .sized, .modrm(digit: nil)),
      .init("shrd", [0x0f, 0xac], .sized, .modrm(digit: nil), .byte),
      .init("shrd", [0x0f, 0xad], .sized, .modrm(digit: nil)),
      .init("imul", [0x0f, 0xaf], .sized, .modrm(digit: nil)),
      .init("cmpxchg", [0x0f, 0xb0], .byte, .modrm(digit: nil), special: .compareExchange, lockable: true),
      .init("cmpxchg", [0x0f, 0xb1], .sized, .modrm(digit: nil), special: .compareExchange, lockable: true),
      .init("movzx", [0x0f, 0xb6], .sized, .modrm(digit: nil)),
      .init("movzx", [0x0f, 0xb7], .sized, .modrm(digit: nil)),
      .init("movsx", [0x0f, 0xbe], .sized, .modrm(digit: nil)),
      .init("movsx", [0x0f, 0xbf], .sized, .modrm(digit: nil)),
      .init("bsf", [0x0f, 0xbc], .sized, .modrm(digit: nil)),
      .init("bsr", [0x0f, 0xbd], .sized, .modrm(digit: nil)),
      .init("tzcnt", [0xf3, 0x0f, 0xbc], .sized, .modrm(digit: nil)),
      .init("lzcnt", [0xf3, 0x0f, 0xbd], .sized, .modrm(digit: nil)),
      .init("popcnt", [0xf3, 0x0f, 0xb8], .sized, .modrm(digit: nil)),
      .init("xadd", [0x0f, 0xc0], .byte, .modrm(digit: nil), lockable: true),
      .init("xadd", [0x0f, 0xc1], .sized, .modrm(digit: nil), lockable: true),
      .init(
        "cmpxchg8b", [0x0f, 0xc7], .wide, .modrm(digit: 1), special: .compareExchangeDouble, memoryOnly: true,
        lockable: true),
      .init("bswap", [0x0f, 0xc8], .wide, .opcodeRegister),
      .init("movbe", [0x0f, 0x38, 0xf0], .sized, .modrm(digit: nil), memoryOnly: true),
      .init("movbe", [0x0f, 0x38, 0xf1], .sized, .modrm(digit: nil), memoryOnly: true),
      .init("adcx", [0x66, 0x0f, 0x38, 0xf6], .wide, .modrm(digit: nil)),
      .init("adox", [0xf3, 0x0f, 0x38, 0xf6], .wide, .modrm(digit: nil)),
      // Must raise #UD: the UD instructions, and one-byte opcodes invalid in 64-bit mode.
      .init("ud2", [0x0f, 0x0b], .none, .none),
      .init("ud1", [0x0f, 0xb9], .sized, .modrm(digit: nil)),
      .init("ud0", [0x0f, 0xff], .sized, .modrm(digit: nil)),
      .init("(invalid) push es", [0x06], .none, .none), .init("(invalid) daa", [0x27], .none, .none),
      .init("(invalid) aaa", [0x37], .none, .none), .init("(invalid) pusha", [0x60], .none, .none),
      .init("(invalid) 82", [0x82], .byte, .modrm(digit: 0), .byte), .init("(invalid) into", [0xce], .none, .none),
      .init("(invalid) aam", [0xd4], .none, .none, .byte), .init("(invalid) salc", [0xd6], .none, .none),
      .init("(invalid) ff /7", [0xff], .sized, .modrm(digit: 7)),
      // Must raise #GP at CPL 3 with IOPL 0.
      .init("hlt", [0xf4], .none, .none), .init("cli", [0xfa], .none, .none), .init("sti", [0xfb], .none, .none),
      .init("in", [0xe4], .byte, .none, .byte), .init("out", [0xe6], .byte, .none, .byte),
      .init("in", [0xec], .byte, .none), .init("out", [0xef], .sized, .none),
      .init("ins", [0x6c], .byte, .none, special: .string), .init("outs", [0x6f], .sized, .none, special: .string),
    ]
    return forms
  }()

  static let conditions = ["o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"]
}
