#if canImport(Glibc)
  import Glibc
#endif

/// Listening and connected stream sockets for the GDB server (TCP or Unix-domain).
public enum HostSocket {
  public struct Failure: Error, CustomStringConvertible {
    public let description: String
  }

  /// Listens on an IPv4 address and port ("127.0.0.1", 1234). Port 0 picks a free one.
  public static func listenTCP(host: String, port: UInt16) throws(Failure) -> (fd: Int32, port: UInt16) {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    // SAFETY: inet_pton writes at most 4 bytes into the in_addr it is given.
    guard unsafe inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
      throw Failure(description: "'\(host)' is not an IPv4 address")
    }
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw Failure(description: "socket: \(errorText())") }
    var on: Int32 = 1
    // SAFETY: setsockopt reads one Int32 from `on`.
    _ = unsafe setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
    // SAFETY: a sockaddr_in passed with its own size, as bind(2) wants.
    let bound = unsafe withUnsafePointer(to: &address) { pointer in
      unsafe pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
        unsafe bind(fd, socketAddress, socklen_t(MemoryLayout<sockaddr_in>.size))
      }
    }
    guard bound == 0, listen(fd, 1) == 0 else {
      let text = errorText()
      Glibc.close(fd)
      throw Failure(description: "cannot listen on \(host):\(port): \(text)")
    }
    var actual = sockaddr_in()
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    // SAFETY: getsockname fills at most `length` bytes of the sockaddr_in.
    _ = unsafe withUnsafeMutablePointer(to: &actual) { pointer in
      unsafe pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { unsafe getsockname(fd, $0, &length) }
    }
    return (fd, UInt16(bigEndian: actual.sin_port))
  }

  /// Listens on a Unix-domain socket path (replacing a stale socket file).
  public static func listenUnix(path: String) throws(Failure) -> Int32 {
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
    // SAFETY: unlink(2) with a C string converted for the call.
    _ = unsafe unlink(path)
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw Failure(description: "socket: \(errorText())") }
    // SAFETY: a sockaddr_un passed with its own size.
    let bound = unsafe withUnsafePointer(to: &address) { pointer in
      unsafe pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
        unsafe bind(fd, socketAddress, socklen_t(MemoryLayout<sockaddr_un>.size))
      }
    }
    guard bound == 0, listen(fd, 1) == 0 else {
      let text = errorText()
      Glibc.close(fd)
      throw Failure(description: "cannot listen on \(path): \(text)")
    }
    return fd
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

  private static func errorText() -> String {
    // SAFETY: strerror returns a static, NUL-terminated message.
    unsafe String(cString: strerror(errno))
  }
}
