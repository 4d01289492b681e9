import Testing

@testable import GDBRemote

/// Framing per the GDB manual, "Overview" of the remote protocol: `$data#cs`, cs the sum of
/// the data bytes mod 256, `}` escapes with XOR 0x20, `+`/`-` acknowledge, 0x03 interrupts.
@Suite struct PacketCodecTests {
  @Test func aWellFormedPacketIsDecoded() {
    var decoder = PacketDecoder()
    // "g" is 0x67: checksum 67.
    #expect(decoder.feed(Array("$g#67".utf8)) == [.packet(Array("g".utf8))])
  }

  @Test func aBadChecksumIsReportedAndTheRetransmitAccepted() {
    var decoder = PacketDecoder()
    #expect(decoder.feed(Array("$g#00".utf8)) == [.badChecksum])
    #expect(decoder.feed(Array("$g#67".utf8)) == [.packet(Array("g".utf8))])
    #expect(decoder.feed(Array("$g#zz".utf8)) == [.badChecksum])
  }

  @Test func escapesAreUndoneAndAcksAndInterruptsSeen() {
    var decoder = PacketDecoder()
    // X packet carrying the byte '#' (0x23) escaped as "}\x03"; sum includes the escape bytes.
    let body: [UInt8] = Array("X0,1:".utf8) + [0x7d, 0x03]
    let sum = body.reduce(UInt8(0), &+)
    let hex = Array(String(sum, radix: 16).utf8)
    let framed = [UInt8(ascii: "$")] + body + [UInt8(ascii: "#")] + (hex.count == 1 ? [0x30] + hex : hex)
    #expect(decoder.feed(framed) == [.packet(Array("X0,1:".utf8) + [0x23])])
    #expect(decoder.feed([UInt8(ascii: "+"), UInt8(ascii: "-"), 0x03]) == [.ack, .nack, .interrupt])
  }

  @Test func framingEscapesTheFourSpecialBytes() {
    let framed = framePacket([UInt8(ascii: "$"), UInt8(ascii: "#"), UInt8(ascii: "}"), UInt8(ascii: "*"), 0x41])
    var decoder = PacketDecoder()
    #expect(
      decoder.feed(framed) == [
        .packet([UInt8(ascii: "$"), UInt8(ascii: "#"), UInt8(ascii: "}"), UInt8(ascii: "*"), 0x41])
      ])
    #expect(framePacket(Array("OK".utf8)) == Array("$OK#9a".utf8))
  }

  @Test func overlongPacketsAreDroppedWhole() {
    var decoder = PacketDecoder(maximumPayload: 4)
    let payload = Array("m123456,1".utf8)
    let sum = payload.reduce(UInt8(0), &+)
    let framed = [UInt8(ascii: "$")] + payload + [UInt8(ascii: "#")] + hexEncoded([sum])
    #expect(decoder.feed(framed) == [.overlong])
    #expect(decoder.feed(Array("$g#67".utf8)) == [.packet(Array("g".utf8))])
  }

  @Test func hexHelpersRoundTripAndRejectGarbage() {
    #expect(hexEncoded([0x00, 0xab, 0xff]) == Array("00abff".utf8))
    #expect(hexDecoded(Array("00abFF".utf8)) == [0x00, 0xab, 0xff])
    #expect(hexDecoded(Array("0".utf8)) == nil)
    #expect(hexDecoded(Array("zz".utf8)) == nil)
  }
}
