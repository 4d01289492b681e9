import AArch64
import GuestMemory

/// Runs a difftest program on Hyperstep's AArch64 CPU as Linux runs a static executable: at
/// EL0, with an identity map of Normal memory (one 1 GiB block, EL0 read/write/execute), SVC
/// answering write(2) to stdout and exit(2), FP and Advanced SIMD enabled.
enum InterpreterRun {
  static let tables: UInt64 = 0xf0_0000

  struct Results {
    /// What the program wrote to stdout.
    var bytes: [UInt8]
    /// Cases whose instruction raised an exception here: its ESR.
    var faults: [Int: String]
  }

  static func results(of program: Program, image: [UInt8]) throws -> Results {
    let ram = try GuestRAM([MemoryRegionSpec(start: GuestAddress(0), size: 16 << 20)])
    try ram.write(image, at: GuestAddress(Program.loadAddress))
    // Level 1 entry 0: a block at 0, AF, inner shareable, AP 0b01 (EL0 and EL1 read/write),
    // AttrIndx 0 (MAIR Attr0 = Normal write-back) (ARM ARM D5.3).
    try ram.store(UInt64(1 << 10 | 3 << 8 | 1 << 6 | 1), at: GuestAddress(tables))
    let cpu = A64CPU(memory: ram)
    var state = cpu.state
    state.system.mair = 0xff
    state.system.tcr = 25 | 1 << 23 | 5 << 32  // T0SZ 25 (39-bit VAs), EPD1, 48-bit PAs, 4 KiB
    state.system.ttbr0 = tables
    state.system.sctlr = SystemRegisters.sctlrReset | 1
    state.system.cntkctl = 3
    state.system.cpacr = 3 << 20  // FPEN: FP and Advanced SIMD for EL0, as Linux gives user space
    state.pstate.el = 0
    state.pstate.spSel = false
    state.pstate.daif = 0
    state.pc = program.codeAddress
    cpu.state = state
    var output: [UInt8] = []
    var faults: [Int: String] = [:]
    while true {
      let result = cpu.run(maxInstructions: 1_000_000)
      guard case .exception(let exception) = result.stop else {
        if result.stop == .retired { continue }
        throw DifftestError("the program stopped: \(result.stop)")
      }
      var state = cpu.state
      if exception.exceptionClass == 0x15 {
        switch state.x[8] {
        case 64:
          let address = state.x[1]
          output += try ram.read(at: GuestAddress(address), count: Int(state.x[2]))
          state.x[0] = state.x[2]
        case 93:
          return Results(bytes: output, faults: faults)
        default:
          throw DifftestError("the program made system call \(state.x[8])")
        }
      } else {
        // The case's own instruction faulted here (QEMU ran it): note it and go on.
        let index = program.caseIndex(at: state.pc) ?? -1
        faults[index] = "ESR 0x\(String(exception.syndrome, radix: 16))"
      }
      state.pc &+= 4
      cpu.state = state
    }
  }
}

struct DifftestError: Error, CustomStringConvertible {
  let description: String
  init(_ description: String) { self.description = description }
}
