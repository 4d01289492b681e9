import Testing

@testable import GDBRemote

/// A target with 64 KiB of memory at 0 and recorded calls, to check the session alone.
final class FakeTarget: DebugTarget {
  var memory = [UInt8](repeating: 0, count: 0x10000)
  var registers = [UInt8](repeating: 0, count: RegisterLayout.x86_64.totalBytes)
  var calls: [String] = []
  /// The thread of every register read and write, in order.
  var registerThreads: [Int] = []
  var threads: [Int] { [1, 2] }
  func threadName(_ thread: Int) -> String { "vCPU \(thread - 1)" }
  var watchpointSlots: Int? = 4
  /// Memory is mapped at 0 up to its size; the rest is one hole.
  func memoryRegion(thread: Int, address: UInt64) throws -> MemoryRegion {
    let size = UInt64(memory.count)
    if address < size { return MemoryRegion(start: 0, size: size, permissions: "rwx") }
    return MemoryRegion(start: size, size: 0 &- size, permissions: "")
  }
  func readRegisters(thread: Int, into buffer: inout [UInt8], full: Bool) throws {
    registerThreads.append(thread)
    buffer = registers
  }
  func writeRegisters(thread: Int, _ image: [UInt8]) throws {
    registerThreads.append(thread)
    registers = image
  }
  func readMemory(thread: Int, address: UInt64, count: Int) throws -> [UInt8] {
    guard address + UInt64(count) <= UInt64(memory.count) else { throw TargetError("outside guest RAM") }
    return Array(memory[Int(address)..<Int(address) + count])
  }
  func writeMemory(thread: Int, address: UInt64, _ bytes: [UInt8]) throws {
    guard address + UInt64(bytes.count) <= UInt64(memory.count) else { throw TargetError("outside guest RAM") }
    memory.replaceSubrange(Int(address)..<Int(address) + bytes.count, with: bytes)
  }
  func insertBreakpoint(_ kind: BreakpointKind, address: UInt64, length: Int) throws -> Bool {
    calls.append("Z\(kind.rawValue) \(String(address, radix: 16))")
    if kind == .access { throw TargetError(code: 0x16, "access watchpoints need the interpreter") }
    return kind == .software || kind == .hardware
  }
  func removeBreakpoint(_ kind: BreakpointKind, address: UInt64, length: Int) throws -> Bool {
    calls.append("z\(kind.rawValue) \(String(address, radix: 16))")
    return kind == .software || kind == .hardware
  }
  func step(thread: Int) throws -> StopEvent {
    calls.append("step \(thread)")
    return .step(thread: thread)
  }
  func resume(thread: Int) throws -> StopEvent {
    calls.append("resume \(thread)")
    return .breakpoint(thread: thread, kind: .software, address: 0x1000)
  }
  func interrupt() {}
  func monitor(_ command: String) -> String { "did \(command)\n" }
  func detach() { calls.append("detach") }
  func kill() { calls.append("kill") }
}

@Suite struct SessionTests {
  func reply(_ session: Session, _ text: String) -> String? {
    session.handle(Array(text.utf8)).map { String(decoding: $0, as: UTF8.self) }
  }

  @Test func supportedFeaturesAndNoAckMode() {
    let session = Session(target: FakeTarget())
    let features = reply(session, "qSupported:multiprocess+;swbreak+") ?? ""
    #expect(features.contains("PacketSize=4000"))
    #expect(features.contains("qXfer:features:read+"))
    #expect(features.contains("QStartNoAckMode+"))
    #expect(reply(session, "QStartNoAckMode") == "OK")
    #expect(session.noAck)
  }

  @Test func targetDescriptionComesInChunks() {
    let session = Session(target: FakeTarget(), maximumPacket: 256)
    var document = ""
    var offset = 0
    while true {
      let chunk = reply(session, "qXfer:features:read:target.xml:\(String(offset, radix: 16)),ff") ?? ""
      document += chunk.dropFirst()
      offset += chunk.count - 1
      if chunk.first == "l" { break }
      #expect(chunk.first == "m")
    }
    #expect(document == RegisterLayout.x86_64.targetDescription)
    #expect(document.contains("<feature name=\"org.gnu.gdb.i386.core\">"))
    #expect(document.contains("name=\"k_gs_base\""))
    #expect(reply(session, "qXfer:features:read:other.xml:0,ff") == "E00")
  }

  @Test func registersRoundTripThroughGAndP() {
    let target = FakeTarget()
    let session = Session(target: target)
    #expect(reply(session, "g")?.count == RegisterLayout.x86_64.generalBytes * 2)  // rax..gs; the rest by p
    // P for rip (register 16): little-endian 0x100004.
    #expect(reply(session, "P10=0400100000000000") == "OK")
    #expect(reply(session, "p10") == "0400100000000000")
    #expect(reply(session, "p999") == "E01")
    #expect(reply(session, "P10=04") == "E01")  // wrong size
    #expect(reply(session, "Gzz") == "E01")
  }

  @Test func memoryReadsWritesAndErrors() {
    let target = FakeTarget()
    let session = Session(target: target)
    #expect(reply(session, "M100,3:aabbcc") == "OK")
    #expect(reply(session, "m100,3") == "aabbcc")
    #expect(session.handle(Array("X200,2:".utf8) + [0x24, 0x00]) == Array("OK".utf8))
    #expect(target.memory[0x200] == 0x24)
    #expect(reply(session, "m20000,4") == "E01")  // outside RAM: an error, not a crash
    #expect(reply(session, "mzz,4") == "E01")
    #expect(reply(session, "M100,2:aabbcc") == "E01")  // length mismatch
    #expect(reply(session, "m0,100000") == "E01")  // beyond PacketSize
    // A length whose hex doubling overflows Int: an error reply, not a trap.
    #expect(reply(session, "m0,7fffffffffffffff") == "E01")
    #expect(reply(session, "m0,4000000000000000") == "E01")
  }

  /// A vCont action with no verb (found by the fuzzer: ":" alone trapped on an empty field
  /// list) is no action: the packet is refused.
  @Test func vContActionsWithoutAVerbAreRefused() {
    let session = Session(target: FakeTarget())
    #expect(reply(session, "vCont;:") == "E01")
    #expect(reply(session, "vCont;:;:1") == "E01")
  }

  @Test func breakpointsExecutionAndStopReplies() {
    let target = FakeTarget()
    let session = Session(target: target)
    #expect(reply(session, "Z0,1000,1") == "OK")
    #expect(reply(session, "Z2,2000,4") == "")  // unsupported kinds: empty reply
    #expect(reply(session, "vCont?") == "vCont;c;C;s;S")
    // Stop replies carry the thread and expedite rbp (06), rsp (07), rip (10) and eflags (11).
    let zeros64 = String(repeating: "0", count: 16)
    let expedited = "06:\(zeros64);07:\(zeros64);10:\(zeros64);11:00000000;"
    #expect(reply(session, "vCont;s:2;c") == "T05thread:2;" + expedited)
    #expect(reply(session, "c") == "T05thread:2;" + expedited + "swbreak:;")
    #expect(target.calls == ["Z0 1000", "Z2 2000", "step 2", "resume 2"])
  }

  @Test func threadsMonitorUnknownAndEnding() {
    let target = FakeTarget()
    let session = Session(target: target)
    #expect(reply(session, "qfThreadInfo") == "m1,2")
    #expect(reply(session, "qsThreadInfo") == "l")
    #expect(reply(session, "Hg2") == "OK")
    #expect(reply(session, "qC") == "QC2")
    #expect(reply(session, "Hg9") == "E01")
    #expect(reply(session, "T9") == "E01")
    #expect(reply(session, "qThreadExtraInfo,1") == String(decoding: hexEncoded(Array("vCPU 0".utf8)), as: UTF8.self))
    // Monitor output as a console packet, then OK (what gdb and LLDB both show).
    #expect(
      session.replies(to: Array("qRcmd,\(String(decoding: hexEncoded(Array("help".utf8)), as: UTF8.self))".utf8))
        == [Array("O\(String(decoding: hexEncoded(Array("did help\n".utf8)), as: UTF8.self))".utf8), Array("OK".utf8)])
    #expect(reply(session, "qWhatever") == "")
    #expect(reply(session, "!") == "")
    #expect(reply(session, "D") == "OK")
    #expect(session.finished)
    #expect(target.calls == ["detach"])
  }
}

/// The i386 layout: gdb's 32-bit register order, each register the low part of the
/// machine's x86-64 one.
@Suite struct I386LayoutTests {
  func reply(_ session: Session, _ text: String) -> String? {
    session.handle(Array(text.utf8)).map { String(decoding: $0, as: UTF8.self) }
  }

  /// Byte `index` of machine register `number` in the fake target: every register starts
  /// with a different byte (37 is odd, so n * 37 differs for every n below 256).
  func byte(_ number: Int, _ index: Int) -> UInt8 { UInt8(truncatingIfNeeded: number * 37 + index * 101) }

  func target() -> FakeTarget {
    let target = FakeTarget()
    let machine = RegisterLayout.x86_64
    for (number, register) in machine.registers.enumerated() {
      for index in 0..<register.bytes { target.registers[machine.offsets[number] + index] = byte(number, index) }
    }
    return target
  }

  /// Register `name`'s bytes `range` in the fake machine image.
  func bytes(_ name: String, _ range: Range<Int>) -> [UInt8] {
    let number = RegisterLayout.x86_64.number(of: name)!
    return range.map { byte(number, $0) }
  }

  /// Little-endian hex of register `name`'s low `count` bytes in the fake machine image.
  func low(_ name: String, _ count: Int) -> String {
    String(decoding: hexEncoded(bytes(name, 0..<count)), as: UTF8.self)
  }

  @Test func registerOrderIsGDBs32BitOne() {
    // gdb's features/i386/32bit-core.xml and 32bit-sse.xml, in order.
    let gdbOrder =
      ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi", "eip", "eflags", "cs", "ss", "ds", "es", "fs", "gs"]
      + (0...7).map { "st\($0)" } + ["fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop"]
      + (0...7).map { "xmm\($0)" } + ["mxcsr"]
    let names = RegisterLayout.i386.registers.map(\.name)
    #expect(Array(names.prefix(gdbOrder.count)) == gdbOrder)
    #expect(Array(names.dropFirst(gdbOrder.count)) == ["fs_base", "gs_base", "cr0", "cr2", "cr3", "cr4", "efer"])
    let description = RegisterLayout.i386.targetDescription
    #expect(description.contains("<architecture>i386</architecture>"))
    #expect(description.contains("<reg name=\"eip\" bitsize=\"32\" type=\"code_ptr\" regnum=\"8\""))
    #expect(!description.contains("rip") && !description.contains("r8"))
    // gdb 13 fails an internal assertion on i386's segments feature outside GNU/Linux.
    #expect(!description.contains("org.gnu.gdb.i386.segments"))
  }

  @Test func gPacketCarriesTheLow32BitsInGDBsOrder() {
    let session = Session(target: target(), layout: .i386)
    let g = reply(session, "g") ?? ""
    // 16 general registers of 4 bytes: eax ecx edx ebx esp ebp esi edi eip eflags cs..gs.
    #expect(g.count == 16 * 4 * 2)
    let expected = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "rip", "eflags"].map { low($0, 4) }
    #expect(g.hasPrefix(expected.joined()), "\(g)")
    #expect(reply(session, "p8") == low("rip", 4))  // eip
    #expect(reply(session, "p10") == low("st0", 10))  // st0 keeps its 80 bits
    #expect(reply(session, "p20") == low("xmm0", 16))
    #expect(reply(session, "p28") == low("mxcsr", 4))
    #expect(reply(session, "p2b") == low("cr0", 4))
    #expect(reply(session, "p2f") == low("efer", 8))
    #expect(reply(session, "p30") == "E01")  // one past efer
    #expect(reply(session, "qXfer:features:read:target.xml:0,400")?.contains("<architecture>i386</") == true)
  }

  @Test func writesKeepTheUpperHalves() {
    let fake = target()
    let session = Session(target: fake, layout: .i386)
    let machine = RegisterLayout.x86_64
    let rip = machine.offsets[machine.number(of: "rip")!]
    #expect(reply(session, "P8=00201000") == "OK")  // eip = 0x102000
    #expect(Array(fake.registers[rip..<rip + 8]) == [0x00, 0x20, 0x10, 0x00] + bytes("rip", 4..<8))
    // A G packet of the 16 general registers: every low half replaced, upper halves kept.
    let image = String(repeating: "aa", count: 16 * 4)
    #expect(reply(session, "G" + image) == "OK")
    let rax = machine.offsets[0]
    #expect(Array(fake.registers[rax..<rax + 8]) == [0xaa, 0xaa, 0xaa, 0xaa] + bytes("rax", 4..<8))
    #expect(Array(fake.registers[rip..<rip + 8]) == [0xaa, 0xaa, 0xaa, 0xaa] + bytes("rip", 4..<8))
    let r8 = machine.offsets[machine.number(of: "r8")!]  // not in the i386 layout: untouched
    #expect(Array(fake.registers[r8..<r8 + 8]) == bytes("r8", 0..<8))
    #expect(reply(session, "G" + String(repeating: "aa", count: 16 * 8)) == "E01")  // the x86-64 size
  }

  @Test func stopRepliesExpediteEbpEspEipAndEflags() {
    let session = Session(target: target(), layout: .i386)
    #expect(
      reply(session, "vCont;s:1")
        == "T05thread:1;05:\(low("rbp", 4));04:\(low("rsp", 4));08:\(low("rip", 4));09:\(low("eflags", 4));")
  }

  @Test func theX86_64LayoutIsTheDefault() {
    let session = Session(target: FakeTarget())
    #expect(session.layout.architecture == "i386:x86-64")
    #expect(RegisterLayout.x86_64.isMachineLayout && !RegisterLayout.i386.isMachineLayout)
  }
}
