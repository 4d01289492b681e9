import AArch64
import AArch64Guests
import Foundation
import Machine

/// Boots AArch64 test guests on the virt machine with their output captured.
enum VirtGuests {
  static func machine(_ guest: GuestImage, cpus: Int = 1, console: CapturedConsole) throws -> VirtMachine {
    var configuration = MachineConfiguration(kernel: guest.elf, kernelName: guest.name)
    configuration.cpuCount = cpus
    configuration.memorySize = 128 << 20
    configuration.timeoutMilliseconds = 60_000
    return try VirtMachine(configuration: configuration, console: console)
  }

  static func run(_ guest: GuestImage, cpus: Int = 1, quantum: UInt64? = nil) throws -> (
    String, VirtOutcome, VirtMachine
  ) {
    let console = CapturedConsole()
    let vm = try machine(guest, cpus: cpus, console: console)
    if let quantum { vm.quantum = quantum }
    let outcome = vm.run()
    return (console.text, outcome, vm)
  }

  /// The guest's source under Guests/aarch64, for counts a test takes from it.
  static func source(of guest: GuestImage) throws -> String {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent()
    return try String(contentsOf: root.appending(path: "Guests/aarch64/\(guest.name).S"), encoding: .utf8)
  }

  /// `value` as 16 hexadecimal digits, the way the guests' put_hex prints it.
  static func hex(_ value: Int) -> String { hex(UInt64(value)) }

  static func hex(_ value: UInt64) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: 16 - digits.count) + digits
  }
}
