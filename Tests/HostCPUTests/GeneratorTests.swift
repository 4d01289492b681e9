import HostCPU
import Testing
import X86Generator

/// The generator's promises: a seed names one stream, and every case stays inside the
/// oracle's sandbox (memory, branch targets, time).
@Suite struct GeneratorTests {
  @Test func aSeedNamesOneStream() {
    var first = InstructionGenerator(seed: 42)
    var second = InstructionGenerator(seed: 42)
    var other = InstructionGenerator(seed: 43)
    var same = true
    var differs = false
    for _ in 0..<200 {
      let a = first.next()
      let b = second.next()
      let c = other.next()
      same = same && a.bytes == b.bytes && a.state == b.state
      differs = differs || a.bytes != c.bytes
    }
    #expect(same)
    #expect(differs)
  }

  @Test func casesAreEncodableAndTheirOperandsInTheWindow() {
    var generator = InstructionGenerator(seed: 7)
    for _ in 0..<2000 {
      let instruction = generator.next()
      #expect((1...15).contains(instruction.bytes.count), "\(instruction.summary)")
      #expect(instruction.state.gprs.count == 16)
      #expect(instruction.state.rflags & ~NativeLayout.rflagsMask == 0)
      if let address = instruction.memoryAddress {
        // In the window, or within a few bytes of it (the deliberate guard-page cases), or
        // deliberately non-canonical (bits 63-47 neither all zero nor all one).
        let top = address >> 47
        let canonical = top == 0 || top == 0x1ffff
        #expect(
          !canonical || (address >= NativeLayout.dataBase - 8 && address < NativeLayout.dataEnd + 16),
          "\(instruction.summary)")
      }
    }
  }

  /// Runs generated cases natively: none may escape the sandbox (a fault elsewhere would be
  /// host memory), run away, or end in an exception the generator never means to cause.
  @Test func generatedCasesStayInTheSandboxWhenRun() throws {
    var generator = InstructionGenerator(seed: 2024)
    var mnemonics: Set<String> = []
    var vectors: Set<UInt8> = []
    for _ in 0..<3000 {
      let instruction = generator.next()
      mnemonics.insert(instruction.form.mnemonic)
      let outcome = try HostCPU.execute(instruction.bytes, from: instruction.state)
      #expect(outcome.end != .timedOut, "\(instruction.summary)")
      if outcome.retired {
        #expect(NativeLayout.isInSandbox(outcome.state.rip) || outcome.state.rip < 0x1_0000, "\(instruction.summary)")
      }
      if let exception = outcome.exception {
        vectors.insert(exception.vector)
        #expect([0, 6, 12, 13, 14, 17].contains(exception.vector), "\(instruction.summary): \(exception)")
        #expect(outcome.state.rip == NativeLayout.codeEntry, "faults are reported at the instruction")
        if let address = exception.faultAddress {
          #expect(NativeLayout.isInSandbox(address), "\(instruction.summary) faulted at \(address)")
        }
      }
    }
    // A wide spread of forms and every exception the generator aims for.
    #expect(mnemonics.count > 100)
    #expect(vectors.isSuperset(of: [0, 6, 13, 14, 17]))
  }
}
