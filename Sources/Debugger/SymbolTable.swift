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

  /// Why a file gives no symbols.
  public struct LoadError: Error, Equatable, CustomStringConvertible {
    public let description: String
  }

  /// Reads an ELF's symbol table or a System.map; refuses anything else, and a file with none.
  public init(file bytes: [UInt8], source: String) throws(LoadError) {
    if ELFFile.hasMagic(bytes) {
      let elf: ELFFile
      do { elf = try ELFFile(bytes) } catch { throw LoadError(description: "not a usable ELF file: \(error)") }
      self.init(elf: elf, source: source)
      guard !isEmpty else { throw LoadError(description: "the ELF file has no symbol table (is it stripped?)") }
      return
    }
    try self.init(systemMap: String(decoding: bytes, as: UTF8.self), source: source)
  }

  /// Parses `nm`-style lines, "ffffffff81000000 T _text": every line must be one (a file
  /// that is not a System.map must not pass as one with no symbols).
  public init(systemMap text: String, source: String) throws(LoadError) {
    var entries: [Entry] = []
    for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
      let fields = line.split(separator: " ", omittingEmptySubsequences: true)
      if fields.isEmpty { continue }
      guard fields.count == 3 || fields.count == 4,  // nm adds [module] for loadable modules
        let address = UInt64(fields[0], radix: 16), fields[1].count == 1,
        fields[1].first!.isLetter
          || "?-".contains(fields[1].first!)
      else {
        throw LoadError(
          description:
            "neither an ELF file nor a System.map: line \(number + 1) is not 'ADDRESS TYPE NAME' (as nm prints)")
      }
      // Absolute symbols ("A") are numbers, not places: a kernel's are its per-CPU offsets
      // from 0, which would otherwise name every user-space address `__per_cpu_end+...`.
      if fields[1] == "A" || fields[1] == "a" { continue }
      entries.append(Entry(address: address, name: String(fields[2])))
    }
    guard !entries.isEmpty else { throw LoadError(description: "the System.map holds no symbols") }
    self.init(entries: entries, source: source)
  }

  public var isEmpty: Bool { entries.isEmpty }

  public func address(of name: String) -> UInt64? {
    entries.first { $0.name == name }?.address
  }

  /// A symbol, or `symbol+OFFSET` (hex with 0x, or decimal) as traces print them.
  public func address(ofExpression text: String) -> UInt64? {
    if let address = address(of: text) { return address }
    guard let plus = text.lastIndex(of: "+"), let base = address(of: String(text[..<plus])) else { return nil }
    let offsetText = text[text.index(after: plus)...].lowercased()
    let offset =
      offsetText.hasPrefix("0x") ? UInt64(offsetText.dropFirst(2), radix: 16) : UInt64(offsetText, radix: 10)
    guard let offset else { return nil }
    let (sum, overflow) = base.addingReportingOverflow(offset)
    return overflow ? nil : sum
  }

  /// The entry at or before `address`.
  public func entry(containing address: UInt64) -> Entry? {
    index(containing: address).map { entries[$0] }
  }

  /// The index in `entries` of the entry at or before `address` (the last of several there).
  public func index(containing address: UInt64) -> Int? {
    var low = 0
    var high = entries.count
    while low < high {
      let middle = (low + high) / 2
      if entries[middle].address <= address { low = middle + 1 } else { high = middle }
    }
    return low == 0 ? nil : low - 1
  }
}
