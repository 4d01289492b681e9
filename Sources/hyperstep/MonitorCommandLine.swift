import Debugger

/// One line of `hyperstep monitor`'s input, parsed, for the x86 and the AArch64 consoles
/// alike: the commands, their usage lines and their refusals are the README's table.
enum MonitorCommandLine: Equatable {
  case step(Int)
  case run
  case registers
  /// `m ADDR LEN`: the address as typed (resolved by `MonitorAddress`).
  case memory(String, Int)
  case breakpoint(String)
  case quit
  /// A line that runs nothing: this answer is printed and the next line read.
  case refused(String)
  /// A blank line.
  case empty

  init(_ line: String) {
    let words = line.split { $0 == " " || $0 == "\t" || $0 == "\r" }.map(String.init)
    guard let command = words.first else {
      self = .empty
      return
    }
    let arguments = Array(words.dropFirst())
    switch command {
    case "s":
      guard arguments.count <= 1 else {
        self = .refused("usage: s [N]")
        return
      }
      guard let count = arguments.first.map({ Int($0) }) ?? 1, count >= 1 else {
        self = .refused("s: the number of steps must be 1 or more, not '\(arguments.first ?? "")'")
        return
      }
      self = .step(count)
    case "c": self = arguments.isEmpty ? .run : .refused("usage: c")
    case "r": self = arguments.isEmpty ? .registers : .refused("usage: r")
    case "q": self = arguments.isEmpty ? .quit : .refused("usage: q")
    case "m":
      guard arguments.count == 2, let length = Int(arguments[1]), (1...4096).contains(length) else {
        self = .refused("usage: m ADDR LEN (LEN 1 to 4096)")
        return
      }
      self = .memory(arguments[0], length)
    case "b": self = arguments.count == 1 ? .breakpoint(arguments[0]) : .refused("usage: b ADDR|SYMBOL")
    default: self = .refused("unknown command '\(line)': s [N], c, r, m ADDR LEN, b ADDR|SYMBOL, q")
    }
  }
}

/// An address as the monitor takes it: `0x` hex or decimal, a symbol, or `SYMBOL+0xOFFSET`.
enum MonitorAddress {
  /// The address, or the line saying why there is none.
  static func resolve(_ text: String, symbols: SymbolTable?, imageName: String) -> Result<UInt64, Refusal> {
    if text.first?.isNumber == true {
      guard let address = parseAddress(text) else { return .failure(Refusal("bad address '\(text)'")) }
      return .success(address)
    }
    guard let symbols, !symbols.isEmpty else {
      return .failure(Refusal("no symbols to look up '\(text)' in: \(imageName) has none"))
    }
    guard let address = symbols.address(ofExpression: text) else {
      return .failure(Refusal("no such symbol '\(text)' in \(symbols.source) (SYMBOL or SYMBOL+0xOFFSET)"))
    }
    return .success(address)
  }

  /// The address, or nil after `refuse` was given the line saying why there is none.
  static func resolve(
    _ text: String, symbols: SymbolTable?, imageName: String, refuse: (String) -> Void
  ) -> UInt64? {
    switch resolve(text, symbols: symbols, imageName: imageName) {
    case .success(let address): return address
    case .failure(let refusal):
      refuse(refusal.line)
      return nil
    }
  }

  /// "0xPC symbol+offset reason": a stop's PC (the next instruction's), its place among the
  /// symbols, and why it stopped.
  static func describe(_ pc: UInt64, _ reason: String?, symbols: SymbolTable?) -> String {
    var text = "0x" + String(pc, radix: 16)
    if let entry = symbols?.entry(containing: pc) {
      text += " " + entry.name + (pc == entry.address ? "" : "+0x" + String(pc - entry.address, radix: 16))
    }
    if let reason { text += " " + reason }
    return text
  }

  struct Refusal: Error {
    let line: String
    init(_ line: String) { self.line = line }
  }

  /// `bytes` read at `address` as the monitor prints them, 16 to a line.
  static func dump(_ bytes: [UInt8], at address: UInt64) -> [String] {
    stride(from: 0, to: bytes.count, by: 16).map { row in
      let hex = bytes[row..<min(row + 16, bytes.count)].map {
        $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16)
      }
      return "0x" + String(address + UInt64(row), radix: 16) + ": " + hex.joined(separator: " ")
    }
  }
}
