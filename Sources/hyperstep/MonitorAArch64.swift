import AArch64
import Debugger
import GuestMemory
import KVM
import Machine

/// `hyperstep monitor` for an AArch64 guest: the same console, commands and lines as on x86
/// (README, "hyperstep monitor"), over the virt machine's own stepping. Breakpoints are host
/// breakpoints, any number; `r` shows AArch64's registers; `m` reads by virtual address
/// through the guest's stage 1 tables. The guest's request to stop is `hvc #0x4853` with
/// W0 = 1 (the x86 control port's write of 1).
final class VirtMonitorConsole {
  let vm: VirtMachine
  let symbols: SymbolTable?
  let imageName: String
  private var input = LineReader(fd: 0)
  private let interactive = HostIO.isTerminal(0)
  private var breakpoints: Set<UInt64> = []
  private var cpu: A64CPU { vm.cpus[0] }

  init(vm: VirtMachine, symbols: SymbolTable?, imageName: String) {
    self.vm = vm
    self.symbols = symbols
    self.imageName = imageName
  }

  func say(_ text: String) { HostIO.write(1, Array((text + "\n").utf8)[...]) }

  func describe(_ pc: UInt64, _ reason: String?) -> String {
    MonitorAddress.describe(pc, reason, symbols: symbols)
  }

  private enum Action {
    case step(Int)
    case run
    case quit
  }

  /// Runs the console; returns the process exit status.
  func start() -> Int32 {
    var reason: String?
    while true {
      say("stop: " + describe(cpu.state.pc, reason))
      reason = nil
      switch commands() {
      case .quit:
        return ExitStatus.success.rawValue
      case .step(let count):
        for step in 1...count {
          // Breakpoints do not cut `s N` short, and a step from one runs its instruction.
          cpu.passBreakpointOnce()
          let stop = vm.step(cpu: 0, deliverInterrupts: false)
          if case .ended(let outcome) = stop { return ended(outcome) }
          if case .halted = stop {
            reason = "halted"
            break
          }
          if step < count { say("step: " + describe(cpu.state.pc, nil)) }
        }
      case .run:
        // As gdb does: a breakpoint under the PC is stepped over first.
        if breakpoints.contains(cpu.state.pc) { cpu.passBreakpointOnce() }
        running: while true {
          let (index, stop) = vm.resume { false }
          switch stop {
          case .breakpoint where index == 0:
            reason = "breakpoint"
            break running
          case .guestRequest(let value) where index == 0 && value == 1:
            reason = "request 1"
            break running
          case .ended(let outcome):
            return ended(outcome)
          default:
            continue
          }
        }
      }
    }
  }

  private func ended(_ outcome: VirtOutcome) -> Int32 {
    say("stop: " + describe(cpu.state.pc, "exit " + TraceWriter.outcomeName(outcome.runOutcome)))
    return TraceCommand.status(of: outcome)
  }

  /// Takes commands until one lets the guest go on; every other is answered in one line.
  private func commands() -> Action {
    while true {
      if interactive { HostIO.write(1, Array("(hyperstep) ".utf8)[...]) }
      guard let line = input.next() else { return .quit }
      switch MonitorCommandLine(line) {
      case .empty: continue
      case .refused(let answer): say(answer)
      case .step(let count): return .step(count)
      case .run: return .run
      case .quit: return .quit
      case .registers: say(registerDump(cpu.state))
      case .memory(let text, let length):
        guard let address = resolve(text) else { continue }
        dumpMemory(at: address, count: length)
      case .breakpoint(let text):
        guard let address = resolve(text) else { continue }
        let hex = "0x" + String(address, radix: 16)
        if breakpoints.contains(address) {
          say("breakpoint at \(hex) is already set")
        } else {
          breakpoints.insert(address)
          cpu.hostBreakpoints = breakpoints
          say("breakpoint at \(hex)")
        }
      }
    }
  }

  /// X0-X30, SP, PC and PSTATE, then the EL1 system registers a kernel debugger reads first.
  func registerDump(_ s: A64State) -> String {
    func h(_ value: UInt64) -> String {
      let digits = String(value, radix: 16)
      return String(repeating: "0", count: max(0, 16 - digits.count)) + digits
    }
    var lines: [String] = []
    for row in stride(from: 0, to: 31, by: 4) {
      lines.append(
        (row..<min(row + 4, 31)).map { "X\($0 < 10 ? "0" : "")\($0)=\(h(s.x[$0]))" }.joined(separator: " ")
          + (row == 28 ? " SP=\(h(s.sp))" : ""))
    }
    let p = s.pstate
    let flags = ["N", "Z", "C", "V"].enumerated().map { p.nzcv >> UInt32(31 - $0.offset) & 1 != 0 ? $0.element : "-" }
    lines.append("PC=\(h(s.pc)) PSTATE=\(h(p.spsr)) \(flags.joined()) EL\(p.el)\(p.spSel && p.el != 0 ? "h" : "t")")
    let r = s.system
    lines.append("SCTLR_EL1=\(h(r.sctlr)) TCR_EL1=\(h(r.tcr)) TTBR0_EL1=\(h(r.ttbr0)) TTBR1_EL1=\(h(r.ttbr1))")
    lines.append(
      "VBAR_EL1=\(h(r.vbar)) ESR_EL1=\(h(r.esr)) FAR_EL1=\(h(r.far)) ELR_EL1=\(h(r.elr)) SPSR_EL1=\(h(r.spsr))")
    return lines.joined(separator: "\n")
  }

  private func dumpMemory(at address: UInt64, count: Int) {
    var bytes: [UInt8] = []
    var cursor = address
    while bytes.count < count {
      let chunk = min(count - bytes.count, Int(0x1000 - (cursor & 0xfff)))
      guard let physical = cpu.translate(cursor),
        let read = try? vm.memory.read(at: GuestAddress(physical), count: chunk)
      else {
        say("cannot read 0x\(String(cursor, radix: 16)): not mapped to RAM")
        return
      }
      bytes += read
      cursor &+= UInt64(chunk)
    }
    for line in MonitorAddress.dump(bytes, at: address) { say(line) }
  }

  private func resolve(_ text: String) -> UInt64? {
    MonitorAddress.resolve(text, symbols: symbols, imageName: imageName, refuse: say)
  }

}
