public enum DemoGuestInfo {
  /// The debug-exit value the demo writes when it ran to its end.
  public static let successValue: UInt32 = 0x10
}
