#if canImport(Glibc)
  import Glibc
#endif

/// A plain POSIX thread, for vCPUs and the console reader. Lives here because starting
/// one means handing a pointer to pthread_create.
public final class HostThread: @unchecked Sendable {
  private var handle: pthread_t

  private final class Box {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
  }

  /// Starts `body` on a new thread.
  public init(name: String, _ body: @escaping @Sendable () -> Void) {
    // SAFETY: the Box is retained here and released exactly once by the new thread.
    let named: () -> Void = {
      HostThread.nameCurrentThread(name)
      body()
    }
    let box = unsafe Unmanaged.passRetained(Box(named)).toOpaque()
    var thread = pthread_t()
    let result = unsafe pthread_create(
      &thread, nil,
      { argument in
        // SAFETY: `argument` is the retained Box passed below, released exactly once here.
        let box = unsafe Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue()
        box.body()
        return nil
      }, box)
    precondition(result == 0, "pthread_create failed: \(result)")
    handle = thread
  }

  /// Names the calling thread as `ps -L`, `top -H` and gdb show it (15 bytes at most).
  /// Writes /proc/thread-self/comm because pthread_setname_np is hidden behind _GNU_SOURCE.
  static func nameCurrentThread(_ name: String) {
    // SAFETY: open(2) with a C string converted for the call; the fd is closed below.
    let fd = unsafe open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
    guard fd >= 0 else { return }
    HostIO.write(fd, Array(name.utf8.prefix(15))[...])
    close(fd)
  }

  /// Waits for the thread to finish.
  public func join() {
    _ = pthread_join(handle, nil)
  }
}
