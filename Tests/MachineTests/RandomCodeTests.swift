import Machine
import TestGuests
import Testing

/// A malformed guest never crashes Hyperstep's own CPU: random bytes run as real-mode,
/// 32-bit and 64-bit code on the interpreter until they end the machine (a triple fault, a
/// halt, an unknown instruction's #UD loop, an exit) or the timeout stops them. Whatever the
/// bytes do to the state (wild jumps, segment loads, CR writes, port I/O, faults in handlers
/// made of random bytes), the run must end with an outcome, never a trap of Hyperstep's own.
@Suite struct RandomCodeTests {
  /// xorshift64: the same bytes on every run, so a failure can be replayed by its seed.
  struct Bytes {
    var state: UInt64
    mutating func next() -> UInt8 {
      state ^= state << 13
      state ^= state >> 7
      state ^= state << 17
      return UInt8(truncatingIfNeeded: state >> 24)
    }
  }

  static func code(seed: UInt64, count: Int = 8192) -> [UInt8] {
    var bytes = Bytes(state: seed &* 0x9e37_79b9_7f4a_7c15 | 1)
    return (0..<count).map { _ in bytes.next() }
  }

  static let seeds: [UInt64] = Array(1...12)

  func run(_ configuration: MachineConfiguration) throws -> RunOutcome {
    var configuration = configuration
    configuration.accelerator = .emu
    configuration.timeoutMilliseconds = 300
    return try Machine(configuration: configuration, console: CapturedConsole()).run()
  }

  @Test(arguments: seeds) func randomRealModeCodeEndsCleanly(seed: UInt64) throws {
    var configuration = MachineConfiguration(kernel: Self.code(seed: seed, count: 4096), kernelName: "random")
    configuration.format = .flatReal
    let outcome = try run(configuration)
    #expect(outcome.isEnd, "seed \(seed): \(outcome.summary)")
  }

  @Test(arguments: seeds) func randomProtectedModeCodeEndsCleanly(seed: UInt64) throws {
    var configuration = MachineConfiguration(kernel: Self.code(seed: seed &+ 100), kernelName: "random")
    configuration.format = .flatProtected
    let outcome = try run(configuration)
    #expect(outcome.isEnd, "seed \(seed): \(outcome.summary)")
  }

  @Test(arguments: seeds) func randomLongModeCodeEndsCleanly(seed: UInt64) throws {
    let elf = SyntheticELF(entry: 0x10_0000, segments: [.init(at: 0x10_0000, bytes: Self.code(seed: seed &+ 200))])
    let outcome = try run(MachineConfiguration(kernel: elf.bytes, kernelName: "random.elf"))
    #expect(outcome.isEnd, "seed \(seed): \(outcome.summary)")
  }
}

extension RunOutcome {
  /// An end the guest caused, not a failure of Hyperstep's: everything but an internal error
  /// other than a feature the interpreter documents as not modelled (task switches, v8086).
  var isEnd: Bool {
    switch self {
    case .internalError(let description, _): description.hasPrefix("the interpreter does not implement")
    case .entryFailed: false  // a KVM failure: impossible on the interpreter
    case .debugExit, .halted, .haltedForever, .tripleFault, .timedOut, .powerOff, .reset, .kernelPanic: true
    }
  }
}

extension RunOutcome {
  var summary: String {
    switch self {
    case .internalError(let description, _): "internal error: \(description)"
    case .tripleFault: "triple fault"
    case .haltedForever: "halted forever"
    default: "\(self)"
    }
  }
}
