import GuestMemory
import Testing

@testable import X86

/// The block loop's fast forms (FastForms.swift, BlockRun.swift) against the general handlers
/// they shortcut: random programs made of the shapes the fast forms cover (and neighbours
/// they must leave to the general path: 8/16-bit operands, ADC/SBB, CL counts, RCL) run once
/// by `step()`, which never uses a fast form, and once by `run`, which runs blocks, from the
/// same state. Registers, RFLAGS, RIP, the retirement count, the TSC, the data window and
/// the stack must be identical. The general handlers themselves are checked against the host
/// CPU by x86-difftest; this test pins the fast forms to them.
struct BlockRunEquivalenceTests {
  /// xorshift64, so that a failure replays from its seed.
  struct Random {
    var state: UInt64
    init(seed: UInt64) { state = seed &* 0x9e37_79b9_7f4a_7c15 | 1 }
    mutating func next() -> UInt64 {
      state ^= state << 13
      state ^= state >> 7
      state ^= state << 17
      return state
    }
    mutating func below(_ bound: UInt64) -> UInt64 { next() % bound }
    mutating func byte() -> UInt8 { UInt8(truncatingIfNeeded: next()) }
  }

  /// Registers an instruction may write: not RSP (the stack) and not RBX (the data pointer).
  static let writable: [UInt8] = [0, 1, 2, 5, 6, 7]

  /// One instruction (or a call/ret or Jcc group) of a random program. `wide` allows REX
  /// prefixes (64-bit code). Memory operands are [rBX + disp8] inside the data window.
  static func instruction(_ r: inout Random, wide: Bool) -> [UInt8] {
    func reg() -> UInt8 { writable[Int(r.below(UInt64(writable.count)))] }
    func modrmRegister(_ regField: UInt8, _ rm: UInt8) -> UInt8 { 0xc0 | regField << 3 | rm }
    // [rbx + disp8]: mod 01, rm 011.
    func memory(_ regField: UInt8) -> [UInt8] { [0x43 | regField << 3, UInt8(r.below(120))] }
    var prefix: [UInt8] = []
    if r.below(6) == 0 {
      prefix = [0x66]  // 16-bit operands: the general path
    } else if wide && r.below(2) == 0 {
      prefix = [0x48]  // REX.W
    }
    let imm8 = r.byte()
    let imm32 = (0..<4).map { _ in r.byte() }
    let immediate = prefix == [0x66] ? Array(imm32.prefix(2)) : imm32
    let alu = UInt8(r.below(8))  // ADD OR ADC SBB AND SUB XOR CMP
    switch r.below(31) {
    case 0: return prefix + [alu << 3 | 1, modrmRegister(reg(), reg())]  // ALU r/m, reg
    case 1: return prefix + [alu << 3 | 3, modrmRegister(reg(), reg())]  // ALU reg, r/m
    case 2: return prefix + [0x83, modrmRegister(alu, reg()), imm8]
    case 3: return prefix + [0x81, modrmRegister(alu, reg())] + immediate
    case 4: return prefix + [0x85, modrmRegister(reg(), reg())]  // TEST
    case 5: return prefix + [0xf7, modrmRegister(0, reg())] + immediate
    case 6: return prefix + [0x89, modrmRegister(reg(), reg())]
    case 7: return prefix + [0xb8 | reg()] + (prefix == [0x48] ? imm32 + imm32 : immediate)
    case 8: return prefix + [0x8d] + memory(reg())  // LEA
    case 9: return prefix + [0xff, modrmRegister(UInt8(r.below(2)), reg())]  // INC/DEC
    case 10:
      // ROL ROR RCL RCR SHL SHR SAL SAR by an immediate (counts past the width included), or by CL.
      let kind = UInt8(r.below(8))
      return r.below(4) == 0
        ? prefix + [0xd3, modrmRegister(kind, reg())] : prefix + [0xc1, modrmRegister(kind, reg()), imm8 & 0x7f]
    case 11: return prefix + [0x0f, 0xaf, modrmRegister(reg(), reg())]  // IMUL reg, r/m
    case 12: return prefix + [0x6b, modrmRegister(reg(), reg()), imm8]
    case 13: return prefix + [0x69, modrmRegister(reg(), reg())] + immediate
    case 14: return prefix + [0x0f, 0xb6 | UInt8(r.below(2)), modrmRegister(reg(), UInt8(r.below(8)))]  // MOVZX
    case 15: return prefix + [0x0f, 0xb6 | UInt8(r.below(2))] + memory(reg())
    case 16: return prefix + [0x8b] + memory(reg())  // load
    case 17: return prefix + [0x89] + memory(UInt8(r.below(8)))  // store
    case 18: return prefix + [0xc7] + memory(0) + immediate
    case 19: return prefix + [alu << 3 | 3] + memory(reg())  // ALU reg, [m]
    case 20: return prefix + [alu << 3 | 1] + memory(UInt8(r.below(8)))  // ALU [m], reg
    case 21: return prefix + [0x83] + memory(alu) + [imm8]
    case 22: return prefix + [0xff] + memory(UInt8(r.below(2)))  // INC/DEC [m]
    case 23:
      // PUSH r; POP r' (a pair keeps the stack inside its window).
      return [0x50 | UInt8(r.below(8))] + [0x58 | reg()]
    case 24:
      // call +2; jmp +1; ret: CALL, RET and JMP, each ending its block.
      return [0xe8, 2, 0, 0, 0, 0xeb, 1, 0xc3]
    case 25:
      // Jcc over add eax, imm8: the condition decides EAX.
      return [0x70 | UInt8(r.below(16)), 3, 0x83, 0xc0, imm8]
    case 26:
      // ALU r/m8, r8 without REX: AL CL DL AH CH DH (not BL/BH, the data pointer's bytes).
      let bytes: [UInt8] = [0, 1, 2, 4, 5, 6]
      return [alu << 3, modrmRegister(bytes[Int(r.below(6))], bytes[Int(r.below(6))])]
    case 27:
      // A flag-setting register form right before a Jcc (a fused pair, FastForms.swift), or
      // its 16-bit neighbour, which is not fused.
      let setters: [[UInt8]] = [
        [alu << 3 | 1, modrmRegister(reg(), reg())], [alu << 3 | 3, modrmRegister(reg(), reg())],
        [0x83, modrmRegister(alu, reg()), imm8], [0x85, modrmRegister(reg(), reg())],
        [0xf7, modrmRegister(0, reg())] + immediate, [0xff, modrmRegister(UInt8(r.below(2)), reg())],
      ]
      return prefix + setters[Int(r.below(UInt64(setters.count)))] + [0x70 | UInt8(r.below(16)), 3, 0x83, 0xc0, imm8]
    case 28:
      // mov ecx, 1...4; again: add eax, imm8; dec ecx; jnz again: a loop ending in a fused pair.
      return [0xb9, UInt8(r.below(4) + 1), 0, 0, 0, 0x83, 0xc0, imm8, 0xff, 0xc9, 0x75, 0xf9]
    case 29:
      // MOV reg, reg then SHL/SHR/SAR reg, imm (MOV + SHL/SHR run as one dispatch), either
      // MOV encoding, the shift on the copy or on another register.
      let (destination, source) = (reg(), reg())
      let mov: [UInt8] =
        r.below(2) == 0
        ? [0x89, modrmRegister(source, destination)] : [0x8b, modrmRegister(destination, source)]
      let target = r.below(4) == 0 ? reg() : destination
      return prefix + mov + prefix + [0xc1, modrmRegister([4, 5, 6, 7][Int(r.below(4))], target), imm8 & 0x3f]
    default:
      return [0x8b, modrmRegister(reg(), reg())]  // MOV reg, r/m (8B)
    }
  }

  static func program(seed: UInt64, wide: Bool, length: Int = 400) -> [UInt8] {
    var r = Random(seed: seed)
    var code: [UInt8] = []
    for _ in 0..<length { code += instruction(&r, wide: wide) }
    return code + [0xf4]  // hlt
  }

  /// Runs `code` to its HLT both ways from the same start and compares everything.
  func compare(_ code: [UInt8], seed: UInt64, setup: (inout X86State) -> Void) throws {
    var r = Random(seed: seed ^ 0xabcd)
    let registers = (0..<16).map { _ in r.next() }
    let data = (0..<256).map { _ in r.byte() }
    func prepare(_ sandbox: X86Sandbox) throws {
      var state = sandbox.cpu.state
      state.rip = Layout.code
      setup(&state)
      for index in 0..<16 where index != 4 { state.gpr[index] = registers[index] }
      if state.codeMode != .bits64 {
        for index in 0..<16 { state.gpr[index] &= 0xffff_ffff }
      }
      state[.rbx] = Layout.data
      state[.rsp] = Layout.stackTop
      sandbox.cpu.state = state
      try sandbox.write(data, at: Layout.data)
    }
    let stepped = try X86Sandbox()
    try stepped.load(code: code, at: Layout.code)
    try prepare(stepped)
    var stop = StepResult.retired
    var steps = 0
    while stop == .retired && steps < 100_000 {
      stop = stepped.cpu.step()
      steps += 1
    }
    #expect(stop == .halted, "seed \(seed): stepping ended with \(stop)")

    let ran = try X86Sandbox()
    // The interpreter's blocks, not translated code (JITEquivalenceTests covers that).
    ran.cpu.usesTranslation = false
    try ran.load(code: code, at: Layout.code)
    try prepare(ran)
    // Uneven budgets, so that blocks are also cut short.
    var result = StepResult.retired
    while result == .retired { result = ran.cpu.run(maxInstructions: r.below(40) + 1).stop }
    #expect(result == .halted, "seed \(seed): the block run ended with \(result)")

    let a = stepped.cpu.state
    let b = ran.cpu.state
    for index in 0..<16 {
      #expect(a.gpr[index] == b.gpr[index], "seed \(seed): GPR \(index) \(a.gpr[index]) vs \(b.gpr[index])")
    }
    #expect(a.rflags == b.rflags, "seed \(seed): RFLAGS \(a.rflags) vs \(b.rflags)")
    #expect(a.rip == b.rip && a.tsc == b.tsc, "seed \(seed): RIP/TSC")
    #expect(stepped.cpu.retiredInstructions == ran.cpu.retiredInstructions, "seed \(seed): retirements")
    #expect(
      try stepped.read(at: Layout.data, count: 256) == ran.read(at: Layout.data, count: 256), "seed \(seed): data")
    #expect(
      try stepped.read(at: Layout.stackTop - 64, count: 64) == ran.read(at: Layout.stackTop - 64, count: 64),
      "seed \(seed): stack")
  }

  @Test(arguments: 1...24 as ClosedRange<UInt64>) func sixtyFourBitCode(seed: UInt64) throws {
    try compare(Self.program(seed: seed, wide: true), seed: seed) { _ in }
  }

  /// 32-bit protected mode, flat segments, no paging: the benchmark guest's setting, where
  /// every access also passes the segment checks.
  @Test(arguments: 101...124 as ClosedRange<UInt64>) func thirtyTwoBitCode(seed: UInt64) throws {
    try compare(Self.program(seed: seed, wide: false), seed: seed) { state in
      state = X86State()
      state.cr0 = ControlBit.cr0PE | 0x10
      state[.cs] = SegmentRegister(selector: 0x08, limit: 0xffff_ffff, type: 0xb, defaultBig: true, granularity: true)
      for segment in [SegmentName.ds, .es, .ss] { state[segment] = .flatData() }
      state.rip = Layout.code
    }
  }
}
