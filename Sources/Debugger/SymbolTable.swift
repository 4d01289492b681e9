import Machine

/// Addresses to names, from an ELF symbol table or a System.map, for symbolized traces.
public struct SymbolTable: Sendable {
  public struct Entry: Sendable, Equatable {
    public var address: UInt64
    public var name: String

    public init(address: UInt64, name: String) {
      self.address = address
      self.name = name
    }
  }

  /// Sorted by address.
  public let entries: [Entry]
  /// Where the symbols came from, for error messages.
  public let source: String

  public init(entries: [Entry], source: String) {
    self.entries = entries.sorted { $0.address < $1.address }
    self.source = source
  }

  public init(elf: ELFFile, source: String) {
    self.init(entries: elf.symbols().map { Entry(address: $0.address, name: $0.name) }, source: source)
  }

  /// Parses `nm`-style lines: "ffffffff81000000 T _text".
  public init(systemMap text: String, source: String) {
    var entries: [Entry] = []
    for line in text.split(separator: "\n") {
      let fields = line.split(separator: " ", omittingEmptySubsequences: true)
      guard fields.count >= 3, let address = UInt64(fields[0], radix: 16) else { continue }
      entries.append(Entry(address: address, name: String(fields[2])))
    }
    self.init(entries: entries, source: source)
  }

  public var isEmpty: Bool { entries.isEmpty }

  public func address(of name: String) -> UInt64? {
    entries.first { $0.name == name }?.address
  }

  /// The entry at or before `address`.
  public func entry(containing address: UInt64) -> Entry? {
    var low = 0
    var high = entries.count
    while low < high {
      let middle = (low + high) / 2
      if entries[middle].address <= address { low = middle + 1 } else { high = middle }
    }
    return low == 0 ? nil : entries[low - 1]
  }
}
