#if canImport(Glibc)
  import Glibc
#endif

/// Listening and connected stream sockets for the GDB server (TCP or Unix-domain).
public enum HostSocket {
  public struct Failure: Error, CustomStringConvertible {
    public let description: String
  }

  /// A listening TCP socket and the numeric address it is bound to.
  public struct TCPListener: Sendable {
    public let fd: Int32
    /// "127.0.0.1" or "::1": what the host name resolved to.
    public let address: String
    public let port: UInt16

    /// "127.0.0.1:1234" or "[::1]:1234", the form gdb's `target remote` takes.
    public var endpoint: String { address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)" }
  }

  /// Listens on `host` and `port`. `host` is a name or an IPv4 address, resolved with
  /// getaddrinfo, or with `ipv6Literal` an IPv6 address (given in brackets, shown without).
  /// The first address that binds is used. Port 0 picks a free one.
  public static func listenTCP(host: String, port: UInt16, ipv6Literal: Bool = false) throws(Failure) -> TCPListener {
    // SAFETY: a zeroed addrinfo holds null pointers, which getaddrinfo expects in its hints.
    var hints = unsafe addrinfo()
    // The port is always a number; a bracketed address must be a literal, never a name.
    let flags = AI_NUMERICSERV | (ipv6Literal ? AI_NUMERICHOST : 0)
    // SAFETY: plain integer fields of the local hints.
    unsafe (hints.ai_socktype, hints.ai_family, hints.ai_flags) = (
      Int32(SOCK_STREAM.rawValue), ipv6Literal ? AF_INET6 : AF_UNSPEC, flags
    )
    var list: UnsafeMutablePointer<addrinfo>? = nil
    // SAFETY: getaddrinfo reads the two C strings converted for the call and the hints, and
    // stores a list it allocated in `list`, freed below.
    let resolved = unsafe getaddrinfo(host, String(port), &hints, &list)
    guard resolved == 0 else {
      if ipv6Literal && resolved == EAI_NONAME { throw Failure(description: "'\(host)' is not an IPv6 address") }
      // SAFETY: gai_strerror returns a static, NUL-terminated message.
      throw Failure(description: "cannot resolve '\(host)': \(unsafe String(cString: gai_strerror(resolved)))")
    }
    // SAFETY: `list` came from a successful getaddrinfo and is freed once, here.
    defer { unsafe freeaddrinfo(list) }
    var lastError = "no address"
    var cursor = unsafe list
    while let entry = unsafe cursor {
      // SAFETY: every node of the list getaddrinfo returned is valid until freeaddrinfo.
      let (family, address, length, next) = unsafe (
        entry.pointee.ai_family, entry.pointee.ai_addr, entry.pointee.ai_addrlen, entry.pointee.ai_next
      )
      unsafe cursor = next
      let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
      guard fd >= 0 else {
        lastError = errorText()
        continue
      }
      var on: Int32 = 1
      // SAFETY: setsockopt reads one Int32 from `on`.
      _ = unsafe setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
      // SAFETY: the address and its length as getaddrinfo gave them, still allocated.
      guard unsafe bind(fd, address, length) == 0, listen(fd, 1) == 0 else {
        lastError = errorText()
        Glibc.close(fd)
        continue
      }
      let (numeric, actualPort) = boundAddress(fd)
      return TCPListener(fd: fd, address: numeric, port: actualPort)
    }
    throw Failure(description: "cannot listen on \(host):\(port): \(lastError)")
  }

  /// The numeric address and port a socket is bound to.
  private static func boundAddress(_ fd: Int32) -> (String, UInt16) {
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
    var service = [CChar](repeating: 0, count: Int(NI_MAXSERV))
    // SAFETY: getsockname fills at most `length` bytes of the sockaddr_storage, which fits any
    // family; getnameinfo reads that many and writes NUL-terminated text within the two
    // buffers, whose sizes it is given.
    let named = unsafe withUnsafeMutablePointer(to: &storage) { pointer in
      unsafe pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
        guard unsafe getsockname(fd, address, &length) == 0 else { return false }
        return unsafe getnameinfo(
          address, length, &host, socklen_t(host.count), &service, socklen_t(service.count),
          NI_NUMERICHOST | NI_NUMERICSERV) == 0
      }
    }
    guard named else { return ("?", 0) }
    // SAFETY: getnameinfo succeeded, so both buffers hold NUL-terminated strings.
    let address = unsafe host.withUnsafeBufferPointer { unsafe String(cString: $0.baseAddress!) }
    let port = unsafe service.withUnsafeBufferPointer { unsafe String(cString: $0.baseAddress!) }
    return (address, UInt16(port) ?? 0)
  }

  /// Listens on a Unix-domain socket path. Only a stale socket there (one nobody listens on,
  /// left by a server that ended without removing it) is replaced; anything else at the path
  /// is refused, never deleted.
  public static func listenUnix(path: String) throws(Failure) -> Int32 {
    guard !path.isEmpty else { throw Failure(description: "no socket path given") }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
      throw Failure(description: "socket path is too long (\(bytes.count) bytes)")
    }
    // SAFETY: the path, shorter than sun_path as checked, is copied into it.
    unsafe withUnsafeMutableBytes(of: &address.sun_path) { target in
      for (index, byte) in bytes.enumerated() { unsafe target[index] = byte }
    }
    try removeStaleSocket(path, address: address)
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw Failure(description: "socket: \(errorText())") }
    guard connectOrBind(fd, address, bind: true) == 0, listen(fd, 1) == 0 else {
      let text = errorText()
      Glibc.close(fd)
      throw Failure(description: "cannot listen on \(path): \(text)")
    }
    return fd
  }

  /// Unlinks `path` if it is a socket nobody listens on; throws if anything else is there.
  /// (Between this check and the bind another process could take the path; bind then fails
  /// with "Address already in use" rather than replacing anything.)
  private static func removeStaleSocket(_ path: String, address: sockaddr_un) throws(Failure) {
    var info = stat()
    // SAFETY: lstat writes one stat into `info`; the path is a C string converted for the call.
    guard unsafe lstat(path, &info) == 0 else {
      if errno == ENOENT { return }
      throw Failure(description: "cannot use \(path): \(errorText())")
    }
    guard info.st_mode & S_IFMT == S_IFSOCK else {
      throw Failure(
        description: "\(path) exists and is not a socket (\(HostIO.fileKind(info.st_mode))); it was left alone")
    }
    // Whether a server still listens there shows only by connecting. Non-blocking, so a live
    // server with a full backlog answers EAGAIN at once instead of making us wait.
    let probe = socket(
      AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
    guard probe >= 0 else { throw Failure(description: "socket: \(errorText())") }
    let connected = connectOrBind(probe, address, bind: false) == 0
    let reason = errno
    Glibc.close(probe)
    guard !connected, reason != EAGAIN, reason != EINPROGRESS else {
      throw Failure(description: "\(path) is a socket and something is listening on it (another hyperstep debug?)")
    }
    guard reason == ECONNREFUSED else {
      throw Failure(description: "cannot tell whether \(path) is in use: \(errorText(reason))")
    }
    // SAFETY: unlink(2) with a C string converted for the call.
    guard unsafe unlink(path) == 0 || errno == ENOENT else {
      throw Failure(description: "cannot remove the stale socket \(path): \(errorText())")
    }
  }

  /// bind(2) or connect(2) on a Unix-domain address; returns the call's result (errno is set).
  private static func connectOrBind(_ fd: Int32, _ address: sockaddr_un, bind: Bool) -> Int32 {
    var address = address
    // SAFETY: a sockaddr_un passed with its own size, as bind(2) and connect(2) want.
    return unsafe withUnsafePointer(to: &address) { pointer in
      unsafe pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
        let length = socklen_t(MemoryLayout<sockaddr_un>.size)
        return unsafe bind ? Glibc.bind(fd, socketAddress, length) : Glibc.connect(fd, socketAddress, length)
      }
    }
  }

  /// Waits for a connection; returns its descriptor (TCP_NODELAY set for TCP).
  public static func accept(_ listener: Int32) -> Int32? {
    while true {
      let fd = Glibc.accept(listener, nil, nil)  // no peer address wanted
      if fd >= 0 {
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        var on: Int32 = 1
        // SAFETY: setsockopt reads one Int32 from `on` (and fails harmlessly on Unix sockets).
        _ = unsafe setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
        return fd
      }
      if errno != EINTR { return nil }
    }
  }

  /// Ends our side of a connection (the peer reads end of file) while still letting us read
  /// what it sends: closing with its data unread would reset the connection instead.
  public static func shutdownWrites(_ fd: Int32) {
    _ = shutdown(fd, Int32(SHUT_WR))
  }

  /// A client that hangs up must not kill the server with SIGPIPE: writes then fail instead.
  public static func ignoreBrokenPipes() {
    _ = signal(SIGPIPE, SIG_IGN)
  }

  /// Whether `fd` has data (or a hang-up) within `milliseconds`.
  public static func readable(_ fd: Int32, milliseconds: Int32) -> Bool {
    var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    // SAFETY: poll(2) on one local pollfd.
    return unsafe poll(&entry, 1, milliseconds) > 0
  }

  private static func errorText(_ code: Int32 = errno) -> String {
    // SAFETY: strerror returns a static, NUL-terminated message.
    unsafe String(cString: strerror(code))
  }
}
