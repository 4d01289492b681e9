import Testing

@testable import GDBRemote

/// The packets LLDB 16 sends beyond gdb's (logged with `log enable gdb-remote packets` against
/// `hyperstep debug`), with the replies docs/lldb-gdb-remote.txt in LLVM specifies.
@Suite struct LLDBPacketTests {
  func reply(_ session: Session, _ text: String) -> String? {
    session.handle(Array(text.utf8)).map { String(decoding: $0, as: UTF8.self) }
  }

  /// The `key:value;` pairs of a reply, in order.
  func pairs(_ reply: String?) -> [(String, String)] {
    (reply ?? "").split(separator: ";").map { pair in
      let parts = pair.split(separator: ":", maxSplits: 1)
      return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
    }
  }

  func value(_ key: String, in reply: String?) -> String? { pairs(reply).first { $0.0 == key }?.1 }

  /// A hex-encoded text value (LLDB reads qHostInfo's and qProcessInfo's triple as hex).
  func text(ofHex hex: String?) -> String? {
    hex.flatMap { hexDecoded(Array($0.utf8)) }.map { String(decoding: $0, as: UTF8.self) }
  }

  @Test func hostAndProcessInfoNameTheLayoutsArchitecture() {
    let wide = Session(target: FakeTarget())
    let host = reply(wide, "qHostInfo")
    #expect(text(ofHex: value("triple", in: host)) == "x86_64-unknown-unknown", "\(host ?? "nil")")
    #expect(value("ptrsize", in: host) == "8")
    #expect(value("endian", in: host) == "little")
    // x86 data breakpoints are traps, taken after the access (SDM vol. 3, 18.2.4).
    #expect(value("watchpoint_exceptions_received", in: host) == "after")
    let process = reply(wide, "qProcessInfo")
    #expect(value("pid", in: process) == "1")  // base 16: the one process a VM is
    #expect(text(ofHex: value("triple", in: process)) == "x86_64-unknown-unknown")

    let narrow = Session(target: FakeTarget(), layout: .i386)
    #expect(text(ofHex: value("triple", in: reply(narrow, "qHostInfo"))) == "i386-unknown-unknown")
    #expect(value("ptrsize", in: reply(narrow, "qProcessInfo")) == "4")
  }

  @Test func threadSuffixesChooseTheRegisterThread() {
    let target = FakeTarget()
    let session = Session(target: target)
    #expect(reply(session, "QThreadSuffixSupported") == "OK")
    #expect(reply(session, "P10=0400100000000000;thread:2;") == "OK")
    #expect(reply(session, "p10;thread:0002;") == "0400100000000000")
    #expect(reply(session, "g;thread:1;")?.count == RegisterLayout.x86_64.generalBytes * 2)
    // Without a suffix the Hg thread (the first) is meant.
    #expect(reply(session, "p10") == "0400100000000000")
    #expect(target.registerThreads == [2, 2, 2, 1, 1])
  }

  @Test func malformedThreadSuffixesAreRefused() {
    let target = FakeTarget()
    let session = Session(target: target)
    #expect(reply(session, "p10;thread:9;") == "E01")  // no such thread
    #expect(reply(session, "p10;thread:zz;") == "E01")
    #expect(reply(session, "p10;thread:2") == "E01")  // no closing semicolon
    #expect(reply(session, "p10;") == "E01")
    #expect(reply(session, "g;core:1;") == "E01")
    #expect(reply(session, "gg") == "E01")
    #expect(reply(session, "P10=0400100000000000;thread:;") == "E01")
    #expect(target.registerThreads.isEmpty)
  }

  @Test func stopRepliesListTheThreadsOnceAsked() {
    let session = Session(target: FakeTarget())
    #expect(reply(session, "vCont;s:1")?.contains("threads:") == false)
    #expect(reply(session, "QListThreadsInStopReply") == "OK")
    #expect(reply(session, "vCont;s:1")?.hasPrefix("T05thread:1;threads:1,2;") == true)
    #expect(reply(session, "?")?.contains("threads:1,2;") == true)
  }

  /// A step of a halted vCPU moves nothing; LLDB's instruction step would repeat it for ever
  /// unless the stop says why (`reason:exception` with a hex `description`, LLDB's keys).
  @Test func aHaltedStepSaysWhyForLLDB() {
    let session = Session(target: FakeTarget())
    let reply = String(decoding: session.stopReply(.halted(thread: 2)), as: UTF8.self)
    #expect(reply.hasPrefix("T05thread:2;06:"), "\(reply)")  // still SIGTRAP for gdb
    #expect(value("reason", in: reply) == "exception")
    #expect(
      text(ofHex: value("description", in: reply))
        == "vCPU halted: no instruction runs until an NMI, INIT or start-up IPI wakes it")
    // A plain step carries no reason: LLDB's own plan explains it.
    #expect(value("reason", in: String(decoding: session.stopReply(.step(thread: 2)), as: UTF8.self)) == nil)
  }

  /// qMemoryRegionInfo: start and size in hex; permissions only where something is mapped.
  @Test func memoryRegionsAsLLDBReadsThem() {
    let session = Session(target: FakeTarget())
    #expect(reply(session, "qMemoryRegionInfo") == "OK")
    #expect(reply(session, "qMemoryRegionInfo:100") == "start:0;size:10000;permissions:rwx;")
    #expect(reply(session, "qMemoryRegionInfo:20000") == "start:10000;size:ffffffffffff0000;")
    #expect(reply(session, "qMemoryRegionInfo:zz") == "E01")
    #expect(reply(session, "qMemoryRegionInfo:") == "E01")
    #expect(reply(session, "qMemoryRegionInfo:10000000000000000") == "E01")  // beyond 64 bits
  }

  @Test func errorRepliesCarryTheirReasonOnceAsked() {
    let session = Session(target: FakeTarget())
    #expect(reply(session, "m20000,4") == "E01")
    #expect(reply(session, "QEnableErrorStrings") == "OK")
    let reason = String(decoding: hexEncoded(Array("outside guest RAM".utf8)), as: UTF8.self)
    #expect(reply(session, "m20000,4") == "E01;" + reason)
    #expect(reply(session, "mzz,4") == "E01")  // a malformed packet has no more to say
  }

  @Test func watchpointSlotsAreTheTargets() {
    let target = FakeTarget()
    let session = Session(target: target)
    #expect(reply(session, "qWatchpointSupportInfo:") == "num:4;")
    #expect(reply(session, "qWatchpointSupportInfo") == "num:4;")
    target.watchpointSlots = nil  // no fixed number: nothing to report
    #expect(reply(session, "qWatchpointSupportInfo:") == "")
    #expect(reply(session, "qWatchpointSupportInfo:4") == "")
  }

  @Test func aRefusedWatchpointIsExplainedToTheServer() {
    let session = Session(target: FakeTarget())
    var refusals: [String] = []
    session.refusalHandler = { refusals.append($0) }
    #expect(reply(session, "Z4,1000,8") == "E16")
    #expect(reply(session, "Z2,1000,8") == "")  // unsupported, not refused: nothing to explain
    #expect(reply(session, "m20000,4") == "E01")  // memory errors are LLDB's routine probes
    #expect(refusals == ["Z4,1000,8: access watchpoints need the interpreter"])
  }

  /// Long monitor output is split into console packets of at most 1 KiB of text (2 KiB of
  /// hex), each `O` and hex, then OK; a command with no output is OK alone.
  @Test func monitorOutputComesAsConsolePackets() {
    final class Chatty: DebugTarget {
      let fake = FakeTarget()
      var threads: [Int] { fake.threads }
      var watchpointSlots: Int? { nil }
      func threadName(_ thread: Int) -> String { "" }
      func readRegisters(thread: Int, into buffer: inout [UInt8], full: Bool) throws {}
      func writeRegisters(thread: Int, _ image: [UInt8]) throws {}
      func readMemory(thread: Int, address: UInt64, count: Int) throws -> [UInt8] { [] }
      func writeMemory(thread: Int, address: UInt64, _ bytes: [UInt8]) throws {}
      func memoryRegion(thread: Int, address: UInt64) throws -> MemoryRegion {
        MemoryRegion(start: 0, size: 1, permissions: "")
      }
      func insertBreakpoint(_ kind: BreakpointKind, address: UInt64, length: Int) throws -> Bool { false }
      func removeBreakpoint(_ kind: BreakpointKind, address: UInt64, length: Int) throws -> Bool { false }
      func step(thread: Int) throws -> StopEvent { .step(thread: thread) }
      func resume(thread: Int) throws -> StopEvent { .step(thread: thread) }
      func interrupt() {}
      func monitor(_ command: String) -> String { command == "long" ? String(repeating: "x", count: 2500) : "" }
      func detach() {}
      func kill() {}
    }
    let session = Session(target: Chatty())
    func command(_ text: String) -> [String] {
      session.replies(to: Array("qRcmd,\(String(decoding: hexEncoded(Array(text.utf8)), as: UTF8.self))".utf8)).map {
        String(decoding: $0, as: UTF8.self)
      }
    }
    let packets = command("long")
    #expect(packets.map(\.count) == [1 + 2048, 1 + 2048, 1 + 904, 2])
    #expect(packets.dropLast().allSatisfy { $0.hasPrefix("O78") } && packets.last == "OK")
    #expect(command("quiet") == ["OK"])
    #expect(session.replies(to: Array("qRcmd,zz".utf8)) == [Array("E01".utf8)])
  }

  @Test func killIsAnsweredAsLLDBWaitsForIt() {
    let target = FakeTarget()
    let session = Session(target: target)
    #expect(reply(session, "k") == "X09")  // ended by SIGKILL, as lldb-server answers
    #expect(session.killed && session.finished)
    #expect(target.calls == ["kill"])
  }

  /// Everything else LLDB 16 asks is answered as unknown, which LLDB takes as "unsupported"
  /// and works without. `x` stays unknown on purpose: LLDB 16's binary reply has no prefix, so
  /// memory holding "OK" or "E01" would read as a status; `m` cannot be misread.
  @Test func otherLLDBPacketsGetTheEmptyReply() {
    let session = Session(target: FakeTarget())
    for packet in [
      "x0,0", "x100,10", "jThreadsInfo", "jThreadExtendedInfo:", "qShlibInfoAddr",
      "qStructuredDataPlugins", "qVAttachOrWaitSupported", "_M1000,rwx", "_m1000", "QSaveRegisterState",
      "qHostInfo:junk", "QSetSTDIN:2f6465762f6e756c6c",
      // Malformed forms of the packets above: unknown, and they switch nothing on.
      "qProcessInfoXYZ", "QThreadSuffixSupported:1", "QListThreadsInStopReply;", "QEnableErrorStrings1",
    ] {
      #expect(reply(session, packet) == "", "\(packet)")
    }
    #expect(!session.errorStrings && !session.threadsInStopReply)
    #expect(reply(session, "m20000,4") == "E01")
  }

  @Test func eflagsAnswersToLLDBsNameRflags() {
    #expect(RegisterLayout.x86_64.targetDescription.contains("<reg name=\"eflags\" altname=\"rflags\" bitsize=\"32\""))
    #expect(!RegisterLayout.i386.targetDescription.contains("altname"))
  }
}
