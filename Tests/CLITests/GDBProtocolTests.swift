import Foundation
import TestGuests
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// A bare remote-protocol client on a Unix socket, for what gdb itself never sends.
final class RawClient {
  private(set) var fd: Int32

  init(path: String) throws {
    // Close-on-exec, so no program another test starts can hold this end open.
    fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { target in
      for (index, byte) in path.utf8.enumerated() { target[index] = byte }
    }
    let result = withUnsafePointer(to: &address) { pointer in
      pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
      }
    }
    guard result == 0 else { throw CocoaError(.fileReadNoSuchFile) }
  }

  deinit { hangUp() }

  /// Closes the socket once. The descriptor number is free for reuse the moment it is closed,
  /// and tests run concurrently: a second close could hit another test's pipe (a child whose
  /// output pipe vanished that way died of SIGPIPE, status 141, in a full-suite run).
  func hangUp() {
    guard fd >= 0 else { return }
    close(fd)
    fd = -1
  }

  func send(_ bytes: [UInt8]) {
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
  }

  func sendPacket(_ text: String) {
    let sum = text.utf8.reduce(UInt8(0), &+)
    send(Array("$\(text)#\(String(format: "%02x", sum))".utf8))
  }

  /// Reads until `marker` shows up, the peer closes, or the time is up.
  func read(until marker: String, seconds: Double = 5) -> String {
    var text = ""
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline && !text.contains(marker) {
      var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
      guard poll(&entry, 1, 20) > 0 else { continue }
      var buffer = [UInt8](repeating: 0, count: 4096)
      let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, 4096) }
      if count <= 0 { break }
      text += String(decoding: buffer[..<count], as: UTF8.self)
    }
    return text
  }
}

@Suite(requiresKVM) struct GDBProtocolTests {
  @Test func badChecksumIsNakedAndTheRetransmitAnswered() throws {
    let server = try DebugServerProcess(TestGuests.stepExits)
    let client = try RawClient(path: server.socket)
    client.send(Array("$qC#00".utf8))
    #expect(client.read(until: "-") == "-")
    client.sendPacket("qC")
    #expect(client.read(until: "#").hasPrefix("+$QC1#"))
    client.sendPacket("k")
    #expect(server.finish() == 0)
  }

  @Test func malformedAndUnknownPacketsGetDefinedReplies() throws {
    let server = try DebugServerProcess(TestGuests.stepExits)
    let client = try RawClient(path: server.socket)
    client.sendPacket("QStartNoAckMode")
    #expect(client.read(until: "$OK#").contains("$OK#9a"))
    client.sendPacket("mzz,4")
    #expect(client.read(until: "#").hasPrefix("$E01#"))
    client.sendPacket("m8000000000,4")  // far outside guest RAM and the identity map
    #expect(client.read(until: "#").hasPrefix("$E01#"))
    client.sendPacket("Gzz")
    #expect(client.read(until: "#").hasPrefix("$E01#"))
    client.sendPacket("vFrobnicate")
    #expect(client.read(until: "#").hasPrefix("$#00"))
    client.sendPacket("m0," + String(1 << 20, radix: 16))  // more than PacketSize
    #expect(client.read(until: "#").hasPrefix("$E01#"))
    client.sendPacket("k")
    #expect(server.finish() == 0)
  }

  @Test func ctrlCStopsARunningGuestAndAHangUpLetsItRunOn() throws {
    let server = try DebugServerProcess(TestGuests.forever)
    let first = try RawClient(path: server.socket)
    first.sendPacket("QStartNoAckMode")
    _ = first.read(until: "$OK#")
    first.sendPacket("vCont;c")
    usleep(200_000)
    let sent = Date()
    first.send([0x03])
    let reply = first.read(until: "#")
    let latency = Date().timeIntervalSince(sent)
    #expect(reply.hasPrefix("$T02thread:1;"), "\(reply)")
    #expect(latency < 0.5, "Ctrl-C took \(latency) s")
    // Running again, then the client vanishes: the guest runs on and a new client can attach.
    first.sendPacket("vCont;c")
    usleep(100_000)
    first.hangUp()
    usleep(200_000)
    let second = try RawClient(path: server.socket)
    second.sendPacket("?")
    #expect(second.read(until: "#").contains("$T02thread:1;"))
    second.sendPacket("k")
    #expect(server.finish() == 0)
  }

  @Test func aSecondClientIsTurnedAway() throws {
    let server = try DebugServerProcess(TestGuests.stepExits)
    let first = try RawClient(path: server.socket)
    first.sendPacket("qC")
    _ = first.read(until: "#")
    let second = try RawClient(path: server.socket)
    #expect(second.read(until: "#").contains("E.another debugger is attached"))
    first.sendPacket("k")
    #expect(server.finish() == 0)
  }
}
