import GuestMemory
import Testing

@testable import X86

/// The JIT tier (Sources/X86/JIT) against the general handlers: random programs of the forms
/// it translates (and neighbours it leaves to the interpreter) run once by `step()`, which
/// never uses translated code, and once by `run` with translation on, from the same state;
/// registers, RFLAGS, RIP, retirements, the TSC, two data pages and the stack must be
/// identical. The host CPU computes the translated instructions' flags, and it is free in
/// the flags the SDM leaves undefined (UndefinedFlags.swift), so every instruction that may
/// leave one undefined is followed by `cmp eax, edx`, which defines all six: nothing reads an
/// undefined flag, and the comparison stays exact. The general handlers themselves are
/// checked against the host CPU by x86-difftest.
struct JITEquivalenceTests {
  typealias Random = BlockRunEquivalenceTests.Random

  /// Registers an instruction may write: not RSP (the stack), RBX (the data pointer) or RSI
  /// (the index of SIB operands, 0-15).
  static let writable: [UInt8] = [0, 1, 2, 5, 7]
  /// CMP EAX, EDX: all six status flags defined.
  static let defineFlags: [UInt8] = [0x39, 0xd0]

  static func instruction(_ r: inout Random, wide: Bool) -> [UInt8] {
    func reg() -> UInt8 { writable[Int(r.below(UInt64(writable.count)))] }
    func anyRegister() -> UInt8 { UInt8(r.below(8)) }
    func modrmRegister(_ regField: UInt8, _ rm: UInt8) -> UInt8 { 0xc0 | regField << 3 | rm }
    // [rbx + disp8] in the first data page, or [rbx + disp32] up to and across the end of the
    // first page (page-crossing accesses), or [rbx + rsi*0 + disp8] through a SIB byte.
    func memory(_ regField: UInt8) -> [UInt8] {
      switch r.below(4) {
      case 0:
        let displacement = UInt32(0xff0 + r.below(16))
        return [0x83 | regField << 3] + (0..<4).map { UInt8(truncatingIfNeeded: displacement >> ($0 * 8)) }
      case 1: return [0x44 | regField << 3, 0x33, UInt8(r.below(120))]  // SIB: base rbx, index rsi, scale 1
      default: return [0x43 | regField << 3, UInt8(r.below(120))]
      }
    }
    // In 64-bit code a memory operand may take FS or GS, whose bases (`fsBase`, `gsBase`)
    // move it within the data pages.
    func segment() -> [UInt8] { wide ? [[], [], [0x64], [0x65]][Int(r.below(4))] : [] }
    var prefix: [UInt8] = []
    switch r.below(8) {
    case 0: prefix = [0x66]
    case 1 where wide, 2 where wide: prefix = [0x48]
    default: break
    }
    let imm8 = r.byte()
    let imm32 = (0..<4).map { _ in r.byte() }
    let immediate = prefix == [0x66] ? Array(imm32.prefix(2)) : imm32
    let alu = UInt8(r.below(8))
    // The logic operations leave AF undefined.
    let aluTail = [1, 4, 6].contains(alu) ? defineFlags : []
    switch r.below(34) {
    case 0: return prefix + [alu << 3 | 1, modrmRegister(reg(), reg())] + aluTail
    case 1: return prefix + [alu << 3 | 3, modrmRegister(reg(), reg())] + aluTail
    case 2: return prefix + [0x83, modrmRegister(alu, reg()), imm8] + aluTail
    case 3: return prefix + [0x81, modrmRegister(alu, reg())] + immediate + aluTail
    case 4: return prefix + [0x85, modrmRegister(reg(), reg())] + defineFlags
    case 5: return prefix + [0xf7, modrmRegister(UInt8(r.below(2)) + 2, reg())]  // NOT/NEG
    case 6: return prefix + [0x89, modrmRegister(reg(), reg())]
    case 7: return prefix + [0xb8 | reg()] + (prefix == [0x48] ? imm32 + imm32 : immediate)
    case 8: return segment() + prefix + [0x8d] + memory(reg())  // LEA
    case 9: return prefix + [0xff, modrmRegister(UInt8(r.below(2)), reg())]  // INC/DEC
    case 10:
      let kind = UInt8(r.below(8))
      let shift =
        r.below(3) == 0
        ? [0xd3, modrmRegister(kind, reg())]
        : (r.below(2) == 0 ? [0xd1, modrmRegister(kind, reg())] : [0xc1, modrmRegister(kind, reg()), imm8 & 0x7f])
      return prefix + shift + defineFlags
    case 11: return prefix + [0x0f, 0xaf, modrmRegister(reg(), reg())] + defineFlags
    case 12: return prefix + [0x6b, modrmRegister(reg(), reg()), imm8] + defineFlags
    case 13: return segment() + prefix + [0x69] + memory(reg()) + immediate + defineFlags
    case 14:
      return prefix + [0x0f, 0xb6 | UInt8(r.below(2)) | UInt8(r.below(2)) << 3, modrmRegister(reg(), anyRegister())]
    case 15: return segment() + prefix + [0x0f, 0xb6 | UInt8(r.below(2)) | UInt8(r.below(2)) << 3] + memory(reg())  // MOVZX/MOVSX
    case 16: return segment() + prefix + [0x8b] + memory(reg())  // load
    case 17: return segment() + prefix + [0x89] + memory(anyRegister())  // store
    case 18: return segment() + prefix + [0xc7] + memory(0) + immediate
    case 19: return segment() + prefix + [alu << 3 | 3] + memory(reg()) + aluTail
    case 20: return segment() + prefix + [alu << 3 | 1] + memory(anyRegister()) + aluTail
    case 21: return segment() + prefix + [0x83] + memory(alu) + [imm8] + aluTail
    case 22: return segment() + prefix + [0xff] + memory(UInt8(r.below(2)))  // INC/DEC [m]
    case 23: return [0x50 | anyRegister(), 0x58 | reg()]  // PUSH r; POP r'
    case 24: return [0x6a, imm8, 0x58 | reg()]  // PUSH imm8; POP r
    case 25: return [0xe8, 2, 0, 0, 0, 0xeb, 1, 0xc3]  // call +2; jmp +1; ret
    case 26: return [0x70 | UInt8(r.below(16)), 3, 0x83, 0xc0, imm8]  // Jcc over add eax, imm8
    case 27:
      // Byte ALU without REX: AL CL DL AH CH DH (not BL/BH, the data pointer's bytes).
      let bytes: [UInt8] = [0, 1, 2, 4, 5, 6]
      return [alu << 3, modrmRegister(bytes[Int(r.below(6))], bytes[Int(r.below(6))])] + aluTail
    case 28: return [0x0f, 0x90 | UInt8(r.below(16)), modrmRegister(0, [0, 1, 2, 4, 5, 6][Int(r.below(6))])]  // SETcc
    case 29: return segment() + [0x0f, 0x90 | UInt8(r.below(16))] + memory(0)  // SETcc [m]
    case 30: return prefix + [0x0f, 0x40 | UInt8(r.below(16)), modrmRegister(reg(), reg())]  // CMOVcc
    case 31: return segment() + prefix + [0x0f, 0x40 | UInt8(r.below(16))] + memory(reg())
    case 32: return prefix + [0x87, modrmRegister(reg(), reg())]  // XCHG
    default:
      // mov ecx, 1...4; again: add eax, imm8; dec ecx; jnz again.
      return [0xb9, UInt8(r.below(4) + 1), 0, 0, 0, 0x83, 0xc0, imm8, 0xff, 0xc9, 0x75, 0xf9]
    }
  }

  static func program(seed: UInt64, wide: Bool, length: Int = 400) -> [UInt8] {
    var r = Random(seed: seed)
    var code: [UInt8] = []
    for _ in 0..<length { code += instruction(&r, wide: wide) }
    return code + [0xf4]
  }

  static let dataBytes = 0x2000
  static let fsBase: UInt64 = 0x100
  static let gsBase: UInt64 = 0x300

  /// Both runs of `code` from the same start; `change` adjusts the start state, `memory` the
  /// sandboxes. Returns the two sandboxes and their stops for checks of their own.
  @discardableResult
  func compare(
    _ code: [UInt8], seed: UInt64, expectedStop: StepResult = .halted, setup: (inout X86State) -> Void,
    memory: (X86Sandbox) throws -> Void = { _ in }
  ) throws -> (stepped: X86Sandbox, ran: X86Sandbox) {
    var r = Random(seed: seed ^ 0x5eed)
    let registers = (0..<16).map { _ in r.next() }
    let data = (0..<Self.dataBytes).map { _ in r.byte() }
    let index = r.below(16)
    func prepare(_ sandbox: X86Sandbox) throws {
      try sandbox.load(code: code, at: Layout.code)
      try memory(sandbox)
      var state = sandbox.cpu.state
      state.rip = Layout.code
      setup(&state)
      for index in 0..<16 where index != 4 { state.gpr[index] = registers[index] }
      if state.codeMode != .bits64 {
        for index in 0..<16 { state.gpr[index] &= 0xffff_ffff }
      }
      if state.codeMode == .bits64 {
        var fs = state[.fs]
        fs.base = Self.fsBase
        state[.fs] = fs
        var gs = state[.gs]
        gs.base = Self.gsBase
        state[.gs] = gs
      }
      state[.rbx] = Layout.data
      state[.rsi] = index
      state[.rsp] = Layout.stackTop
      sandbox.cpu.state = state
      try sandbox.write(data, at: Layout.data)
    }
    let stepped = try X86Sandbox()
    stepped.cpu.usesTranslation = false
    try prepare(stepped)
    var stop = StepResult.retired
    var steps = 0
    while stop == .retired && steps < 100_000 {
      stop = stepped.cpu.step()
      steps += 1
    }
    #expect(stop == expectedStop, "seed \(seed): stepping ended with \(stop)")

    let ran = try X86Sandbox()
    ran.cpu.usesTranslation = true
    ran.cpu.translationThreshold = 0  // translate on sight: each program runs once
    #expect(ran.cpu.usesTranslation, "this host cannot run translated code")
    try prepare(ran)
    // Budgets long and short, so that blocks are also cut short.
    var result = StepResult.retired
    while result == .retired {
      result = ran.cpu.run(maxInstructions: r.below(2) == 0 ? r.below(40) + 1 : 1_000_000).stop
    }
    #expect(result == expectedStop, "seed \(seed): the translated run ended with \(result)")

    let a = stepped.cpu.state
    let b = ran.cpu.state
    for index in 0..<16 {
      #expect(a.gpr[index] == b.gpr[index], "seed \(seed): GPR \(index) \(a.gpr[index]) vs \(b.gpr[index])")
    }
    #expect(a.rflags == b.rflags, "seed \(seed): RFLAGS \(a.rflags) vs \(b.rflags)")
    #expect(a.rip == b.rip, "seed \(seed): RIP \(a.rip) vs \(b.rip)")
    #expect(a.tsc == b.tsc, "seed \(seed): TSC")
    #expect(a.cr2 == b.cr2, "seed \(seed): CR2")
    #expect(stepped.cpu.retiredInstructions == ran.cpu.retiredInstructions, "seed \(seed): retirements")
    #expect(
      try stepped.read(at: Layout.data, count: Self.dataBytes) == ran.read(at: Layout.data, count: Self.dataBytes),
      "seed \(seed): data")
    #expect(
      try stepped.read(at: Layout.stackTop - 64, count: 64) == ran.read(at: Layout.stackTop - 64, count: 64),
      "seed \(seed): stack")
    #expect(ran.cpu.translatedBlocksEntered > 0, "seed \(seed): no translated block ran")
    return (stepped, ran)
  }

  static func flat32(_ state: inout X86State) {
    state = X86State()
    state.cr0 = ControlBit.cr0PE | 0x10
    state[.cs] = SegmentRegister(selector: 0x08, limit: 0xffff_ffff, type: 0xb, defaultBig: true, granularity: true)
    for segment in [SegmentName.ds, .es, .ss] { state[segment] = .flatData() }
    state.rip = Layout.code
  }

  @Test(arguments: 1...24 as ClosedRange<UInt64>) func sixtyFourBitCode(seed: UInt64) throws {
    try compare(Self.program(seed: seed, wide: true), seed: seed) { _ in }
  }

  /// 32-bit protected mode, flat segments, no paging: the benchmark guest's setting.
  @Test(arguments: 101...124 as ClosedRange<UInt64>) func thirtyTwoBitCode(seed: UInt64) throws {
    try compare(Self.program(seed: seed, wide: false), seed: seed, setup: Self.flat32)
  }
}
