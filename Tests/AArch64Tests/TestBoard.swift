import AArch64
import AArch64Guests
import Foundation
import GuestMemory
import Machine

/// QEMU virt as far as the test guests use it, until the AArch64 platform lands in Machine:
/// RAM at 0x40000000, the PL011's data and flag registers, and semihosting's SYS_EXIT.
final class TestBoard: A64Bus {
  static let ramStart: UInt64 = 0x4000_0000
  static let uart: UInt64 = 0x0900_0000
  let ram: GuestRAM
  var output: [UInt8] = []
  /// The exit code semihosting's SYS_EXIT reported (its parameter block's second word).
  var exitCode: UInt64?

  init(ram: GuestRAM) { self.ram = ram }

  func mmioRead(_ address: UInt64, size: Int) -> UInt64? {
    guard address >= TestBoard.uart && address < TestBoard.uart + 0x1000 else { return nil }
    // UARTFR (offset 0x18): transmit FIFO empty, receive FIFO empty (PL011 TRM, 3.3.3).
    return address == TestBoard.uart + 0x18 ? 0x90 : 0
  }

  func mmioWrite(_ address: UInt64, size: Int, value: UInt64) -> A64BusWrite {
    guard address >= TestBoard.uart && address < TestBoard.uart + 0x1000 else { return .unmapped }
    if address == TestBoard.uart { output.append(UInt8(truncatingIfNeeded: value)) }
    return .done
  }

  func call(_ kind: ExceptionGeneration, imm: UInt16, state: inout A64State) -> A64CallVerdict { .undefined }

  /// SYS_EXIT (operation 0x18 in W0; X1 points to the reason and the code).
  func semihosting(state: inout A64State) -> A64CallVerdict {
    guard state.x[0] == 0x18, let code = try? ram.load(UInt64.self, at: GuestAddress(state.x[1] &+ 8)) else {
      return .undefined
    }
    exitCode = code
    return .stop
  }

  var text: String { String(decoding: output, as: UTF8.self) }

  /// Boots `guest` (its ELF's segments into RAM, the PC at its entry, EL1h with the MMU off,
  /// as QEMU starts an ELF kernel) and runs it until it exits or `limit` instructions retire.
  static func run(_ guest: GuestImage, limit: UInt64 = 10_000_000) throws -> (board: TestBoard, cpu: A64CPU) {
    let ram = try GuestRAM([MemoryRegionSpec(start: GuestAddress(ramStart), size: 16 << 20)])
    let elf = try ELFFile(guest.elf, for: .aarch64)
    for segment in elf.segments {
      try ram.write(elf.fileBytes(of: segment), at: GuestAddress(segment.physicalAddress))
    }
    let board = TestBoard(ram: ram)
    let cpu = A64CPU(memory: ram, bus: board)
    cpu.deliversExceptions = true
    var state = cpu.state
    state.pc = elf.entry
    cpu.state = state
    while cpu.retiredInstructions < limit {
      let (_, stop) = cpu.run(maxInstructions: limit - cpu.retiredInstructions)
      if stop == .ioStop || stop == .waiting { break }
    }
    return (board, cpu)
  }

  /// The guest's source under Guests/aarch64, for counts a test takes from it.
  static func source(of guest: GuestImage) throws -> String {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent()
    return try String(contentsOf: root.appending(path: "Guests/aarch64/\(guest.name).S"), encoding: .utf8)
  }
}
