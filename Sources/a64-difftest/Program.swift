/// A static AArch64 Linux program that runs each case from its starting state and records the
/// state after it: the same file runs under `qemu-aarch64` (the oracle) and on Hyperstep's
/// interpreter, so both execute the identical bytes at the identical addresses.
///
/// Per case: X29 points at the case's input record; V0-V31, FPCR, FPSR, SP, NZCV, X0-X28 and
/// X30 are loaded from it; the instruction runs; X29 then points at the output record, which
/// gets them all back. Records are 100 doublewords: X0-X28 at 0-28, 29 unused, X30 at 30, SP
/// at 31, NZCV at 32, 33 unused, V0-V31 at 34-97 (low half first), FPCR at 98, FPSR at 99.
/// Each case has a 128-byte buffer; its memory accesses use the middle of it.
/// At the end one write(2) sends the output records and the buffers to standard output.
struct Program {
  static let loadAddress: UInt64 = 0x40_0000
  static let recordWords = 100
  static let vectorWord = 34
  static let fpcrWord = 98
  static let fpsrWord = 99
  static let bufferBytes = 128

  let cases: [TestCase]
  let inputs: [[UInt64]]
  let buffers: [[UInt8]]
  private(set) var code: [UInt32] = []
  /// Where the parts go: the ELF header and program header, code, inputs, outputs, buffers.
  let codeAddress: UInt64
  let inputAddress: UInt64
  let outputAddress: UInt64
  let bufferAddress: UInt64
  /// Bytes the program writes at the end: the outputs and the buffers.
  var resultBytes: Int { cases.count * Program.recordWords * 8 + cases.count * Program.bufferBytes }

  init(cases: [TestCase], inputs: [[UInt64]], buffers: [[UInt8]]) {
    self.cases = cases
    self.inputs = inputs
    self.buffers = buffers
    (codeAddress, inputAddress, outputAddress, bufferAddress) = Program.layout(count: cases.count)
    build()
  }

  /// Where code, inputs, outputs and buffers go for `count` cases.
  static func layout(count: Int) -> (code: UInt64, input: UInt64, output: UInt64, buffer: UInt64) {
    let code = loadAddress + 0x1000
    // About 100 instructions per case; room for 128.
    let input = (code + UInt64(count * 128 * 4 + 256) + 0xfff) & ~0xfff
    let output = input + UInt64(count * recordWords * 8)
    return (code, input, output, output + UInt64(count * recordWords * 8))
  }

  // A64 encodings of the harness's own instructions (C6.2).
  static func movz(_ rd: UInt32, _ imm: UInt32, shift: UInt32) -> UInt32 {
    0xd280_0000 | (shift / 16) << 21 | imm << 5 | rd
  }
  static func movk(_ rd: UInt32, _ imm: UInt32, shift: UInt32) -> UInt32 {
    0xf280_0000 | (shift / 16) << 21 | imm << 5 | rd
  }
  static func ldp(_ t: UInt32, _ t2: UInt32, offset: Int) -> UInt32 {
    0xa940_0000 | UInt32(offset / 8) << 15 | t2 << 10 | 29 << 5 | t
  }
  static func stp(_ t: UInt32, _ t2: UInt32, offset: Int) -> UInt32 {
    0xa900_0000 | UInt32(offset / 8) << 15 | t2 << 10 | 29 << 5 | t
  }
  static func ldr(_ t: UInt32, offset: Int) -> UInt32 { 0xf940_0000 | UInt32(offset / 8) << 10 | 29 << 5 | t }
  static func str(_ t: UInt32, offset: Int) -> UInt32 { 0xf900_0000 | UInt32(offset / 8) << 10 | 29 << 5 | t }
  /// LDP and STP of Q registers at X29 + offset (a multiple of 16).
  static func ldpQ(_ t: UInt32, _ t2: UInt32, offset: Int) -> UInt32 {
    0xad40_0000 | UInt32(offset / 16) << 15 | t2 << 10 | 29 << 5 | t
  }
  static func stpQ(_ t: UInt32, _ t2: UInt32, offset: Int) -> UInt32 {
    0xad00_0000 | UInt32(offset / 16) << 15 | t2 << 10 | 29 << 5 | t
  }
  static let msrFPCR: UInt32 = 0xd51b_441e  // MSR FPCR, X30
  static let mrsFPCR: UInt32 = 0xd53b_441e  // MRS X30, FPCR
  static let msrFPSR: UInt32 = 0xd51b_443e  // MSR FPSR, X30
  static let mrsFPSR: UInt32 = 0xd53b_443e  // MRS X30, FPSR
  static let movSPFromX30: UInt32 = 0x9100_03df  // ADD SP, X30, #0
  static let movX30FromSP: UInt32 = 0x9100_03fe  // ADD X30, SP, #0
  static let msrNZCV: UInt32 = 0xd51b_421e  // MSR NZCV, X30
  static let mrsNZCV: UInt32 = 0xd53b_421e  // MRS X30, NZCV
  static let svc: UInt32 = 0xd400_0001

  mutating func load64(_ rd: UInt32, _ value: UInt64) {
    code.append(Program.movz(rd, UInt32(value & 0xffff), shift: 0))
    for shift in [16, 32, 48] as [UInt32] where (value >> UInt64(shift)) & 0xffff != 0 {
      code.append(Program.movk(rd, UInt32((value >> UInt64(shift)) & 0xffff), shift: shift))
    }
  }

  /// The address of each case's own instruction.
  private(set) var caseAddresses: [UInt64] = []

  func caseIndex(at address: UInt64) -> Int? { caseAddresses.firstIndex(of: address) }

  mutating func build() {
    for (index, testCase) in cases.enumerated() {
      load64(29, inputAddress + UInt64(index * Program.recordWords * 8))
      for pair in stride(from: 0, to: 32, by: 2) {
        code.append(Program.ldpQ(UInt32(pair), UInt32(pair + 1), offset: (Program.vectorWord + 2 * pair) * 8))
      }
      code.append(Program.ldr(30, offset: Program.fpcrWord * 8))
      code.append(Program.msrFPCR)
      code.append(Program.ldr(30, offset: Program.fpsrWord * 8))
      code.append(Program.msrFPSR)
      code.append(Program.ldr(30, offset: 31 * 8))
      code.append(Program.movSPFromX30)
      code.append(Program.ldr(30, offset: 32 * 8))
      code.append(Program.msrNZCV)
      for pair in stride(from: 0, to: 28, by: 2) {
        code.append(Program.ldp(UInt32(pair), UInt32(pair + 1), offset: pair * 8))
      }
      code.append(Program.ldr(28, offset: 28 * 8))
      code.append(Program.ldr(30, offset: 30 * 8))
      caseAddresses.append(codeAddress + UInt64(code.count * 4))
      code.append(testCase.word)
      load64(29, outputAddress + UInt64(index * Program.recordWords * 8))
      for pair in stride(from: 0, to: 28, by: 2) {
        code.append(Program.stp(UInt32(pair), UInt32(pair + 1), offset: pair * 8))
      }
      code.append(Program.str(28, offset: 28 * 8))
      code.append(Program.str(30, offset: 30 * 8))
      code.append(Program.movX30FromSP)
      code.append(Program.str(30, offset: 31 * 8))
      code.append(Program.mrsNZCV)
      code.append(Program.str(30, offset: 32 * 8))
      for pair in stride(from: 0, to: 32, by: 2) {
        code.append(Program.stpQ(UInt32(pair), UInt32(pair + 1), offset: (Program.vectorWord + 2 * pair) * 8))
      }
      code.append(Program.mrsFPCR)
      code.append(Program.str(30, offset: Program.fpcrWord * 8))
      code.append(Program.mrsFPSR)
      code.append(Program.str(30, offset: Program.fpsrWord * 8))
    }
    load64(0, 1)
    load64(1, outputAddress)
    load64(2, UInt64(resultBytes))
    load64(8, 64)  // write
    code.append(Program.svc)
    load64(0, 0)
    load64(8, 93)  // exit
    code.append(Program.svc)
  }

  /// The ELF64 executable (EM_AARCH64, one read-write-execute PT_LOAD at `loadAddress`).
  func elf() -> [UInt8] {
    var image = [UInt8](
      repeating: 0, count: Int(bufferAddress - Program.loadAddress) + cases.count * Program.bufferBytes)
    func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
      for k in 0..<MemoryLayout<T>.size { image[offset + k] = UInt8(truncatingIfNeeded: value >> (8 * k)) }
    }
    image[0..<16] = [0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    put(UInt16(2), at: 16)  // ET_EXEC
    put(UInt16(183), at: 18)  // EM_AARCH64
    put(UInt32(1), at: 20)
    put(codeAddress, at: 24)  // e_entry
    put(UInt64(64), at: 32)  // e_phoff
    put(UInt16(64), at: 52)  // e_ehsize
    put(UInt16(56), at: 54)  // e_phentsize
    put(UInt16(1), at: 56)  // e_phnum
    put(UInt32(1), at: 64)  // PT_LOAD
    put(UInt32(7), at: 68)  // RWX
    put(UInt64(0), at: 72)  // p_offset
    put(Program.loadAddress, at: 80)
    put(Program.loadAddress, at: 88)
    put(UInt64(image.count), at: 96)
    put(UInt64(image.count), at: 104)
    put(UInt64(0x1000), at: 112)
    for (index, word) in code.enumerated() { put(word, at: Int(codeAddress - Program.loadAddress) + index * 4) }
    for (index, record) in inputs.enumerated() {
      for (word, value) in record.enumerated() {
        put(value, at: Int(inputAddress - Program.loadAddress) + (index * Program.recordWords + word) * 8)
      }
    }
    for (index, buffer) in buffers.enumerated() {
      let start = Int(bufferAddress - Program.loadAddress) + index * Program.bufferBytes
      image[start..<start + Program.bufferBytes] = buffer[...]
    }
    return image
  }

  /// The middle of case `index`'s buffer: where its memory accesses start.
  static func bufferMiddle(_ index: Int, count: Int) -> UInt64 {
    layout(count: count).buffer + UInt64(index * bufferBytes + bufferBytes / 2)
  }
}
