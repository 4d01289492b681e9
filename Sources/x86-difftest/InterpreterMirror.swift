import GuestMemory
import HostCPU
import X86
import X86Generator

/// Hyperstep's interpreter set up the way the oracle's process is (`NativeLayout`), so that one
/// generated case means the same thing to both: the same linear addresses, page permissions,
/// privilege level and control registers.
///
/// - Linear 0x1080_0000 (the code page): INT3s, the instruction at `codeEntry`, then the
///   oracle's 7-byte exit stub (`jmp [0x0fff0308]`), mapped user, read-only, executable.
///   RIP-relative reads can see these bytes, so they are reproduced exactly.
/// - Linear 0x1090_0000 (the 8 KiB data window): user, read/write, not executable.
/// - Everything else not present: the oracle's sandbox is PROT_NONE around them, which
///   Linux keeps out of the page tables (a fault there has P = 0).
/// - CPL 3 in 64-bit mode with the control bits Linux gives user code on this host: CR0.PE,
///   MP, ET, NE, WP, AM, PG; CR4.PAE; EFER.LME, LMA, NXE, SCE.
final class InterpreterMirror {
  /// Physical pages: the page tables, then the code page and the data window.
  static let pml4: UInt64 = 0x1000
  static let pdpt: UInt64 = 0x2000
  static let directory: UInt64 = 0x3000
  static let table: UInt64 = 0x4000
  static let codePhysical: UInt64 = 0x5000
  static let dataPhysical: UInt64 = 0x6000

  let memory: GuestRAM
  let cpu: X86CPU

  init() throws {
    memory = try GuestRAM([MemoryRegionSpec(start: 0, size: 0x10_0000)])
    cpu = X86CPU(memory: memory)
    // Page-table entry bits: present, writable, user, accessed, dirty; NX is bit 63. A and D
    // are set already, as Linux has them for pages in use, so the walk changes nothing.
    let present: UInt64 = 1
    let writable: UInt64 = 2
    let user: UInt64 = 4
    let accessedDirty: UInt64 = 0x60
    let noExecute: UInt64 = 1 << 63
    let directoryIndex = (NativeLayout.codePage >> 21) & 511
    precondition(NativeLayout.codePage >> 30 == 0 && NativeLayout.dataBase >> 21 == NativeLayout.codePage >> 21)
    try memory.store(Self.pdpt | present | writable | user | 0x20, at: GuestAddress(Self.pml4))
    try memory.store(Self.directory | present | writable | user | 0x20, at: GuestAddress(Self.pdpt))
    try memory.store(
      Self.table | present | writable | user | 0x20, at: GuestAddress(Self.directory + directoryIndex * 8))
    func map(_ linear: UInt64, to physical: UInt64, _ bits: UInt64) throws {
      try memory.store(physical | bits, at: GuestAddress(Self.table + ((linear >> 12) & 511) * 8))
    }
    try map(NativeLayout.codePage, to: Self.codePhysical, present | user | accessedDirty)
    for page in 0..<UInt64(NativeLayout.dataSize / 4096) {
      try map(
        NativeLayout.dataBase + page * 4096, to: Self.dataPhysical + page * 4096,
        present | writable | user | accessedDirty | noExecute)
    }
  }

  /// The state the oracle starts an instruction from, as interpreter state.
  static func state(from native: NativeState) -> X86State {
    var state = X86State()
    state.cr0 = 0x8005_0033  // PG AM WP NE ET MP PE, as Linux sets it
    state.cr4 = 1 << 5 | 1 << 9 | 1 << 10  // PAE OSFXSR OSXMMEXCPT
    state.cr3 = pml4
    state.efer = (1 << 0) | (1 << 8) | (1 << 10) | (1 << 11)  // SCE LME LMA NXE
    state[.cs] = .flatCode64(selector: 0x33, dpl: 3)
    for segment in [SegmentName.ss, .ds, .es, .fs, .gs] { state[segment] = .flatData(selector: 0x2b, dpl: 3) }
    for index in 0..<16 { state.gpr[index] = native.gprs[index] }
    state.rip = native.rip
    state.rflags = native.rflags | 0x202  // bit 1 is always set, and user code runs with IF on
    state.fpu = fpu(from: native.fxsave)
    return state
  }

  /// The FXSAVE image as interpreter state (ST registers are stored relative to TOP there and
  /// by physical number in `FloatingPointState`).
  static func fpu(from image: [UInt8]) -> FloatingPointState {
    func word(_ offset: Int, _ count: Int) -> UInt64 {
      (0..<count).reduce(UInt64(0)) { $0 | UInt64(image[offset + $1]) << (8 * UInt64($1)) }
    }
    var fpu = FloatingPointState()
    fpu.fcw = UInt16(word(0, 2))
    fpu.fsw = UInt16(word(2, 2))
    fpu.ftw = image[4]
    fpu.lastOpcode = UInt16(word(6, 2))
    fpu.lastInstructionPointer = word(8, 8)
    fpu.lastDataPointer = word(16, 8)
    fpu.mxcsr = UInt32(word(24, 4))
    let top = Int((fpu.fsw >> 11) & 7)
    for index in 0..<8 {
      fpu.st[(top + index) & 7] = X87Register(
        significand: word(32 + 16 * index, 8), signExponent: UInt16(word(40 + 16 * index, 2)))
    }
    for index in 0..<16 {
      fpu.xmm[index] = UInt128(word(168 + 16 * index, 8)) << 64 | UInt128(word(160 + 16 * index, 8))
    }
    return fpu
  }

  /// What the interpreter made of one case.
  struct Result {
    var step: StepResult
    var gprs: [UInt64]
    var rip: UInt64
    var rflags: UInt64
    var dataWindow: [UInt8]
    var cr2: UInt64
    var decoded: DecodedInstruction
    var fpu: FloatingPointState
  }

  func run(_ instruction: GeneratedInstruction) throws -> Result {
    var code = [UInt8](repeating: 0xcc, count: Int(NativeLayout.codePageSize))
    let offset = Int(NativeLayout.codeEntry - NativeLayout.codePage)
    code.replaceSubrange(offset..<offset + instruction.bytes.count, with: instruction.bytes)
    let pointer = UInt32(0x0fff_0308)  // HOSTCPU_CONTROL_BASE + HOSTCPU_CTL_EXIT_POINTER
    let stub: [UInt8] = [0xff, 0x24, 0x25] + (0..<4).map { UInt8(truncatingIfNeeded: pointer >> (8 * $0)) }
    let stubStart = offset + instruction.bytes.count
    code.replaceSubrange(stubStart..<stubStart + stub.count, with: stub)
    try memory.write(code, at: GuestAddress(Self.codePhysical))
    try memory.write(instruction.state.dataWindow, at: GuestAddress(Self.dataPhysical))
    cpu.invalidateDecodedInstructions()
    cpu.state = Self.state(from: instruction.state)
    let decoded = decodeInstruction(InstructionBytes(instruction.bytes), mode: .bits64)
    // Through `run`, not `step()`: `run` executes decoded blocks with their fast forms
    // (X86's BlockRun.swift), a second implementation of the commonest instructions that the
    // comparison must cover too; for anything else it steps.
    let step = cpu.run(maxInstructions: 1).stop
    let state = cpu.state
    return Result(
      step: step, gprs: (0..<16).map { state.gpr[$0] }, rip: state.rip, rflags: state.rflags,
      dataWindow: try memory.read(at: GuestAddress(Self.dataPhysical), count: NativeLayout.dataSize),
      cr2: state.cr2, decoded: decoded, fpu: state.fpu)
  }
}

/// Compares the interpreter's run of a case with the host CPU's; "" when they agree on
/// everything the SDM defines.
func compare(
  _ instruction: GeneratedInstruction, native: NativeOutcome, interpreter: InterpreterMirror.Result,
  ignoring ignored: Range<UInt64>? = nil
) -> String {
  var differences: [String] = []
  func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }
  switch (native.end, interpreter.step) {
  case (.fellThrough, .retired), (.branchedInCodePage, .retired), (.branchedOutOfCodePage, .retired):
    break
  case (.exception, .exception(let exception)):
    guard let expected = native.exception else { return "native exception without details" }
    if exception.vector != expected.vector {
      differences.append("vector \(exception.vector), hardware \(expected.vector)")
    } else if let code = exception.errorCode, UInt64(code) != expected.errorCode {
      differences.append("error code \(hex(UInt64(code))), hardware \(hex(expected.errorCode))")
    }
    if exception.vector == 14, let address = expected.faultAddress, interpreter.cr2 != address {
      differences.append("CR2 \(hex(interpreter.cr2)), hardware \(hex(address))")
    }
  default:
    let hardware = native.exception.map { "\($0.mnemonic) error \(hex($0.errorCode))" } ?? "\(native.end)"
    return "interpreter: \(interpreter.step); hardware: \(hardware)"
  }
  for index in 0..<16 where interpreter.gprs[index] != native.state.gprs[index] {
    differences.append(
      "\(NativeState.GPR.names[index]) \(hex(interpreter.gprs[index])), hardware \(hex(native.state.gprs[index]))")
  }
  if interpreter.rip != native.state.rip {
    differences.append("rip \(hex(interpreter.rip)), hardware \(hex(native.state.rip))")
  }
  // The flags the oracle can see, less those the SDM leaves undefined after this instruction.
  let cl = UInt8(truncatingIfNeeded: instruction.state.gprs[NativeState.GPR.rcx])
  let compared = NativeLayout.rflagsMask & ~UndefinedFlags.mask(for: interpreter.decoded, cl: cl)
  if interpreter.rflags & compared != native.state.rflags & compared {
    differences.append(
      "rflags \(hex(interpreter.rflags & compared)), hardware \(hex(native.state.rflags & compared)) (mask \(hex(compared)))"
    )
  }
  // SSE state: every XMM register and MXCSR (the x87 part only where the form touches it).
  let hardwareFPU = InterpreterMirror.fpu(from: native.state.fxsave)
  for index in 0..<16 where interpreter.fpu.xmm[index] != hardwareFPU.xmm[index] {
    differences.append(
      "xmm\(index) \(String(interpreter.fpu.xmm[index], radix: 16)), hardware \(String(hardwareFPU.xmm[index], radix: 16))"
    )
  }
  if instruction.form.x87 {
    // FCW, FSW (less C1, which the model does not set as the round-up indicator), the
    // abridged tags and the eight registers. FOP/FIP/FDP are not compared.
    let c1: UInt16 = 1 << 9
    if interpreter.fpu.fcw != hardwareFPU.fcw {
      differences.append("fcw \(hex(UInt64(interpreter.fpu.fcw))), hardware \(hex(UInt64(hardwareFPU.fcw)))")
    }
    if interpreter.fpu.fsw & ~c1 != hardwareFPU.fsw & ~c1 {
      differences.append("fsw \(hex(UInt64(interpreter.fpu.fsw))), hardware \(hex(UInt64(hardwareFPU.fsw)))")
    }
    if interpreter.fpu.ftw != hardwareFPU.ftw {
      differences.append("ftw \(hex(UInt64(interpreter.fpu.ftw))), hardware \(hex(UInt64(hardwareFPU.ftw)))")
    }
    for index in 0..<8 where interpreter.fpu.st[index] != hardwareFPU.st[index] {
      let mine = interpreter.fpu.st[index]
      let theirs = hardwareFPU.st[index]
      differences.append(
        "R\(index) \(hex(UInt64(mine.signExponent))):\(hex(mine.significand)), hardware \(hex(UInt64(theirs.signExponent))):\(hex(theirs.significand))"
      )
    }
  }
  if interpreter.fpu.mxcsr != hardwareFPU.mxcsr {
    differences.append(
      "mxcsr \(hex(UInt64(interpreter.fpu.mxcsr))), hardware \(hex(UInt64(hardwareFPU.mxcsr)))")
  }
  if let offset = (0..<NativeLayout.dataSize).first(where: {
    interpreter.dataWindow[$0] != native.state.dataWindow[$0]
      && !(ignored?.contains(NativeLayout.dataBase + UInt64($0)) ?? false)
  }) {
    let address = NativeLayout.dataBase + UInt64(offset)
    differences.append(
      "memory [\(hex(address))] \(hex(UInt64(interpreter.dataWindow[offset]))), hardware \(hex(UInt64(native.state.dataWindow[offset])))"
    )
  }
  return differences.joined(separator: "; ")
}

/// Why a case is not held against the interpreter, when it is not: each reason is a
/// documented fact, not a tolerance.
enum Explanation: String, CaseIterable {
  /// The host CPU has the instruction, the interpreter's CPUID model does not advertise it
  /// (`CPUIDModel`): software that checks CPUID never runs it there, and without the feature
  /// the same bytes mean something else (F3 0F BD is BSR on a CPU without LZCNT).
  case outsideTheModel = "outside the interpreter's CPUID model"
  /// AMD honours a 66 prefix on near branches in 64-bit mode (16-bit operand size: IP
  /// truncated, 2-byte return addresses; AMD APM vol. 3, "Jcc", "CALL (Near)"); Intel ignores
  /// it (SDM vol. 2, "Jcc": 64-bit operand size in 64-bit mode). The interpreter follows Intel.
  case vendorNearBranch = "AMD-only 16-bit near branch"
  /// SHLD/SHRD of a 16-bit operand by more than 16: the SDM leaves the result undefined.
  case undefinedResult = "result undefined by the SDM"
  /// FXSAVE's MXCSR_MASK field says which MXCSR bits the processor accepts (SDM Vol. 1,
  /// 11.6.6): the interpreter's model accepts bits 0-15 (FFFFh), this AMD host also bit 17
  /// (its misaligned-exception mask, 2FFFFh). Only those four bytes differ.
  case mxcsrMask = "MXCSR_MASK of the model (FFFFh) vs the host's"
  /// FPREM/FPREM1 with exponents 64 or more apart reduce only partly, by ST1 · 2^(D - N) with
  /// N "implementation-dependent, between 32 and 63" (SDM Vol. 2, FPREM): the host's N and the
  /// model's (32) give different, equally valid partial remainders. C2 = 1 marks these.
  case partialRemainder = "FPREM partial remainder (implementation-dependent N)"

  /// CPUID bits each such form needs: (leaf, subleaf, register index EAX=0 EBX=1 ECX=2 EDX=3, bit).
  static let features: [String: (UInt32, UInt32, Int, Int)] = [
    "adcx": (7, 0, 1, 19), "adox": (7, 0, 1, 19),  // ADX
    "popcnt": (1, 0, 2, 23), "movbe": (1, 0, 2, 22),
    "lzcnt": (0x8000_0001, 0, 2, 5),  // ABM
    "tzcnt": (7, 0, 1, 3),  // BMI1
  ]

  static func of(_ instruction: GeneratedInstruction, decoded: DecodedInstruction, hardwareC2: Bool = false)
    -> Explanation?
  {
    let mnemonic = instruction.form.mnemonic
    if let (leaf, subleaf, register, bit) = features[mnemonic] {
      let answer = CPUIDModel.query(leaf: leaf, subleaf: subleaf)
      let value = [answer.eax, answer.ebx, answer.ecx, answer.edx][register]
      if value & (1 << UInt32(bit)) == 0 { return .outsideTheModel }
    }
    let nearBranches: Set<String> = ["jmp", "call", "ret"]
    if instruction.operandSize == 16 && (nearBranches.contains(mnemonic) || mnemonic.hasPrefix("j")) {
      return .vendorNearBranch
    }
    if mnemonic == "fprem" || mnemonic == "fprem1",
      hardwareC2
    {
      return .partialRemainder
    }
    if (mnemonic == "shld" || mnemonic == "shrd") && instruction.operandSize == 16 {
      // UndefinedFlags marks all six arithmetic flags undefined exactly when the count
      // exceeds the width; the result is undefined then too.
      let cl = UInt8(truncatingIfNeeded: instruction.state.gprs[NativeState.GPR.rcx])
      if UndefinedFlags.mask(for: decoded, cl: cl) & 0x8d5 == 0x8d5 { return .undefinedResult }
    }
    return nil
  }
}
