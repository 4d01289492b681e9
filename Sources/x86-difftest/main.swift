// x86-difftest: the differential tester of issue 10. Generates instructions with their
// starting states (X86Generator), runs each natively on the host CPU (HostCPU), and will
// compares each result with Hyperstep's interpreter (`compareWithInterpreter`).
//
//   x86-difftest [--seed N] [--count N] [--verbose] [--show INDEX]
import HostCPU
import X86Generator

#if canImport(Glibc)
  import Glibc
#endif

struct Options {
  var seed: UInt64 = 1
  var count = 10_000
  var verbose = false
  /// Print one case (0-based index in the seed's stream) in full, before and after, and stop.
  var show: Int?
  /// Which forms: the integer ISA (default), the SSE/SSE2 forms, or both.
  var forms = "integer"
}

func fail(_ message: String) -> Never {
  HostProcess.printError("x86-difftest: \(message)")
  exit(2)
}

func parseOptions(_ arguments: [String]) -> Options {
  var options = Options()
  var rest = arguments[...]
  while let argument = rest.popFirst() {
    switch argument {
    case "--seed", "--count", "--show":
      guard let text = rest.popFirst() else { fail("\(argument) needs a value") }
      guard let value = UInt64(text.filter { $0 != "_" }) else {
        fail("\(argument) \(text): not a non-negative integer")
      }
      switch argument {
      case "--seed": options.seed = value
      case "--count": options.count = Int(clamping: value)
      default: options.show = Int(clamping: value)
      }
    case "--forms":
      guard let text = rest.popFirst(), ["integer", "simd", "x87", "all"].contains(text) else {
        fail("--forms needs integer, simd, x87 or all")
      }
      options.forms = text
    case "--verbose", "-v": options.verbose = true
    case "--help", "-h":
      print("usage: x86-difftest [--seed N] [--count N] [--forms integer|simd|x87|all] [--verbose] [--show INDEX]")
      exit(0)
    default: fail("unknown argument \(argument) (try --help)")
    }
  }
  return options
}

/// What comparing one case found.
enum Comparison {
  /// The hardware's watchdog stopped the case: nothing to compare.
  case notCompared
  case same
  /// A difference with a documented reason.
  case explained(Explanation)
  case different(String)
}

/// The comparison: the same bytes from the same state under Hyperstep's interpreter
/// (`InterpreterMirror`), compared on every register, the flags the SDM defines for the
/// instruction, the data window and the exception.
func compareWithInterpreter(_ instruction: GeneratedInstruction, native: NativeOutcome, mirror: InterpreterMirror)
  -> Comparison
{
  if native.end == .timedOut { return .notCompared }
  do {
    let result = try mirror.run(instruction)
    let difference = compare(instruction, native: native, interpreter: result)
    if difference.isEmpty { return .same }
    if instruction.form.mnemonic == "fxsave", let address = instruction.memoryAddress,
      compare(instruction, native: native, interpreter: result, ignoring: address + 28..<address + 32).isEmpty
    {
      return .explained(.mxcsrMask)
    }
    // LDMXCSR of a value whose only "reserved" bit is the host's bit 17 (AMD's MM): the host
    // accepts it, the model does not.
    if instruction.form.mnemonic == "ldmxcsr", let address = instruction.memoryAddress,
      let value = instruction.state.load(address, count: 4), value & ~0xffff == 1 << 17
    {
      return .explained(.mxcsrMask)
    }
    let hardwareC2 = InterpreterMirror.fpu(from: native.state.fxsave).fsw & 0x400 != 0
    if let explanation = Explanation.of(instruction, decoded: result.decoded, hardwareC2: hardwareC2) {
      return .explained(explanation)
    }
    return .different(difference)
  } catch {
    return .different("the interpreter's memory refused the case: \(error)")
  }
}

let mirror: InterpreterMirror = {
  do { return try InterpreterMirror() } catch { fail("cannot set up the interpreter: \(error)") }
}()

func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }

func describe(_ outcome: NativeOutcome) -> String {
  switch outcome.end {
  case .fellThrough: "retired, rip \(hex(outcome.state.rip))"
  case .branchedInCodePage, .branchedOutOfCodePage: "retired, branched to \(hex(outcome.state.rip))"
  case .timedOut: "TIMED OUT at \(hex(outcome.state.rip))"
  case .exception:
    if let e = outcome.exception {
      "\(e.mnemonic) error \(hex(e.errorCode))" + (e.faultAddress.map { " at \(hex($0))" } ?? "")
    } else {
      "exception"
    }
  }
}

/// One case in full: the starting registers, and what changed (registers, flags, window bytes).
func show(_ instruction: GeneratedInstruction, _ outcome: NativeOutcome, index: Int) {
  typealias GPR = NativeState.GPR
  print("case \(index) of seed \(options.seed): \(instruction.summary)")
  if let address = instruction.memoryAddress { print("  memory operand at \(hex(address))") }
  let before = instruction.state
  for r in 0..<16 {
    let after = outcome.state.gprs[r]
    let change = after == before.gprs[r] ? "" : " -> \(hex(after))"
    print("  \(GPR.names[r].padding(3)) \(hex(before.gprs[r]))\(change)")
  }
  print("  rflags \(hex(before.rflags)) -> \(hex(outcome.state.rflags))")
  print("  mxcsr \(hex(UInt64(before.mxcsr))) -> \(hex(UInt64(outcome.state.mxcsr)))")
  if instruction.form.x87 {
    let b = InterpreterMirror.fpu(from: before.fxsave)
    let a = InterpreterMirror.fpu(from: outcome.state.fxsave)
    print(
      "  fcw \(hex(UInt64(b.fcw))) fsw \(hex(UInt64(b.fsw))) -> \(hex(UInt64(a.fsw))) ftw \(hex(UInt64(b.ftw))) -> \(hex(UInt64(a.ftw)))"
    )
    for r in 0..<8 {
      print(
        "  R\(r) \(hex(UInt64(b.st[r].signExponent))):\(hex(b.st[r].significand)) -> \(hex(UInt64(a.st[r].signExponent))):\(hex(a.st[r].significand))"
      )
    }
  }
  for r in 0..<16 {
    let after = outcome.state.xmm(r)
    let change = after == before.xmm(r) ? "" : " -> \(String(after, radix: 16))"
    print("  xmm\(r) \(String(before.xmm(r), radix: 16))\(change)")
  }
  for offset in 0..<NativeLayout.dataSize where before.dataWindow[offset] != outcome.state.dataWindow[offset] {
    let address = NativeLayout.dataBase + UInt64(offset)
    print(
      "  [\(hex(address))] \(hex(UInt64(before.dataWindow[offset]))) -> \(hex(UInt64(outcome.state.dataWindow[offset])))"
    )
  }
  print("  \(describe(outcome))")
}

extension String {
  func padding(_ width: Int) -> String { self + String(repeating: " ", count: max(0, width - count)) }
}

let options = parseOptions(Array(CommandLine.arguments.dropFirst()))
let chosenForms: [InstructionForm] =
  switch options.forms {
  case "simd": InstructionForm.simdForms
  case "x87": InstructionForm.x87Forms
  case "all": InstructionForm.all + InstructionForm.simdForms + InstructionForm.x87Forms
  default: InstructionForm.all
  }
var generator = InstructionGenerator(seed: options.seed, forms: chosenForms)
if let index = options.show {
  for _ in 0..<index { _ = generator.next() }
  let instruction = generator.next()
  do {
    show(instruction, try HostCPU.execute(instruction.bytes, from: instruction.state), index: index)
  } catch {
    fail("\(error)")
  }
  exit(0)
}
var ends: [String: Int] = [:]
var vectors: [UInt8: Int] = [:]
var compared = 0
var differences = 0
var differencesByForm: [String: Int] = [:]
/// Differences with a documented reason (`Explanation`), counted apart.
var explained: [Explanation: Int] = [:]
var timedOut: [String] = []
/// Faults outside the sandbox: the generator let an instruction reach host memory.
var escapes: [String] = []

let start = HostProcess.monotonicSeconds()
do {
  try HostCPU.batch { () throws(HostCPUError) in
    for caseIndex in 0..<options.count {
      let instruction = generator.next()
      let outcome = try HostCPU.execute(instruction.bytes, from: instruction.state)
      switch outcome.end {
      case .fellThrough: ends["fell through", default: 0] += 1
      case .branchedInCodePage: ends["branched (code page)", default: 0] += 1
      case .branchedOutOfCodePage: ends["branched (fetch fault)", default: 0] += 1
      case .exception:
        vectors[outcome.exception?.vector ?? 255, default: 0] += 1
        if let address = outcome.exception?.faultAddress, !NativeLayout.isInSandbox(address) {
          escapes.append("\(instruction.summary) at \(hex(address))")
        }
      case .timedOut: timedOut.append(instruction.summary)
      }
      switch compareWithInterpreter(instruction, native: outcome, mirror: mirror) {
      case .notCompared: break
      case .same: compared += 1
      case .explained(let explanation):
        compared += 1
        explained[explanation, default: 0] += 1
      case .different(let difference):
        compared += 1
        differences += 1
        differencesByForm[instruction.form.mnemonic, default: 0] += 1
        print("DIFFERENCE #\(caseIndex) \(instruction.summary): \(difference)")
      }
      if options.verbose { print("\(instruction.summary): \(describe(outcome))") }
    }
  }
} catch {
  fail("\(error)")
}
let seconds = HostProcess.monotonicSeconds() - start

print(
  "seed \(options.seed): \(options.count) instruction instances run natively (and compared) in \(String(format2: seconds)) s (\(Int(Double(options.count) / seconds)) per second)"
)
for (name, count) in ends.sorted(by: { $0.key < $1.key }) { print("  \(name): \(count)") }
for (vector, count) in vectors.sorted(by: { $0.key < $1.key }) {
  print("  exception \(NativeException(vector: vector).mnemonic) (vector \(vector)): \(count)")
}
if !timedOut.isEmpty { print("  timed out: \(timedOut.count) (\(timedOut.prefix(5).joined(separator: "; ")))") }
if !escapes.isEmpty {
  print("  FAULTS OUTSIDE THE SANDBOX: \(escapes.count) (\(escapes.prefix(5).joined(separator: "; ")))")
}
if compared == 0 {
  print("interpreter comparison: not yet connected (0 instances compared)")
} else {
  print("interpreter comparison: \(compared) instances compared, \(differences) unexplained differences")
  for explanation in Explanation.allCases {
    print("  explained, \(explanation.rawValue): \(explained[explanation, default: 0])")
  }
  let byForm = differencesByForm.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
  if !byForm.isEmpty {
    print("  differences by form: " + byForm.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
  }
}
exit(differences == 0 && timedOut.isEmpty && escapes.isEmpty ? 0 : 1)

extension String {
  init(format2 value: Double) {
    let hundredths = Int((value * 100).rounded())
    self = "\(hundredths / 100).\(String(hundredths % 100).leftPad2)"
  }
  var leftPad2: String { count < 2 ? "0" + self : self }
}
