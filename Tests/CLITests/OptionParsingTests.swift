import Machine
import Testing

@testable import hyperstep

@Suite struct OptionParsingTests {
  @Test func sizesTakeQEMUStyleSuffixes() {
    #expect(parseSize("64M") == 64 << 20)
    #expect(parseSize("64m") == 64 << 20)
    #expect(parseSize("512K") == 512 << 10)
    #expect(parseSize("2G") == 2 << 30)
    #expect(parseSize("2GiB") == 2 << 30)
    #expect(parseSize("128") == 128 << 20)  // a bare number is MiB, as in QEMU's -m
    #expect(parseSize("1T") == 1 << 40)
  }

  @Test func nonsenseSizesAreRejected() {
    #expect(parseSize("") == nil)
    #expect(parseSize("M") == nil)
    #expect(parseSize("-1M") == nil)
    #expect(parseSize("1.5G") == nil)
    #expect(parseSize("99999999999999999999G") == nil)
    #expect(parseSize("16777216T") == nil)  // would overflow 64 bits
  }

  @Test func addressesAreHexOrDecimal() {
    #expect(parseAddress("0x7c00") == 0x7c00)
    #expect(parseAddress("0X7C00") == 0x7c00)
    #expect(parseAddress("31744") == 0x7c00)
    #expect(parseAddress("0xzz") == nil)
    #expect(parseAddress("") == nil)
  }

  @Test func gdbAddresses() throws {
    #expect(try GDBAddress.parse(":1234") == .tcp(host: "127.0.0.1", port: 1234, ipv6Literal: false))
    #expect(try GDBAddress.parse("localhost:1234") == .tcp(host: "localhost", port: 1234, ipv6Literal: false))
    #expect(try GDBAddress.parse("10.0.0.1:0") == .tcp(host: "10.0.0.1", port: 0, ipv6Literal: false))
    #expect(try GDBAddress.parse("[::1]:1234") == .tcp(host: "::1", port: 1234, ipv6Literal: true))
    #expect(try GDBAddress.parse("[fe80::1%eth0]:9") == .tcp(host: "fe80::1%eth0", port: 9, ipv6Literal: true))
    #expect(try GDBAddress.parse("unix:/tmp/a:b") == .unix(path: "/tmp/a:b"))
    for bad in [
      "unix:", "1234", "[::1]", "[::1]1234", "[::1:1234", "::1:1234", "[]:1", "host:", "host:+80", "host:65536",
    ] {
      #expect(throws: GDBAddress.Invalid.self, "\(bad)") { try GDBAddress.parse(bad) }
    }
  }

  @Test func gdbArchitectureFollowsTheEntryMode() {
    #expect(DebugCommand.layout(for: .auto, entry: .long64(entry: 0x10_0000)).architecture == "i386:x86-64")
    #expect(DebugCommand.layout(for: .auto, entry: .protected32(entry: 0x10_0000)).architecture == "i386")
    #expect(DebugCommand.layout(for: .auto, entry: .real(segment: 0, offset: 0x7c00)).architecture == "i386")
    #expect(DebugCommand.layout(for: .x86_64, entry: .protected32(entry: 0)).architecture == "i386:x86-64")
    #expect(DebugCommand.layout(for: .i386, entry: .long64(entry: 0)).architecture == "i386")
  }
}
