import AArch64
import Foundation
import GuestMemory

// a64-difftest: Hyperstep's AArch64 interpreter against qemu-aarch64 (user mode), instruction
// by instruction. Each generated instruction (Generator.swift) runs once in a program under
// QEMU and once on Hyperstep's CPU from the same registers, flags and memory; every register,
// SP, NZCV, V0-V31, FPCR, FPSR and the case's buffer are compared. No flag of these
// instructions is UNDEFINED on AArch64, so nothing is masked. QEMU runs as a Cortex-A57
// (ARMv8.0, no FP16), the CPU Hyperstep models.
//
//   a64-difftest [--count N] [--seed S] [--batch B] [--only WORD] [--qemu PATH]
//
// --only runs the families whose names contain WORD ("fp", "simd", "load").
//
// Prints the number of instruction instances compared and each difference; exit status 0
// when none differs, 1 otherwise, 2 for bad arguments or a missing QEMU.

var count = 4000
var seed: UInt64 = 1
var batchSize = 2000
var qemu = "/usr/bin/qemu-aarch64"
var only = Array(Generator.families.indices)
var arguments = CommandLine.arguments.dropFirst()
func usage(_ problem: String) -> Never {
  FileHandle.standardError.write(
    Data(
      "a64-difftest: \(problem)\nusage: a64-difftest [--count N] [--seed S] [--batch B] [--only WORD] [--qemu PATH]\n"
        .utf8))
  exit(2)
}
while let option = arguments.popFirst() {
  guard let value = arguments.popFirst() else { usage("\(option) needs a value") }
  switch option {
  case "--count":
    guard let value = Int(value), value > 0 else { usage("--count '\(value)' is not a positive number") }
    count = value
  case "--seed":
    guard let value = UInt64(value) else { usage("--seed '\(value)' is not a number") }
    seed = value
  case "--batch":
    guard let value = Int(value), (1...20000).contains(value) else { usage("--batch must be 1 to 20000") }
    batchSize = value
  case "--only":
    only = Generator.families.indices.filter { Generator.families[$0].contains(value) }
    guard !only.isEmpty else { usage("--only '\(value)' names no family") }
  case "--qemu": qemu = value
  default: usage("unknown option \(option)")
  }
}
guard FileManager.default.isExecutableFile(atPath: qemu) else {
  usage("\(qemu) is missing (Debian's qemu-user package; scripts/test.sh installs it)")
}

var random = SeededRandom(state: seed)
var compared = 0
var differences = 0
var perFamily: [String: Int] = [:]
let interesting: [UInt64] = [
  0, 1, 2, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, 0x1_0000_0000, .max, 0x8000_0000_0000_0000,
  0x7fff_ffff_ffff_ffff, 63, 64, 31, 32,
]

/// A register value: one of the edge cases a quarter of the time, else any 64 bits.
func randomValue(_ random: inout SeededRandom) -> UInt64 {
  random.below(4) == 0 ? interesting[Int(random.below(UInt64(interesting.count)))] : random.next()
}

/// The name of a record's word in a difference line.
func registerName(_ word: Int) -> String {
  switch word {
  case 31: return "sp"
  case 32: return "nzcv"
  case Program.fpcrWord: return "fpcr"
  case Program.fpsrWord: return "fpsr"
  case Program.vectorWord...: return "v\((word - Program.vectorWord) / 2)\(word % 2 == 0 ? ".lo" : ".hi")"
  default: return "x\(word)"
  }
}

while compared < count {
  let n = min(batchSize, count - compared)
  var cases: [TestCase] = []
  while cases.count < n {
    let family = only[Int(random.below(UInt64(only.count)))]
    guard let testCase = Generator.make(family, &random) else { continue }
    // Encodings the ISA leaves unallocated or reserved are not compared (QEMU and
    // Hyperstep both make them UNDEFINED; a signal would end QEMU's run).
    if A64Decoder.decode(testCase.word).operation == .undefined { continue }
    cases.append(testCase)
  }
  var inputs: [[UInt64]] = []
  var buffers: [[UInt8]] = []
  for (index, testCase) in cases.enumerated() {
    var record = (0..<Program.recordWords).map { _ in randomValue(&random) }
    let middle = Program.bufferMiddle(index, count: n)
    record[31] = middle  // SP: 16-byte aligned, the buffer's middle
    record[32] = (random.next() & 0xf) << 28  // NZCV
    if let base = testCase.base, base != 31 { record[Int(base)] = middle }
    if let register = testCase.index { record[Int(register)] = random.below(8) }
    for n in 0..<32 {
      let low = Program.vectorWord + 2 * n
      if let format = testCase.fpFormat {
        let width = 8 << Int(format)
        for word in testCase.fpLanes ? [low, low + 1] : [low] {
          var value = width == 64 ? 0 : random.next() << UInt64(width)
          for lane in 0..<(testCase.fpLanes ? 64 / width : 1) {
            value |= FPValues.random(format, &random) << UInt64(lane * width)
          }
          record[word] = value
        }
      } else if n > 0 && random.below(4) == 0 {
        // Equal registers, for compares and selects.
        record[low] = record[low - 2]
        record[low + 1] = record[low - 1]
      }
      if random.below(4) == 0 { record[low + 1] = 0 }
    }
    // FPCR: any rounding mode; DN, FZ and AHP a quarter of the time each. FPSR: clear, or
    // some cumulative flags already set (N, Z, C, V are RES0 without AArch32: not set).
    var fpcr = UInt64(random.field(2)) << 22
    for bit in [24, 25, 26] as [UInt64] where random.below(4) == 0 { fpcr |= 1 << bit }
    record[Program.fpcrWord] = fpcr
    record[Program.fpsrWord] = random.below(4) == 0 ? random.next() & 0x0800_009f : 0
    inputs.append(record)
    buffers.append((0..<Program.bufferBytes).map { _ in UInt8(truncatingIfNeeded: random.next()) })
  }
  let program = Program(cases: cases, inputs: inputs, buffers: buffers)
  let elf = program.elf()

  // The oracle: QEMU's user-mode emulator runs the program; its results come on stdout.
  let path =
    ProcessInfo.processInfo.environment["A64_DIFFTEST_KEEP"] ?? NSTemporaryDirectory() + "a64-difftest-\(getpid()).elf"
  FileManager.default.createFile(atPath: path, contents: Data(elf), attributes: [.posixPermissions: 0o755])
  let process = Process()
  process.executableURL = URL(fileURLWithPath: qemu)
  process.arguments = ["-cpu", "cortex-a57", path]
  let pipe = Pipe()
  process.standardOutput = pipe
  try process.run()
  let expected = [UInt8](pipe.fileHandleForReading.readDataToEndOfFile())
  process.waitUntilExit()
  if ProcessInfo.processInfo.environment["A64_DIFFTEST_KEEP"] == nil {
    try? FileManager.default.removeItem(atPath: path)
  }
  guard expected.count == program.resultBytes else {
    usage(
      "qemu-aarch64 wrote \(expected.count) of \(program.resultBytes) result bytes (status \(process.terminationStatus))"
    )
  }

  // Hyperstep: the same bytes at the same addresses, at EL0 under an identity map of Normal
  // memory (as Linux gives user space), SVC answered as Linux's write and exit.
  let actual = try InterpreterRun.results(of: program, image: elf)
  for (index, testCase) in cases.enumerated() {
    perFamily[testCase.family, default: 0] += 1
    let recordStart = index * Program.recordWords * 8
    let bufferStart = cases.count * Program.recordWords * 8 + index * Program.bufferBytes
    var problems: [String] = []
    for word in 0..<Program.recordWords where word != 29 && word != 33 {
      let range = recordStart + word * 8..<recordStart + word * 8 + 8
      if Array(expected[range]) != Array(actual.bytes[range]) {
        let name = registerName(word)
        func value(_ bytes: [UInt8]) -> String {
          String(bytes[range].reversed().map { String(format: "%02x", $0) }.joined())
        }
        problems.append("\(name) qemu \(value(expected)) hyperstep \(value(actual.bytes))")
      }
    }
    if Array(expected[bufferStart..<bufferStart + Program.bufferBytes])
      != Array(actual.bytes[bufferStart..<bufferStart + Program.bufferBytes])
    {
      problems.append("memory differs")
    }
    if let fault = actual.faults[index] { problems.append("Hyperstep raised \(fault)") }
    if !problems.isEmpty {
      differences += 1
      if differences <= 20 {
        print("DIFFERENT \(testCase.family) 0x\(String(testCase.word, radix: 16)): \(problems.joined(separator: "; "))")
      }
    }
  }
  compared += n
}
for family in only.map({ Generator.families[$0] }) { print("  \(family): \(perFamily[family, default: 0])") }
print(
  "a64-difftest: \(compared) instruction instances compared against qemu-aarch64 (seed \(seed)), \(differences) differences"
)
exit(differences == 0 ? 0 : 1)
