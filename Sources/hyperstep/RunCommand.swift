import ArgumentParser
import DemoGuest
import KVM
import Machine
import Synchronization

struct RunCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "run",
    abstract: "Boot a guest with its serial console on stdout (the bundled demo if no --kernel).")

  @OptionGroup var machine: MachineOptions

  @Option(
    name: .long, parsing: .unconditional,
    help: ArgumentHelp(
      "Treat a debug-exit write of this value as success: exit 0 instead of (value << 1) | 1.", valueName: "value"))
  var debugExitSuccess: String?

  @Flag(
    name: .long,
    help: "At the end, print on stderr the instructions the guest retired (Hyperstep's CPU), the run time and the rate.")
  var stats = false

  func run() throws {
    var successValue: UInt32? = machine.kernel == nil ? DemoGuestInfo.successValue : nil
    if let text = debugExitSuccess {
      do {
        successValue = UInt32(
          try OptionValue.unsigned(text, option: "--debug-exit-success", bits: 32, what: "a number", example: "0x10"))
      } catch {
        fail(error.description, status: .badInput)
      }
    }
    let configuration = machine.configuration()
    if machine.isAArch64(kernelBytes: machine.kernel == nil ? nil : configuration.kernel) {
      runAArch64(configuration)
    }
    let vm: Machine
    do {
      vm = try Machine(configuration: configuration)
    } catch {
      fail(error.description, status: error.isBadInput ? .badInput : .hostFailure)
    }
    if vm.image.linux != nil && !configuration.commandLine.split(separator: " ").contains(where: { $0.hasPrefix("console=") }) {
      warn("note: Linux writes to the serial console (stdout) only when told: add console=ttyS0 to --cmdline")
    }
    if !configuration.commandLine.isEmpty && !vm.image.multiboot && vm.image.linux == nil {
      warn("warning: --cmdline is ignored: \(vm.image.formatName) kernels are given no command line")
    }
    if stats {
      let started = HostIO.monotonicNanoseconds()
      atexit(RunStatistics.print)
      RunStatistics.source.withLock { $0 = (vm, started) }
    }
    let serial = vm.serial
    let input = vm.consoleInput
    ConsoleReader.start(
      deliver: { serial.receive($0) }, opened: { input.open(paced: $0) }, closed: { input.close() })
    report(vm.run(), successValue: successValue)
  }

  /// An AArch64 guest on the virt machine. Semihosting's exit code becomes the exit status,
  /// as `qemu-system-aarch64 -semihosting` does (any exit reason but ApplicationExit is 1).
  private func runAArch64(_ configuration: MachineConfiguration) -> Never {
    if machine.kernel == nil {
      fail("no bundled AArch64 demo: give --kernel with an AArch64 ELF or Image", status: .badInput)
    }
    let vm: VirtMachine
    do {
      vm = try VirtMachine(configuration: configuration)
    } catch {
      fail(error.description, status: error.isBadInput ? .badInput : .hostFailure)
    }
    let uart = vm.uart
    ConsoleReader.start(deliver: { uart.receive($0) }, opened: { _ in }, closed: {})
    switch vm.run() {
    case .exit(let code, _):
      Glibc.exit(Int32(truncatingIfNeeded: code & 0xff))
    case .powerOff:
      Glibc.exit(ExitStatus.success.rawValue)
    case .reset:
      warn("guest reset the machine; Hyperstep stops on reset")
      Glibc.exit(ExitStatus.success.rawValue)
    case .waitingForever(let pc):
      warn(
        "error: every CPU waits (WFI/WFE) at pc 0x\(String(pc, radix: 16)) and no timer or device will wake one")
      Glibc.exit(ExitStatus.haltedForever.rawValue)
    case .timedOut:
      fail("guest still running after --timeout \(machine.timeout ?? "") s; stopped it", status: .timedOut)
    }
  }

  private func report(_ outcome: RunOutcome, successValue: UInt32?) -> Never {
    switch outcome {
    case .debugExit(let value, let status):
      Glibc.exit(value == successValue ? 0 : status)
    case .halted, .powerOff:
      Glibc.exit(ExitStatus.success.rawValue)
    case .reset:
      warn("guest reset the machine; Hyperstep stops on reset")
      Glibc.exit(ExitStatus.success.rawValue)
    case .haltedForever(let state):
      crash(
        "guest halted with interrupts enabled, but this machine has no interrupt source to wake it", state,
        .haltedForever)
    case .tripleFault(let state):
      crash("guest triple-faulted (shutdown) on vCPU \(state.vcpu)", state, .guestCrashed)
    case .internalError(let description, let state):
      crash("\(description) on vCPU \(state.vcpu)", state, .guestCrashed)
    case .entryFailed(let reason, let state):
      crash(
        "VM entry failed on vCPU \(state.vcpu) (hardware reason 0x\(String(reason, radix: 16)))", state, .guestCrashed)
    case .timedOut:
      fail("guest still running after --timeout \(machine.timeout ?? "") s; stopped it", status: .timedOut)
    case .kernelPanic(let reason):
      fail("the guest's kernel panicked: \(reason)", status: .guestCrashed)
    }
  }

  private func crash(_ message: String, _ state: CPUState, _ status: ExitStatus) -> Never {
    warn("error: " + message)
    HostIO.write(2, Array((state.dump + "\n").utf8)[...])
    Glibc.exit(status.rawValue)
  }
}

#if canImport(Glibc)
  import Glibc
import Synchronization
#endif

/// `run --stats`: printed by an exit handler, since every way a run ends exits the process.
enum RunStatistics {
  nonisolated(unsafe) static let source = Mutex<(machine: Machine, started: UInt64)?>(nil)

  static let print: @convention(c) () -> Void = {
    guard let (machine, started) = source.withLock({ $0 }) else { return }
    let seconds = Double(HostIO.monotonicNanoseconds() &- started) / 1e9
    let line: String
    if machine.interpreterVCPUs.isEmpty {
      line = "hyperstep: stats: \(fixed(seconds, 2)) s on KVM (instructions are not counted there)"
    } else {
      let retired = machine.interpreterVCPUs.reduce(UInt64(0)) { $0 &+ $1.cpu.retiredInstructions }
      line =
        "hyperstep: stats: \(retired) instructions retired in \(fixed(seconds, 2)) s (\(fixed(Double(retired) / seconds / 1e6, 1)) MIPS)"
    }
    HostIO.write(2, Array((line + "\n").utf8)[...])
  }

  /// `value` with `digits` decimals (no Foundation in the CLI for one format).
  static func fixed(_ value: Double, _ digits: Int) -> String {
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let scaled = Int64((value * scale).rounded())
    let whole = String(scaled / Int64(scale))
    guard digits > 0 else { return whole }
    let fraction = String(abs(scaled % Int64(scale)))
    return whole + "." + String(repeating: "0", count: digits - fraction.count) + fraction
  }
}
