/// Names of the MSRs introspection tools usually watch, for options and traces.
public enum MSRNames {
  public static let known: [(name: String, index: UInt32)] = [
    ("TSC", 0x10), ("APIC_BASE", 0x1b), ("SYSENTER_CS", 0x174), ("SYSENTER_ESP", 0x175),
    ("SYSENTER_EIP", 0x176), ("PAT", 0x277), ("EFER", 0xc000_0080), ("STAR", 0xc000_0081),
    ("LSTAR", 0xc000_0082), ("CSTAR", 0xc000_0083), ("SFMASK", 0xc000_0084), ("FS_BASE", 0xc000_0100),
    ("GS_BASE", 0xc000_0101), ("KERNEL_GS_BASE", 0xc000_0102),
  ]

  public static func name(of index: UInt32) -> String {
    known.first { $0.index == index }?.name ?? "0x" + String(index, radix: 16)
  }

  /// "LSTAR", "lstar" or a number ("0xc0000082").
  public static func index(of text: String) -> UInt32? {
    if let entry = known.first(where: { $0.name == text.uppercased() }) { return entry.index }
    let lower = text.lowercased()
    return lower.hasPrefix("0x") ? UInt32(lower.dropFirst(2), radix: 16) : UInt32(lower)
  }
}
