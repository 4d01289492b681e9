#if canImport(Glibc)
  import Glibc
#endif

/// File and terminal I/O for the layers above, which hold no pointers of their own.
public enum HostIO {
  /// Why a host file could not be read.
  public struct FileError: Error, Equatable, CustomStringConvertible {
    public let path: String
    public let errno: Int32
    /// What the path is when it exists but is not a regular file ("a character device"); the
    /// caller can then say what it wanted instead. Nil when a system call failed.
    public let nonRegularKind: String?

    init(path: String, errno: Int32, nonRegularKind: String? = nil) {
      self.path = path
      self.errno = errno
      self.nonRegularKind = nonRegularKind
    }

    public var description: String {
      // strerror would say "Invalid argument" for a device, which names no problem.
      if let nonRegularKind { return "not a regular file (\(nonRegularKind))" }
      // SAFETY: strerror returns a static, NUL-terminated message for any errno.
      return unsafe String(cString: strerror(errno))
    }
  }

  /// "a directory", "a character device"...: a file's type (`st_mode & S_IFMT`) in words.
  public static func fileKind(_ mode: mode_t) -> String {
    let kinds: [mode_t: String] = [
      S_IFREG: "a regular file", S_IFDIR: "a directory", S_IFLNK: "a symbolic link", S_IFIFO: "a FIFO",
      S_IFCHR: "a character device", S_IFBLK: "a block device", S_IFSOCK: "a socket",
    ]
    return kinds[mode & S_IFMT] ?? "of an unknown type"
  }

  /// Reads a whole regular file. Refuses directories, devices, FIFOs and sockets, saying which
  /// it is: a device such as /dev/zero never ends, and /dev/null is no image either.
  public static func readFile(_ path: String, limit: Int = 1 << 32) throws(FileError) -> [UInt8] {
    // Non-blocking, so that opening a FIFO returns at once (to be refused below) instead of
    // waiting for a writer; reads of a regular file never block anyway.
    // SAFETY: open(2) and fstat(2) with a C string and a local stat buffer.
    let fd = unsafe Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
    guard fd >= 0 else { throw FileError(path: path, errno: Glibc.errno) }
    defer { _ = Glibc.close(fd) }
    var info = stat()
    guard unsafe fstat(fd, &info) == 0 else { throw FileError(path: path, errno: Glibc.errno) }
    let type = info.st_mode & S_IFMT
    guard type == S_IFREG else {
      throw FileError(path: path, errno: type == S_IFDIR ? EISDIR : EINVAL, nonRegularKind: fileKind(type))
    }
    // Back to blocking reads: some file systems (FUSE, say) would otherwise answer EAGAIN.
    _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
    guard info.st_size <= limit else { throw FileError(path: path, errno: EFBIG) }
    var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
    var done = 0
    while done < bytes.count {
      // SAFETY: the destination is the unfilled tail of the array's own storage.
      let count = unsafe bytes.withUnsafeMutableBytes { buffer in
        unsafe Glibc.read(fd, buffer.baseAddress! + done, buffer.count - done)
      }
      if count < 0 && Glibc.errno == EINTR { continue }
      guard count > 0 else { throw FileError(path: path, errno: count == 0 ? EIO : Glibc.errno) }
      done += count
    }
    return bytes
  }

  /// Creates (or truncates) a file for writing and returns its descriptor.
  public static func createFile(_ path: String) throws(FileError) -> Int32 {
    // SAFETY: open(2) with a C string converted for the call.
    let fd = unsafe Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw FileError(path: path, errno: Glibc.errno) }
    return fd
  }

  public static func close(_ fd: Int32) { _ = Glibc.close(fd) }

  /// Why a write failed: the errno of the first failed write(2).
  public struct WriteError: Error, Equatable, CustomStringConvertible {
    public let errno: Int32
    // SAFETY: strerror returns a static, NUL-terminated message for any errno.
    public var description: String { unsafe String(cString: strerror(errno)) }
  }

  /// Writes all of `bytes` to a file descriptor, retrying short and interrupted writes.
  public static func writeAll(_ fd: Int32, _ bytes: ArraySlice<UInt8>) throws(WriteError) {
    var done = 0
    while done < bytes.count {
      // SAFETY: the source is the slice's own storage, read within its bounds.
      let count = unsafe bytes.withUnsafeBytes { buffer in
        unsafe Glibc.write(fd, buffer.baseAddress! + done, buffer.count - done)
      }
      if count < 0 && Glibc.errno == EINTR { continue }
      // write(2) returns 0 only for a zero-length request; treat it as "no space" so the loop ends.
      guard count > 0 else { throw WriteError(errno: count == 0 ? ENOSPC : Glibc.errno) }
      done += count
    }
  }

  /// `writeAll` for messages whose loss nobody could be told about (standard error, a
  /// socket whose peer has gone, which the reader notices): returns false on error.
  @discardableResult
  public static func write(_ fd: Int32, _ bytes: ArraySlice<UInt8>) -> Bool {
    do {
      try writeAll(fd, bytes)
      return true
    } catch {
      return false
    }
  }

  /// Closes a file that was written, reporting a failed close: some file systems (NFS, a full
  /// disk with delayed allocation) report a lost write only there.
  public static func closeWritten(_ fd: Int32) throws(WriteError) {
    guard Glibc.close(fd) == 0 else { throw WriteError(errno: Glibc.errno) }
  }

  /// Blocks until some bytes can be read from `fd`; returns nil at end of file or on error.
  public static func readSome(_ fd: Int32, max: Int = 256) -> [UInt8]? {
    var buffer = [UInt8](repeating: 0, count: max)
    while true {
      // SAFETY: the destination is the array's own storage, `max` bytes long.
      let count = unsafe buffer.withUnsafeMutableBytes { unsafe Glibc.read(fd, $0.baseAddress!, max) }
      if count < 0 && Glibc.errno == EINTR { continue }
      guard count > 0 else { return nil }
      return Array(buffer[..<count])
    }
  }

  public static func isTerminal(_ fd: Int32) -> Bool { isatty(fd) == 1 }

  /// Total physical memory of this host, in bytes.
  public static var physicalMemory: UInt64 {
    UInt64(sysconf(Int32(_SC_PHYS_PAGES))) * UInt64(sysconf(Int32(_SC_PAGESIZE)))
  }

  /// Monotonic time in nanoseconds.
  public static func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    // SAFETY: clock_gettime writes only the local timespec.
    unsafe clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
  }

  /// Seconds since the Unix epoch by the host's wall clock (for a guest's real-time clock).
  public static func wallClockSeconds() -> Int64 {
    var now = timespec()
    // SAFETY: clock_gettime writes only the local timespec.
    unsafe clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec)
  }

  /// Sleeps the calling thread.
  public static func sleep(milliseconds: Int) {
    var request = timespec(tv_sec: milliseconds / 1000, tv_nsec: (milliseconds % 1000) * 1_000_000)
    var remaining = timespec()
    // SAFETY: nanosleep reads and writes only the two local timespecs.
    while unsafe nanosleep(&request, &remaining) != 0 && Glibc.errno == EINTR { request = remaining }
  }
}
