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

  @Test func countsTakeDecimalWholeNumbersInRange() throws {
    #expect(try OptionValue.count("4", option: "--cpus", in: 1...255) == 4)
    #expect(try OptionValue.count("+4", option: "--cpus", in: 1...255) == 4)
    for (text, problem) in [
      ("0", "must be at least 1"), ("-1", "must be at least 1"), ("-99999999999999999999", "must be at least 1"),
      ("256", "at most 255"), ("99999999999999999999", "at most 255"), ("0x10", "not a whole number"),
      ("", "not a whole number"), ("-", "not a whole number"), ("1e3", "not a whole number"),
    ] {
      #expect(throws: BadOptionValue.self) { try OptionValue.count(text, option: "--cpus", in: 1...255) }
      do { _ = try OptionValue.count(text, option: "--cpus", in: 1...255) } catch {
        #expect(error.problem == problem, "\(text)")
      }
    }
  }

  @Test func timeoutsAreWholeMillisecondsRoundedUp() throws {
    #expect(try OptionValue.milliseconds("0.5", option: "--timeout") == 500)
    #expect(try OptionValue.milliseconds("0.0001", option: "--timeout") == 1)
    #expect(try OptionValue.milliseconds("1e7", option: "--timeout") == 10_000_000_000)
    for text in ["nan", "-nan", "inf", "1e308", "0", "-0", "-1", "", "1s"] {
      #expect(throws: BadOptionValue.self, "\(text)") { try OptionValue.milliseconds(text, option: "--timeout") }
    }
  }

  @Test func unsignedNumbersSayWhyTheyAreRefused() throws {
    func problem(_ text: String, bits: Int = 64) -> String? {
      do { _ = try OptionValue.unsigned(text, option: "--x", bits: bits, what: "an address", example: "0x10") } catch {
        return error.problem
      }
      return nil
    }
    #expect(try OptionValue.unsigned("0xffffffff", option: "--x", bits: 32, what: "a", example: "0") == 0xffff_ffff)
    #expect(problem("0x7c00") == nil)
    #expect(problem("-5") == "must not be negative (try 0x10)")
    #expect(problem("-0x5") == "must not be negative (try 0x10)")
    #expect(problem("0x100000000", bits: 32) == "at most 0xffffffff (32 bits)")
    #expect(problem("18446744073709551616") == "at most 0xffffffffffffffff (64 bits)")
    #expect(problem("0x") == "not an address (try 0x10)")
    #expect(problem("-x") == "not an address (try 0x10)")
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
