import Foundation
import TestGuests
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// A bare remote-protocol client on a Unix socket or loopback TCP, for what gdb itself never sends.
final class RawClient {
  private(set) var fd: Int32

  /// Connects to the server's Unix socket, or to its TCP port on `host` (a numeric address).
  convenience init(_ server: DebugServerProcess, host: String = "127.0.0.1") throws {
    if let socket = server.socket {
      try self.init(path: socket)
    } else {
      try self.init(host: host, port: server.port ?? 0)
    }
  }

  init(path: String) throws {
    // Close-on-exec, so no program another test starts can hold this end open.
    fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    let socket = fd
    let result = withUnixAddress(path) { connect(socket, $0, $1) }
    guard result == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .ECONNREFUSED) }
  }

  /// TCP to "127.0.0.1" or "::1" (tests use loopback only).
  init(host: String, port: UInt16) throws {
    let ipv6 = host.contains(":")
    fd = socket(ipv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    let result: Int32
    if ipv6 {
      var address = sockaddr_in6()
      address.sin6_family = sa_family_t(AF_INET6)
      address.sin6_port = port.bigEndian
      inet_pton(AF_INET6, host, &address.sin6_addr)
      result = withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
          connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
        }
      }
    } else {
      var address = sockaddr_in()
      address.sin_family = sa_family_t(AF_INET)
      address.sin_port = port.bigEndian
      inet_pton(AF_INET, host, &address.sin_addr)
      result = withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
          connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
      }
    }
    guard result == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .ECONNREFUSED) }
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

  /// Everything the peer sends until it closes the connection; nil if it is still open after
  /// `seconds`.
  func readUntilClosed(seconds: Double) -> String? {
    var text: [UInt8] = []
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
      var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
      guard poll(&entry, 1, 20) > 0 else { continue }
      var buffer = [UInt8](repeating: 0, count: 4096)
      let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, 4096) }
      if count <= 0 { return String(decoding: text, as: UTF8.self) }
      text += buffer[..<count]
    }
    return nil
  }
}

@Suite struct GDBProtocolTests {
  @Test(arguments: Engines.all) func badChecksumIsNakedAndTheRetransmitAnswered(engine: TestEngine) throws {
    let server = try DebugServerProcess(engine: engine, TestGuests.stepExits)
    let client = try RawClient(server)
    client.send(Array("$qC#00".utf8))
    #expect(client.read(until: "-") == "-")
    client.sendPacket("qC")
    #expect(client.read(until: "#").hasPrefix("+$QC1#"))
    client.sendPacket("k")
    #expect(server.finish() == 0)
  }

  @Test(arguments: Engines.all) func malformedAndUnknownPacketsGetDefinedReplies(engine: TestEngine) throws {
    let server = try DebugServerProcess(engine: engine, TestGuests.stepExits)
    let client = try RawClient(server)
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

  @Test(arguments: Engines.all) func ctrlCStopsARunningGuestAndAHangUpLetsItRunOn(engine: TestEngine) throws {
    let server = try DebugServerProcess(engine: engine, TestGuests.forever)
    let first = try RawClient(server)
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
    let second = try RawClient(server)
    second.sendPacket("?")
    #expect(second.read(until: "#").contains("$T02thread:1;"))
    second.sendPacket("k")
    #expect(server.finish() == 0)
  }

  @Test(arguments: Engines.all) func aConnectionThatSaysNothingLeavesTheGuestStopped(engine: TestEngine) throws {
    // A probe (a port scanner, or `--gdb unix:PATH` checking whether PATH is a live socket)
    // connects and hangs up without a packet: that is no debugger detaching, so the guest
    // must not start running.
    let server = try DebugServerProcess(engine: engine, TestGuests.stepExits)
    try RawClient(server).hangUp()
    usleep(300_000)
    let client = try RawClient(server)
    client.sendPacket("?")
    // Still before the first instruction: rip (register 0x10) at the entry, 0x100000.
    #expect(client.read(until: "#").contains(";10:0000100000000000;"))
    client.sendPacket("k")
    #expect(server.finish() == 0)
  }

  @Test(arguments: Engines.all) func aSecondClientIsTurnedAway(engine: TestEngine) throws {
    let server = try DebugServerProcess(engine: engine, TestGuests.stepExits)
    let first = try RawClient(server)
    first.sendPacket("qC")
    _ = first.read(until: "#")
    // The second client is answered as a client: its packet is acknowledged and answered with
    // an error that says why (a refusal sent before the client spoke was lost with the
    // connection), and then the server hangs up.
    let second = try RawClient(server)
    second.sendPacket("qSupported:multiprocess+;swbreak+")
    let refusal = second.readUntilClosed(seconds: 10)
    #expect(refusal?.hasPrefix("+$E.another debugger is attached") == true, "\(refusal ?? "not closed")")
    first.sendPacket("k")
    #expect(server.finish() == 0)
  }
}

/// Calls `body` (connect or bind) with the Unix-domain address of `path` and its size.
func withUnixAddress(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32) -> Int32 {
  var address = sockaddr_un()
  address.sun_family = sa_family_t(AF_UNIX)
  withUnsafeMutableBytes(of: &address.sun_path) { target in
    for (index, byte) in path.utf8.enumerated() { target[index] = byte }
  }
  return withUnsafePointer(to: &address) { pointer in
    pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
  }
}

/// A Unix socket bound to `path`, listening if asked; the caller closes it. Closing it leaves
/// the socket file behind with nobody listening: a stale socket, as a crashed server leaves.
func boundUnixSocket(_ path: String, listening: Bool) -> Int32 {
  let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
  let bound = withUnixAddress(path) { bind(fd, $0, $1) }
  #expect(bound == 0, "bind \(path): errno \(errno)")
  if listening { #expect(listen(fd, 1) == 0) }
  return fd
}

/// Where `--gdb` may listen: a stale socket is replaced; host names and IPv6 literals work.
@Suite struct GDBListenTests {
  /// A client that connects is answered (`qC`), and a kill ends the server with status 0.
  func expectServed(
    _ server: DebugServerProcess, host: String? = nil, sourceLocation: SourceLocation = #_sourceLocation
  ) throws {
    let client = try host.map { try RawClient(server, host: $0) } ?? RawClient(server)
    client.sendPacket("qC")
    #expect(client.read(until: "#").hasPrefix("+$QC1#"), sourceLocation: sourceLocation)
    client.sendPacket("k")
    #expect(server.finish() == 0, "\(server.server.errorsText)", sourceLocation: sourceLocation)
  }

  @Test(arguments: Engines.all) func aStaleSocketIsReplaced(engine: TestEngine) throws {
    let path = DebugServerProcess.freshSocketPath()
    close(boundUnixSocket(path, listening: true))
    var info = stat()
    #expect(lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFSOCK, "no stale socket at \(path)")
    let server = try DebugServerProcess(engine: engine, TestGuests.stepExits, listen: "unix:\(path)")
    try expectServed(server)
  }

  @Test(arguments: Engines.all) func aHostNameIsResolved(engine: TestEngine) throws {
    // Port 0: the kernel picks a free port, which the server's message names.
    let server = try DebugServerProcess(engine: engine, TestGuests.stepExits, listen: "localhost:0")
    #expect(server.remote.hasPrefix("127.0.0.1:") && (server.port ?? 0) > 0, "\(server.server.errorsText)")
    try expectServed(server)
  }

  @Test(arguments: Engines.all) func anIPv6LiteralInBrackets(engine: TestEngine) throws {
    let server = try DebugServerProcess(engine: engine, TestGuests.stepExits, listen: "[::1]:0")
    #expect(server.remote.hasPrefix("[::1]:") && (server.port ?? 0) > 0, "\(server.server.errorsText)")
    try expectServed(server, host: "::1")
  }
}
