// libFuzzer entry point for the GDB remote protocol: the input is a raw byte stream from a
// "client"; every packet it frames is handled by a session over a memory-backed target.
// Built and run by scripts/fuzz-gdbremote.sh; not part of the package build.

final class FuzzTarget: DebugTarget {
  var memory = [UInt8](repeating: 0, count: 0x1000)
  var registers = [UInt8](repeating: 0, count: RegisterLayout.x86_64.totalBytes)
  var threads: [Int] { [1, 2] }
  func threadName(_ thread: Int) -> String { "vCPU \(thread - 1)" }
  var watchpointSlots: Int? = 4
  /// Memory is mapped at 0 up to its size; the rest is one hole.
  func memoryRegion(thread: Int, address: UInt64) throws -> MemoryRegion {
    let size = UInt64(memory.count)
    if address < size { return MemoryRegion(start: 0, size: size, permissions: "rwx") }
    return MemoryRegion(start: size, size: 0 &- size, permissions: "")
  }
  func readRegisters(thread: Int, into buffer: inout [UInt8], full: Bool) throws { buffer = registers }
  func writeRegisters(thread: Int, _ image: [UInt8]) throws { registers = image }
  func readMemory(thread: Int, address: UInt64, count: Int) throws -> [UInt8] {
    guard address < UInt64(memory.count), UInt64(count) <= UInt64(memory.count) - address else {
      throw TargetError("outside memory")
    }
    return Array(memory[Int(address)..<Int(address) + count])
  }
  func writeMemory(thread: Int, address: UInt64, _ bytes: [UInt8]) throws {
    guard address < UInt64(memory.count), UInt64(bytes.count) <= UInt64(memory.count) - address else {
      throw TargetError("outside memory")
    }
    memory.replaceSubrange(Int(address)..<Int(address) + bytes.count, with: bytes)
  }
  func insertBreakpoint(_ kind: BreakpointKind, address: UInt64, length: Int) throws -> Bool { kind.rawValue < 2 }
  func removeBreakpoint(_ kind: BreakpointKind, address: UInt64, length: Int) throws -> Bool { kind.rawValue < 2 }
  func step(thread: Int) throws -> StopEvent { .step(thread: thread) }
  func resume(thread: Int) throws -> StopEvent { .breakpoint(thread: thread, kind: .software, address: 0) }
  func interrupt() {}
  func monitor(_ command: String) -> String { command }
  func detach() {}
  func kill() {}
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
  let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
  // Both register layouts: the i386 one narrows and merges registers, the x86-64 one not.
  for layout in [RegisterLayout.x86_64, .i386] {
    var decoder = PacketDecoder(maximumPayload: 4096)
    let session = Session(target: FuzzTarget(), layout: layout, maximumPacket: 4096)
    for event in decoder.feed(bytes) {
      if case .packet(let payload) = event, let reply = session.handle(payload) {
        _ = framePacket(reply)
      }
    }
  }
  return 0
}
