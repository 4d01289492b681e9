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
}
