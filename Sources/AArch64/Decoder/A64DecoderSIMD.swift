extension A64Decoder {
  static func decodeAdvancedSIMD(_ word: UInt32, _ i: inout A64Instruction) {
  }
}
