/// Where `hyperstep debug --gdb` listens, parsed from its argument.
enum GDBAddress: Equatable {
  case unix(path: String)
  /// A host name or IPv4 address, or (`ipv6Literal`) an IPv6 address that was in brackets.
  case tcp(host: String, port: UInt16, ipv6Literal: Bool)

  /// Why an argument is not an address: the text that follows "--gdb ARGUMENT: ".
  struct Invalid: Error, Equatable, CustomStringConvertible {
    let description: String
  }

  /// `unix:PATH`, `HOST:PORT`, `:PORT` (loopback, 127.0.0.1) or `[IPV6]:PORT`.
  static func parse(_ text: String) throws(Invalid) -> GDBAddress {
    let usage = Invalid(description: "not HOST:PORT, :PORT, [IPV6]:PORT or unix:PATH")
    if text.hasPrefix("unix:") {
      let path = String(text.dropFirst("unix:".count))
      guard !path.isEmpty else { throw Invalid(description: "no socket path given") }
      return .unix(path: path)
    }
    let host: Substring
    let portText: Substring
    let ipv6Literal = text.hasPrefix("[")
    if ipv6Literal {
      // "[::1]:1234": the brackets keep the address's own colons apart from the port's.
      guard let close = text.firstIndex(of: "]") else {
        throw Invalid(description: "no closing ']' after the IPv6 address")
      }
      host = text[text.index(after: text.startIndex)..<close]
      let rest = text[text.index(after: close)...]
      guard !host.isEmpty, rest.first == ":" else { throw usage }
      portText = rest.dropFirst()
    } else {
      guard let colon = text.lastIndex(of: ":") else { throw usage }
      host = text[..<colon]
      guard !host.contains(":") else {
        throw Invalid(description: "IPv6 addresses go in brackets, as [::1]:1234")
      }
      portText = text[text.index(after: colon)...]
    }
    // UInt16("+80") would parse; a port is digits only.
    guard !portText.isEmpty, portText.allSatisfy(\.isASCIIDigit), let port = UInt16(portText) else {
      throw Invalid(description: "'\(portText)' is not a port number (0-65535)")
    }
    // Loopback unless a host is named: a debugger port open to the network runs any code.
    return .tcp(host: host.isEmpty ? "127.0.0.1" : String(host), port: port, ipv6Literal: ipv6Literal)
  }
}

/// Which register layout gdb is offered (`--gdb-arch`).
enum GDBArchitectureChoice: String, CaseIterable {
  /// From the kernel image: i386 for images entered in real or protected mode (ELF32,
  /// Multiboot, flat binaries), x86-64 for those entered in long mode (ELF64, bzImage).
  case auto
  case i386
  // swift-format-ignore: AlwaysUseLowerCamelCase
  case x86_64 = "x86-64"
}

extension Character {
  fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
