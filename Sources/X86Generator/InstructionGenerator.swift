import HostCPU

/// One generated test case: the instruction's bytes and the state to run it from.
public struct GeneratedInstruction: Sendable {
  public var bytes: [UInt8]
  public var state: NativeState
  public var form: InstructionForm
  /// 8, 16, 32 or 64; 0 for forms without a sized operand.
  public var operandSize: Int
  /// The effective address of its ModRM or moffs memory operand, if it has one.
  public var memoryAddress: UInt64?

  /// "add/64 48 01 d8": mnemonic, operand size, bytes; enough to find the case again.
  public var summary: String {
    let hex = bytes.map { String($0, radix: 16).leftPadded(to: 2) }.joined(separator: " ")
    return operandSize == 0 ? "\(form.mnemonic) \(hex)" : "\(form.mnemonic)/\(operandSize) \(hex)"
  }
}

extension String {
  func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}

/// Random x86-64 instructions with starting states that keep them inside the oracle's
/// sandbox: every memory operand points into the data window (or, now and then, just past
/// it into a guard page), every control transfer goes to an INT3 of the code page or a
/// page that faults on fetch, RSP/RSI/RDI point into the window where used, and BT's bit
/// offsets stay in it. The same seed gives the same stream.
public struct InstructionGenerator: Sendable {
  public private(set) var random: GeneratorRandom
  public let forms: [InstructionForm]
  /// A seeded random background for the data window; each case randomizes bytes around its
  /// own operand only, which is far cheaper than 8 KiB of fresh randomness per case.
  private let background: [UInt8]

  public init(seed: UInt64, forms: [InstructionForm] = InstructionForm.all) {
    random = GeneratorRandom(seed: seed)
    self.forms = forms
    var bytes = [UInt8](repeating: 0, count: NativeLayout.dataSize)
    for i in stride(from: 0, to: bytes.count, by: 8) {
      let value = random.next()
      for j in 0..<8 { bytes[i + j] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(j))) }
    }
    background = bytes
  }

  public mutating func next() -> GeneratedInstruction {
    while true {
      let form = random.pick(forms)
      var builder = CaseBuilder(form: form, random: random, background: background)
      let instruction = builder.build()
      random = builder.random
      // Prefixes, a SIB, a disp32 and an imm32 can add up past 15 bytes; draw again.
      if instruction.bytes.count <= NativeLayout.maxInstructionLength { return instruction }
    }
  }
}

/// Builds one case. The order matters: random registers first, then the form's own needs,
/// then the memory operand's registers (which win over everything but the implicit pointers
/// they were chosen to avoid), then memory contents that depend on the address.
struct CaseBuilder {
  typealias GPR = NativeState.GPR
  let form: InstructionForm
  var random: GeneratorRandom
  var state: NativeState

  // The encoding under construction.
  var prefixes: [UInt8] = []
  var rex: UInt8 = 0  // W R X B bits; 0x40 is added when any is set or `needsREX`
  var needsREX = false
  var modrm: UInt8?
  var sib: UInt8?
  var displacement: (value: UInt64, size: Int) = (0, 0)
  var immediate: [UInt8] = []
  var ripRelativeTarget: UInt64?
  var opcode: [UInt8]

  var operandSize = 0
  var addressSize32 = false
  var memoryAddress: UInt64?
  /// Registers whose values the case depends on; the memory operand avoids them.
  var pinned: Set<Int> = []

  init(form: InstructionForm, random: GeneratorRandom, background: [UInt8]) {
    self.form = form
    self.random = random
    self.opcode = form.opcode
    state = NativeState(dataWindow: background)
  }

  mutating func build() -> GeneratedInstruction {
    for r in 0..<16 { state.gprs[r] = random.edgyValue() }
    state.rflags = randomFlags()
    if form.vectorAccess > 0 { randomizeSIMDState() }
    if form.x87 { randomizeX87State() }
    // RSP always points into the window: an instruction that uses the stack implicitly
    // must never push into host memory.
    state.gprs[GPR.rsp] = windowAddress(alignment: random.chance(90) ? 8 : 1, margin: 64)
    // Forms that use the stack keep RSP as that pointer; others may use it as a base (SIB
    // base 100), which moves it anywhere, harmlessly, as they never dereference it.
    if usesStack { pinned.insert(GPR.rsp) }
    choosePrefixes()
    prepareSpecial()
    encodeOperands()
    let branchBytes: Int
    switch form.immediate {
    case .rel8: branchBytes = 1
    case .relZ: branchBytes = operandSize == 16 ? 2 : 4
    default: branchBytes = 0
    }
    finishSpecial(length: assemble().count + branchBytes)
    return GeneratedInstruction(
      bytes: assemble(), state: state, form: form, operandSize: operandSize, memoryAddress: memoryAddress)
  }

  var usesStack: Bool {
    switch form.special {
    case .stack, .popf, .ret, .enter, .leave, .indirectBranch, .relativeBranch: true
    default: false
    }
  }

  /// The bytes: legacy prefixes, REX, opcode, ModRM, SIB, displacement, immediate. A
  /// RIP-relative displacement is computed here, from the final length.
  func assemble() -> [UInt8] {
    var bytes = prefixes
    if rex != 0 || needsREX { bytes.append(0x40 | rex) }
    bytes += opcode
    if let modrm { bytes.append(modrm) }
    if let sib { bytes.append(sib) }
    var disp = displacement.value
    if let target = ripRelativeTarget {
      let length = bytes.count + 4 + immediate.count
      disp = target &- (NativeLayout.codeEntry + UInt64(length))
    }
    for i in 0..<displacement.size { bytes.append(UInt8(truncatingIfNeeded: disp >> (8 * UInt64(i)))) }
    return bytes + immediate
  }

  // MARK: Flags and prefixes

  mutating func randomFlags() -> UInt64 {
    var flags: UInt64 = 0
    for bit: UInt64 in [0, 2, 4, 6, 7, 11] where random.chance(50) { flags |= 1 << bit }
    if random.chance(30) { flags |= 1 << 10 }  // DF
    if random.chance(3) { flags |= 1 << 18 }  // AC: misaligned operands then raise #AC
    return flags
  }

  mutating func choosePrefixes() {
    switch form.size {
    case .none: operandSize = 0
    case .byte: operandSize = 8
    case .sized:
      operandSize = random.pick([16, 32, 64, 64])
    case .stack:
      // 66 on a near branch is where Intel and AMD differ (AMD truncates RIP to 16 bits), so it
      // is kept rare; on PUSH/POP it is an ordinary 16-bit stack operation.
      let rare = form.special == .relativeBranch || form.special == .indirectBranch || form.special == .ret
      operandSize = random.chance(rare ? 3 : 20) ? 16 : 64
    case .wide: operandSize = random.pick([32, 64])
    }
    if operandSize == 16 { prefixes.append(0x66) }
    if operandSize == 64 && (form.size == .sized || form.size == .wide) { rex |= 8 }
    // REX.W on a 64-bit-default form: redundant alone, and it overrides a 66 (the operand, and
    // a branch's displacement, are then 64-bit and rel32).
    if form.size == .stack && random.chance(10) {
      rex |= 8
      operandSize = 64
    }
    // Byte forms with REX reach SPL/BPL/SIL/DIL instead of AH/CH/DH/BH.
    if form.size == .byte && random.chance(40) { needsREX = true }
    // 67: 32-bit addresses. Register values above 4 GiB then test the truncation.
    if random.chance(15) {
      addressSize32 = true
      prefixes.append(0x67)
    }
    if form.repeatable && random.chance(60) { prefixes.append(random.pick([0xf3, 0xf2])) }
    // Segment overrides that mean nothing in 64-bit mode (FS and GS are never used).
    if random.chance(5) { prefixes.append(random.pick([0x26, 0x2e, 0x36, 0x3e])) }
    // Mandatory prefixes (F3 of POPCNT and friends) go right before REX and the opcode.
    while let first = opcode.first, first == 0xf3 || first == 0x66 || first == 0xf2, opcode.count > 1 {
      prefixes.append(first)
      opcode.removeFirst()
    }
    let mandatory = form.opcode.count > 1 && [0x66, 0xf2, 0xf3].contains(form.opcode[0])
    random.shuffleLegacy(&prefixes, keepingLast: mandatory)
  }

  // MARK: Operands

  mutating func encodeOperands() {
    switch form.operands {
    case .none: break
    case .opcodeRegister:
      let register = UInt8(random.next() & 15)
      // 90 with REX.B clear is NOP, not XCHG: keep the register choice as drawn.
      if register & 8 != 0 { rex |= 1 }
      opcode[opcode.count - 1] += register & 7
    case .moffs:
      let size = operandSize / 8
      let address = windowAddress(alignment: size, margin: size)
      memoryAddress = address
      let width = addressSize32 ? 4 : 8
      for i in 0..<width { immediate.append(UInt8(truncatingIfNeeded: address >> (8 * UInt64(i)))) }
    case .modrm(let digit):
      var reg = digit ?? UInt8(random.next() & 15)
      if form.special == .bitOffset || form.special == .compareExchange {
        // The register operand's value matters; keep it off the pinned registers.
        while pinned.contains(Int(reg)) || Int(reg) == GPR.rsp { reg = UInt8(random.next() & 15) }
        pinned.insert(Int(reg))
      }
      if reg & 8 != 0 { rex |= 4 }
      let wantsMemory = form.memoryOnly || (!form.registerOnly && random.chance(55))
      if wantsMemory {
        encodeMemory(reg: reg & 7)
      } else {
        let rm = UInt8(random.next() & 15)
        if rm & 8 != 0 { rex |= 1 }
        modrm = 0xc0 | (reg & 7) << 3 | (rm & 7)
      }
      if form.lockable && memoryAddress != nil && random.chance(30) { prefixes.insert(0xf0, at: 0) }
      // LOCK where it is not allowed (a register destination, or an instruction that cannot
      // take it) must raise #UD.
      if !(form.lockable && memoryAddress != nil) && random.chance(2) { prefixes.insert(0xf0, at: 0) }
    }
    encodeImmediate()
  }

  /// The number of bytes the memory operand spans, for keeping it inside the window.
  var accessSize: Int {
    if form.vectorAccess > 0 { return form.vectorAccess }
    switch form.special {
    case .compareExchangeDouble: return rex & 8 != 0 ? 16 : 8
    default: return max(1, operandSize / 8)
    }
  }

  mutating func encodeMemory(reg: UInt8) {
    let size = accessSize
    var alignment = random.chance(80) ? size : 1
    if form.special == .compareExchangeDouble && size == 16 && random.chance(85) { alignment = 16 }
    var target = windowAddress(alignment: alignment, margin: size)
    // Now and then straddle or cross an edge of the window, into a guard page (#PF).
    if random.chance(3) {
      target =
        random.chance(50)
        ? NativeLayout.dataEnd - UInt64(Int.random(in: 1...size, using: &random))
        : NativeLayout.dataBase &- UInt64(Int.random(in: 1...8, using: &random))
    }
    // Rarely, a non-canonical address: #GP(0), or #SS(0) when the base is RBP (SDM vol. 3,
    // 6.15). It faults before any access, so it is safe; only plain forms get one, whose
    // other operands do not depend on the address, and only with a base register to hold it.
    let nonCanonical = form.special == .none && !addressSize32 && random.chance(2)
    if nonCanonical {
      pinned.insert(GPR.rsp)  // the base holds the address, and RSP must stay in the sandbox
      target =
        random.pick([0x0000_8000_0000_0000, 0xffff_7fff_ffff_f000, 0x8000_0000_0000_0000])
        + UInt64.random(in: 0..<0x1000, using: &random)
    }
    let addressMask: UInt64 = addressSize32 ? 0xffff_ffff : .max
    let shape = nonCanonical ? Int.random(in: 1..<6, using: &random) : Int.random(in: 0..<6, using: &random)
    if shape == 0 {
      // RIP-relative (EIP-relative with 67): disp32 patched once the length is known.
      modrm = reg << 3 | 0b101
      displacement = (0, 4)
      ripRelativeTarget = target
      memoryAddress = target
      return
    }
    let mod: UInt8 = random.pick([0, 1, 2])
    displacement = (0, mod == 1 ? 1 : mod == 2 ? 4 : 0)
    let dispValue: Int64 =
      mod == 1
      ? Int64(Int8(truncatingIfNeeded: random.next()))
      : mod == 2 ? Int64(Int32.random(in: -0x1000...0x1000, using: &random)) : 0
    let useSIB = shape >= 3
    if !useSIB {
      // [base + disp]: rm 100 means SIB and rm 101 with mod 00 means RIP; rm 101 with mod 01/10
      // is RBP/R13. Avoid pinned registers.
      var base = pickBase()
      while base & 7 == 4 || (mod == 0 && base & 7 == 5) { base = pickBase() }
      if base & 8 != 0 { rex |= 1 }
      modrm = mod << 6 | reg << 3 | base & 7
      setRegister(Int(base), to: (target &- UInt64(bitPattern: dispValue)) & addressMask, masked: addressSize32)
      displacement.value = UInt64(bitPattern: dispValue)
      memoryAddress = target
      return
    }
    // SIB: scale, index (100 without REX.X is none), base (101 with mod 00 is disp32 only).
    let scale = UInt8.random(in: 0...3, using: &random)
    var index = pickBase()
    let noIndex = random.chance(15)
    if noIndex { index = 4 }
    var base = pickBase()
    let noBase = mod == 0 && !nonCanonical && random.chance(15)
    if noBase {
      base = 5
      displacement = (0, 4)
    }
    if index & 8 != 0 { rex |= 2 }
    if base & 8 != 0 { rex |= 1 }
    modrm = mod << 6 | reg << 3 | 0b100
    sib = scale << 6 | (index & 7) << 3 | base & 7
    var disp = dispValue
    let hasIndex = index != 4
    let hasBase = !noBase
    let factor = UInt64(1) << scale
    if hasIndex && hasBase && index == base {
      // One register serves as both: value * (1 + 2^scale) + disp = target.
      let v = (target &- UInt64(bitPattern: disp)) / (1 + factor)
      let rest = target &- v &* (1 + factor)
      disp = Int64(bitPattern: rest)
      if displacement.size == 0 { displacement.size = 4 }  // mod 00 has no displacement: give it one
      if displacement.size == 1 && (disp < -128 || disp > 127) { displacement.size = 4 }
      modrm = (displacement.size == 4 ? 2 : 1) << 6 | reg << 3 | 0b100
      if base & 7 == 5 && modrm! >> 6 == 0 { modrm = 2 << 6 | reg << 3 | 0b100 }
      setRegister(Int(base), to: v & addressMask, masked: addressSize32)
    } else {
      var indexValue: UInt64 = 0
      if hasIndex {
        indexValue = UInt64(bitPattern: Int64.random(in: -0x200...0x200, using: &random))
        setRegister(Int(index), to: indexValue & addressMask, masked: addressSize32)
      }
      if hasBase {
        setRegister(
          Int(base), to: (target &- indexValue &* factor &- UInt64(bitPattern: disp)) & addressMask,
          masked: addressSize32)
      } else {
        disp = Int64(bitPattern: target &- indexValue &* factor)
        displacement.size = 4
      }
    }
    displacement.value = UInt64(bitPattern: disp)
    // mod 00 with base 101 has no base register but a disp32: make the SIB say so.
    if hasBase && base & 7 == 5 && modrm! >> 6 == 0 {
      modrm = 2 << 6 | reg << 3 | 0b100
      displacement.size = 4
    }
    memoryAddress = target
  }

  /// A base or index register not pinned by the case (RSP only when the form does not use the
  /// stack, since its value must then stay a window address).
  mutating func pickBase() -> UInt8 {
    while true {
      let r = UInt8(random.next() & 15)
      if !pinned.contains(Int(r)) { return r }
    }
  }

  /// Sets a register used in an address. With 32-bit addressing its upper half is ignored by
  /// the CPU, so random bits go there to test that, except in RSP, which the oracle requires
  /// to stay in the sandbox (a base never strays further than a disp32 and a scaled index).
  mutating func setRegister(_ register: Int, to value: UInt64, masked: Bool) {
    let noise = masked && register != GPR.rsp && random.chance(50) ? random.next() << 32 : 0
    state.gprs[register] = value | noise
    pinned.insert(register)
  }

  mutating func encodeImmediate() {
    func bytes(_ value: UInt64, _ count: Int) -> [UInt8] {
      (0..<count).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
    }
    let value = random.edgyValue()
    switch form.immediate {
    case .none, .rel8, .relZ: break  // branches are done in finishSpecial, once the target is known
    case .byte: immediate += bytes(value, 1)
    case .word: immediate += bytes(value, 2)
    case .z: immediate += bytes(value, operandSize == 16 ? 2 : 4)
    case .full: immediate += bytes(value, operandSize == 64 ? 8 : operandSize / 8)
    case .enter:
      let frame = random.chance(70) ? UInt64.random(in: 0...0x80, using: &random) : value & 0xffff
      let level = random.chance(70) ? UInt64.random(in: 0...3, using: &random) : value & 0xff
      immediate += bytes(frame, 2) + bytes(level, 1)
    }
  }

  // MARK: Layout helpers

  /// A random address in the data window with `margin` bytes after it, aligned as asked.
  mutating func windowAddress(alignment: Int, margin: Int) -> UInt64 {
    let limit = NativeLayout.dataSize - margin
    var offset = Int.random(in: 0...limit, using: &random)
    offset -= offset % max(1, alignment)
    return NativeLayout.dataBase + UInt64(offset)
  }

  /// A control-transfer target that the oracle catches cleanly: an INT3 of the code page
  /// (before the instruction, or after its exit stub), the next instruction itself, or a
  /// page that faults on fetch (the data window, or unmapped sandbox).
  mutating func safeTarget(length: Int) -> UInt64 {
    let entry = NativeLayout.codeEntry
    let page = NativeLayout.codePage
    let afterStub = entry + UInt64(length) + NativeLayout.exitStubLength
    switch Int.random(in: 0..<10, using: &random) {
    case 0..<4: return UInt64.random(in: page...(entry - 1), using: &random)
    case 4..<7: return UInt64.random(in: afterStub..<(page + NativeLayout.codePageSize), using: &random)
    case 7: return entry + UInt64(length)
    case 8: return windowAddress(alignment: 1, margin: 1)
    default:
      return NativeLayout.sandboxBase + UInt64.random(in: 0..<0x70_0000, using: &random)
    }
  }

  /// Whether a branch target is acceptable: not the instruction itself (it would loop) and
  /// not inside the exit stub (it would run half an instruction).
  func isSafe(_ target: UInt64, length: Int) -> Bool {
    let entry = NativeLayout.codeEntry
    let next = entry + UInt64(length)
    if target == next { return true }
    if target >= entry && target < next + NativeLayout.exitStubLength { return false }
    return NativeLayout.isInSandbox(target)
  }
}

extension GeneratorRandom {
  /// Shuffles legacy prefixes; a mandatory prefix, when `keepingLast`, stays last.
  mutating func shuffleLegacy(_ prefixes: inout [UInt8], keepingLast: Bool) {
    guard prefixes.count > 1 else { return }
    if keepingLast {
      let last = prefixes.removeLast()
      prefixes.shuffle(using: &self)
      prefixes.append(last)
    } else {
      prefixes.shuffle(using: &self)
    }
  }
}

// MARK: The forms' own needs

extension CaseBuilder {
  /// Before the operands are encoded: the implicit registers, pinned so that the memory
  /// operand does not take them.
  mutating func prepareSpecial() {
    let size = UInt64(max(1, operandSize / 8))
    switch form.special {
    case .string:
      let repeated = prefixes.contains(0xf3) || prefixes.contains(0xf2)
      let count: UInt64 =
        repeated ? (random.chance(90) ? UInt64.random(in: 0...12, using: &random) : random.edgyValue()) : 0
      let span = Int(min(count, 64) * size) + 16
      for register in [GPR.rsi, GPR.rdi] {
        let offset = Int.random(in: span...(NativeLayout.dataSize - span), using: &random)
        setRegister(register, to: NativeLayout.dataBase + UInt64(offset), masked: addressSize32)
      }
      if repeated { setRegister(GPR.rcx, to: count, masked: false) } else { pinned.insert(GPR.rcx) }
      // REPE/REPNE compares: make the two strings equal for a while half the time.
      if random.chance(50) {
        let source = Int(state.gprs[GPR.rsi] & 0xffff_ffff - NativeLayout.dataBase)
        let destination = Int(state.gprs[GPR.rdi] & 0xffff_ffff - NativeLayout.dataBase)
        let run = Int.random(in: 0...16, using: &random)
        let down = state.rflags & (1 << 10) != 0
        for i in 0..<run {
          let s = down ? source - i : source + i
          let d = down ? destination - i : destination + i
          if (0..<NativeLayout.dataSize).contains(s) && (0..<NativeLayout.dataSize).contains(d) {
            state.dataWindow[d] = state.dataWindow[s]
          }
        }
        if random.chance(50), let value = state.load(state.gprs[GPR.rdi] & 0xffff_ffff, count: Int(size)) {
          state.gprs[GPR.rax] = value  // SCAS finds its value at once
        }
      }
      pinned.insert(GPR.rax)
    case .xlat:
      setRegister(GPR.rbx, to: windowAddress(alignment: 1, margin: 256), masked: addressSize32)
    case .leave:
      setRegister(GPR.rbp, to: windowAddress(alignment: random.chance(90) ? 8 : 1, margin: 8), masked: false)
    case .enter:
      // ENTER copies up to 31 frame pointers down from RBP and pushes below RSP.
      let rbp = NativeLayout.dataBase + UInt64(Int.random(in: 0x400...0x1f00, using: &random) & ~7)
      setRegister(GPR.rbp, to: rbp, masked: false)
      state.gprs[GPR.rsp] = NativeLayout.dataBase + UInt64(Int.random(in: 0x400...0x1f00, using: &random) & ~7)
    case .loop:
      setRegister(GPR.rcx, to: random.pick([0, 1, 2, 0x1_0000_0001, random.edgyValue()]), masked: false)
    case .divide:
      pinned.formUnion([GPR.rax, GPR.rdx])
    case .compareExchangeDouble:
      pinned.formUnion([GPR.rax, GPR.rdx])
    case .compareExchange:
      pinned.insert(GPR.rax)
    default: break
    }
  }

  /// After the operands are encoded, with the instruction's final `length`: branch targets,
  /// memory contents that depend on the address, and operand values.
  mutating func finishSpecial(length: Int) {
    if let address = memoryAddress, random.chance(50) {
      // Fresh bytes around the operand, so that its value is not always the background's.
      for i in 0..<16 {
        let a = address &+ UInt64(i)
        if NativeLayout.isInDataWindow(a) { state.store(random.edgyValue(), at: a, count: 1) }
      }
    }
    let size = max(1, operandSize / 8)
    switch form.special {
    case .relativeBranch, .loop:
      encodeBranch(length: length)
    case .indirectBranch:
      // All 64 bits, even for a 16-bit operand: whichever size the CPU takes, the target is
      // safe (16 bits of it is an unmapped low page).
      let target = safeTarget(length: length)
      if let address = memoryAddress {
        state.store(target, at: address, count: 8)
      } else if let (number, _) = rmRegister {
        state.gprs[number] = target
      }
    case .ret:
      state.store(safeTarget(length: length), at: state.gprs[GPR.rsp], count: 8)
    case .popf:
      // Any flags but TF (bit 8), whose trap would land on the exit stub, not the instruction.
      state.store(random.next() & ~(1 << 8), at: state.gprs[GPR.rsp], count: 8)
    case .divide:
      shapeDivision(size: size)
    case .compareExchange:
      if random.chance(50) { setLow(GPR.rax, to: readRM(), size: size) }
    case .compareExchangeDouble:
      if let address = memoryAddress, random.chance(50) {
        let half = accessSize / 2
        if let low = state.load(address, count: half), let high = state.load(address + UInt64(half), count: half) {
          setLow(GPR.rax, to: low, size: half)
          setLow(GPR.rdx, to: high, size: half)
        }
      }
    case .bitOffset:
      guard let address = memoryAddress, let modrm else { break }
      // The bit offset is a signed operand-size value that moves the access by offset / 8
      // bytes: bound it so the byte touched stays in the window.
      let below = Int(address) - Int(NativeLayout.dataBase)
      let above = Int(NativeLayout.dataEnd) - Int(address) - size
      var offset = Int.random(in: -below * 8...max(-below * 8, above * 8), using: &random)
      if operandSize == 16 { offset = max(Int(Int16.min), min(Int(Int16.max), offset)) }
      let reg = Int((modrm >> 3) & 7) | (rex & 4 != 0 ? 8 : 0)
      state.gprs[reg] = UInt64(bitPattern: Int64(offset))
    default: break
    }
  }

  mutating func encodeBranch(length: Int) {
    let next = NativeLayout.codeEntry + UInt64(length)
    switch form.immediate {
    case .rel8:
      var rel = Int8(truncatingIfNeeded: random.next())
      while !isSafe(next &+ UInt64(bitPattern: Int64(rel)), length: length) {
        rel = Int8(truncatingIfNeeded: random.next())
      }
      immediate = [UInt8(bitPattern: rel)]
    case .relZ where operandSize == 16:
      // rel16: AMD truncates the target to 16 bits (an unmapped low page), Intel ignores 66
      // and adds it to RIP; safe both ways.
      var rel = Int16(truncatingIfNeeded: random.next())
      while !isSafe(next &+ UInt64(bitPattern: Int64(rel)), length: length) {
        rel = Int16(truncatingIfNeeded: random.next())
      }
      immediate = [UInt8(truncatingIfNeeded: rel), UInt8(truncatingIfNeeded: rel >> 8)]
    case .relZ:
      var target = safeTarget(length: length)
      while !isSafe(target, length: length) { target = safeTarget(length: length) }
      let rel = UInt32(truncatingIfNeeded: target &- next)
      immediate = (0..<4).map { UInt8(truncatingIfNeeded: rel >> (8 * $0)) }
    default: break
    }
  }

  /// DIV/IDIV: 15% a zero divisor, 10% (IDIV) the most negative dividend by -1, otherwise
  /// mostly a dividend whose quotient fits (high half zero or the low half's sign).
  mutating func shapeDivision(size: Int) {
    let bits = UInt64(size * 8)
    let mask: UInt64 = bits == 64 ? .max : (1 << bits) - 1
    let signed = modrm.map { ($0 >> 3) & 7 == 7 } ?? false
    let roll = Int.random(in: 0..<100, using: &random)
    var divisor = readRM()
    var low = random.edgyValue() & mask
    var high = random.edgyValue() & mask
    if roll < 15 {
      divisor = 0
    } else if roll < 25 && signed {
      low = 1 << (bits - 1)
      high = mask
      divisor = mask
    } else if roll < 85 {
      if divisor & mask == 0 { divisor = 3 }
      high = signed && low >> (bits - 1) != 0 ? mask : 0
    }
    setRM(divisor)
    if size == 1 {
      // AX is the dividend of the byte forms: AH high, AL low.
      let ax = (high & 0xff) << 8 | low & 0xff
      state.gprs[GPR.rax] = state.gprs[GPR.rax] & ~0xffff | ax
    } else {
      setLow(GPR.rax, to: low, size: size)
      setLow(GPR.rdx, to: high, size: size)
    }
  }

  // MARK: The r/m operand's value

  /// The r/m register: number and whether it is a high-byte register (AH-BH without REX).
  var rmRegister: (number: Int, highByte: Bool)? {
    guard let modrm, modrm >> 6 == 3 else { return nil }
    let number = Int(modrm & 7) | (rex & 1 != 0 ? 8 : 0)
    let highByte = operandSize == 8 && rex == 0 && !needsREX && (4...7).contains(number)
    return highByte ? (number - 4, true) : (number, false)
  }

  func readRM() -> UInt64 {
    let size = max(1, operandSize / 8)
    if let address = memoryAddress { return state.load(address, count: size) ?? 0 }
    guard let (number, highByte) = rmRegister else { return 0 }
    let value = state.gprs[number]
    return highByte ? value >> 8 & 0xff : value
  }

  mutating func setRM(_ value: UInt64) {
    let size = max(1, operandSize / 8)
    if let address = memoryAddress {
      state.store(value, at: address, count: size)
    } else if let (number, highByte) = rmRegister {
      if highByte {  // AH, CH, DH, BH: never RSP
        state.gprs[number] = state.gprs[number] & ~0xff00 | (value & 0xff) << 8
      } else {
        setLow(number, to: value, size: size)
      }
    }
  }

  /// Replaces the low `size` bytes of a register, keeping the rest. RSP is left alone: the
  /// oracle needs it in the sandbox (a DIV by RSP then divides by a window address).
  mutating func setLow(_ register: Int, to value: UInt64, size: Int) {
    guard register != GPR.rsp else { return }
    let mask: UInt64 = size >= 8 ? .max : (1 << UInt64(size * 8)) - 1
    state.gprs[register] = state.gprs[register] & ~mask | value & mask
  }
}
