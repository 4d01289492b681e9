import GDBRemote
import KVM
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// What the server needs beyond `DebugTarget`: whether the guest has ended, and a way to
/// stop a running resume from another thread.
protocol ServedTarget: DebugTarget {
  /// The process exit status once the guest has ended.
  var exitStatus: Int32? { get }
  /// Stops a running resume, from any thread (Ctrl-C, a hang-up, a new client).
  var interrupter: @Sendable () -> Void { get }
}

/// Serves the GDB remote protocol on a listening socket, one client at a time.
final class GDBServer {
  let listener: Int32
  let target: any ServedTarget
  /// The registers gdb is offered (`--gdb-arch`).
  let layout: RegisterLayout

  enum ClientEnd {
    case killed
    case exited(Int32)
    case detached
    case disconnected
    /// Hung up without sending a packet: a probe (a port scan, or `--gdb unix:PATH` checking
    /// whether a socket is live), not a debugger leaving, so the guest stays stopped.
    case silent
  }

  init(listener: Int32, target: any ServedTarget, layout: RegisterLayout) {
    self.listener = listener
    self.target = target
    self.layout = layout
  }

  /// Runs until the guest ends or a client kills it; returns the process exit status.
  func serve() -> Int32 {
    var next = HostSocket.accept(listener)
    while let client = next {
      let end = whileRefusingOthers { serveClient(client) }
      HostIO.close(client)
      switch end {
      case .killed: return 0
      case .exited(let status): return status
      case .silent: next = HostSocket.accept(listener)
      case .detached, .disconnected:
        // The guest runs on until it ends or the next client connects.
        switch runUntilNextClient() {
        case .guestEnded(let status): return status
        case .client(let fd): next = fd
        }
      }
    }
    warn("error: cannot accept a debugger connection")
    return ExitStatus.hostFailure.rawValue
  }

  private func serveClient(_ fd: Int32) -> ClientEnd {
    var decoder = PacketDecoder(maximumPayload: 16384)
    let session = Session(target: target, layout: layout, maximumPacket: 16384)
    // gdb and LLDB show a refused breakpoint or watchpoint with a generic sentence of their
    // own; the reason goes to the terminal the server runs in.
    session.refusalHandler = { warn("refused \($0)") }
    var lastReply: [UInt8] = []
    var spoke = false
    while let bytes = HostIO.readSome(fd, max: 4096) {
      for event in decoder.feed(bytes) {
        switch event {
        case .packet(let payload):
          spoke = true
          if !session.noAck { HostIO.write(fd, [UInt8(ascii: "+")][...]) }
          let replies =
            Self.continues(payload) ? whileWatching(fd) { session.replies(to: payload) } : session.replies(to: payload)
          for reply in replies {
            lastReply = framePacket(reply)
            HostIO.write(fd, lastReply[...])
          }
          if session.killed { return .killed }
          if let status = target.exitStatus { return .exited(status) }
          if session.finished { return .detached }
        case .badChecksum:
          HostIO.write(fd, [UInt8(ascii: "-")][...])
        case .overlong:
          if !session.noAck { HostIO.write(fd, [UInt8(ascii: "+")][...]) }
          lastReply = framePacket(Array("E01".utf8))
          HostIO.write(fd, lastReply[...])
        case .nack:
          if !lastReply.isEmpty { HostIO.write(fd, lastReply[...]) }
        case .ack, .interrupt:
          break  // Ctrl-C while stopped: nothing is running
        }
      }
    }
    return spoke ? .disconnected : .silent
  }

  /// Whether a packet resumes the guest for more than one step (so Ctrl-C must be watched
  /// for): `c`, or a `vCont` without a step action. A step is over too soon to interrupt.
  static func continues(_ payload: [UInt8]) -> Bool {
    if payload.first == UInt8(ascii: "c") { return true }
    guard payload.starts(with: Array("vCont;".utf8)) else { return false }
    let actions = String(decoding: payload.dropFirst(6), as: UTF8.self).split(separator: ";")
    return !actions.contains { $0.first == "s" || $0.first == "S" }
  }

  /// Runs `body` while another thread turns away any second client (`refuse`).
  private func whileRefusingOthers(_ body: () -> ClientEnd) -> ClientEnd {
    let done = Mutex(false)
    let listener = self.listener
    let refuser = HostThread(name: "gdb-refuse") {
      while !done.withLock({ $0 }) {
        guard HostSocket.readable(listener, milliseconds: 50), let extra = HostSocket.accept(listener) else { continue }
        Self.refuse(extra)
        HostIO.close(extra)
      }
    }
    let end = body()
    done.withLock { $0 = true }
    refuser.join()
    return end
  }

  static let refusal = "E.another debugger is attached to this VM (one at a time: detach or quit it first)"

  /// Turns a client away so that it can say why. An error sent before the client speaks is
  /// lost: gdb sends its handshake first, and closing with that unread resets the connection
  /// ("Connection reset by peer", "Broken pipe"). So the first packet (gdb's qSupported) is
  /// acknowledged and answered with an `E.` error, which gdb shows as "Remote failure reply";
  /// then our side is shut, and what the client sends until it hangs up is read and dropped,
  /// so it sees a clean end of the connection ("Remote connection closed").
  ///
  /// LLDB is the exception: it opens with QStartNoAckMode, and LLDB 16 waits for ever on a
  /// half-closed connection (it goes on with its handshake and never sees the end). Closed
  /// at once without a reply, with its packet read (so no reset), it says "Connection shut
  /// down by remote side while waiting for reply to initial handshake packet" and quits; the
  /// reason is printed here instead.
  static func refuse(_ fd: Int32) {
    var decoder = PacketDecoder(maximumPayload: 4096)
    // A client that never speaks gets the refusal after 5 s; one that hangs up gets nothing.
    var first: [UInt8]?
    var polls = 0
    while first == nil && polls < 50 {
      polls += 1
      guard HostSocket.readable(fd, milliseconds: 100) else { continue }
      guard let bytes = HostIO.readSome(fd, max: 4096) else { return }
      for case .packet(let payload) in decoder.feed(bytes) where first == nil { first = payload }
    }
    warn("turned a second debugger away: one is attached to this VM already (one at a time)")
    if first == Array("QStartNoAckMode".utf8) { return }
    let spoke = first != nil
    HostIO.write(fd, ((spoke ? Array("+".utf8) : []) + framePacket(Array(refusal.utf8)))[...])
    HostSocket.shutdownWrites(fd)
    for _ in 0..<20 {  // at most 2 s
      guard HostSocket.readable(fd, milliseconds: 100) else { continue }
      if HostIO.readSome(fd, max: 4096) == nil { return }
    }
  }

  /// Runs `body` (a resume) while another thread watches the client for Ctrl-C or a hang-up,
  /// either of which stops the guest.
  private func whileWatching(_ fd: Int32, _ body: () -> [[UInt8]]) -> [[UInt8]] {
    let done = Mutex(false)
    let stopGuest = target.interrupter
    let watcher = HostThread(name: "gdb-watch") {
      // A short poll: joining this thread waits for it once the guest has stopped.
      while !done.withLock({ $0 }) {
        guard HostSocket.readable(fd, milliseconds: 5) else { continue }
        guard let bytes = HostIO.readSome(fd, max: 64) else {
          stopGuest()  // the client went away
          return
        }
        if bytes.contains(0x03) {
          stopGuest()
          return
        }
      }
    }
    let reply = body()
    done.withLock { $0 = true }
    watcher.join()
    return reply
  }

  private enum DetachedEnd {
    case guestEnded(Int32)
    case client(Int32)
  }

  /// Lets the guest run with no client; a new connection stops it and is served.
  private func runUntilNextClient() -> DetachedEnd {
    let accepted = Mutex<Int32?>(nil)
    let listener = self.listener
    let stopGuest = target.interrupter
    let acceptor = HostThread(name: "gdb-accept") {
      if let fd = HostSocket.accept(listener) {
        accepted.withLock { $0 = fd }
        stopGuest()
      }
    }
    while true {
      let event: StopEvent
      do { event = try target.resume(thread: target.threads.first ?? 1) } catch {
        warn("error: the guest cannot run on without a debugger: \(error)")
        event = .exited(status: ExitStatus.hostFailure.rawValue)
      }
      switch event {
      case .exited(let status):
        HostIO.close(listener)  // unblocks the acceptor
        return .guestEnded(status)
      case .interrupted:
        if let fd = accepted.withLock({ $0 }) {
          acceptor.join()
          return .client(fd)
        }
      case .crashed:
        HostIO.close(listener)
        return .guestEnded(ExitStatus.guestCrashed.rawValue)
      case .step, .halted, .breakpoint:
        continue  // breakpoints left behind by the last client: run on
      }
    }
  }
}
