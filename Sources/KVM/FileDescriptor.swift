/// An open file descriptor that is closed exactly once, when its owner goes away.
final class OwnedFileDescriptor: Sendable {
  let rawValue: Int32

  init(_ rawValue: Int32) { self.rawValue = rawValue }

  deinit { Syscall.close(rawValue) }
}
