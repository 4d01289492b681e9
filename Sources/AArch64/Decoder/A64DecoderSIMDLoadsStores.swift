/// The Advanced SIMD structure loads and stores (C4.1.88: LD1-LD4/ST1-ST4 of whole registers
/// or one lane, LD1R-LD4R), no offset or post-indexed.
extension A64Decoder {
  /// LD1-LD4 and ST1-ST4 (single structure) and LD1R-LD4R (C4.1.88): the lane index comes
  /// from Q, S and the size bits the element size leaves free.
  static func decodeLoadStoreSingle(_ word: UInt32, _ i: inout A64Instruction) {
    let postIndex = field(word, 23, 1) != 0
    guard postIndex || field(word, 16, 5) == 0 else { return }
    i.rd = UInt8(word & 31)
    i.rn = UInt8((word >> 5) & 31)
    i.rm = UInt8((word >> 16) & 31)
    let load = field(word, 22, 1) != 0
    let opcode = field(word, 13, 3)
    let s = field(word, 12, 1)
    let size = field(word, 10, 2)
    let q = field(word, 30, 1)
    i.amount = UInt8((opcode & 1) << 1 | field(word, 21, 1)) + 1
    i.is64 = q != 0
    switch opcode >> 1 {
    case 0:
      i.size = 0
      i.imm = UInt64(q << 3 | s << 2 | size)
    case 1:
      guard size & 1 == 0 else { return }
      i.size = 1
      i.imm = UInt64(q << 2 | s << 1 | size >> 1)
    case 2:
      if size == 0 {
        i.size = 2
        i.imm = UInt64(q << 1 | s)
      } else if size == 1 && s == 0 {
        i.size = 3
        i.imm = UInt64(q)
      } else {
        return
      }
    default:
      guard load, s == 0 else { return }
      i.size = UInt8(size)
      i.condition = 1
    }
    i.operation = .simdLoadStoreSingle
    i.variant = load ? LoadStoreKind.loadVector.rawValue : LoadStoreKind.storeVector.rawValue
    i.addressing = postIndex ? .postIndex : .offset
  }

  /// LD1-LD4 and ST1-ST4 (multiple structures), without offset or post-indexed (C4.1.88).
  static func decodeLoadStoreMultiple(_ word: UInt32, _ i: inout A64Instruction) {
    let postIndex = field(word, 23, 1) != 0
    guard postIndex || field(word, 16, 5) == 0 else { return }
    i.rd = UInt8(word & 31)
    i.rn = UInt8((word >> 5) & 31)
    i.rm = UInt8((word >> 16) & 31)
    i.is64 = field(word, 30, 1) != 0
    i.size = UInt8(field(word, 10, 2))
    let (registers, structure): (UInt8, UInt8)
    switch field(word, 12, 4) {
    case 0b0000: (registers, structure) = (4, 4)
    case 0b0010: (registers, structure) = (4, 1)
    case 0b0100: (registers, structure) = (3, 3)
    case 0b0110: (registers, structure) = (3, 1)
    case 0b0111: (registers, structure) = (1, 1)
    case 0b1000: (registers, structure) = (2, 2)
    case 0b1010: (registers, structure) = (2, 1)
    default: return
    }
    // Interleaved structures of 64-bit elements need two elements per register.
    guard structure == 1 || i.size < 3 || i.is64 else { return }
    i.operation = .simdLoadStoreMultiple
    i.variant = field(word, 22, 1) != 0 ? LoadStoreKind.loadVector.rawValue : LoadStoreKind.storeVector.rawValue
    i.amount = registers
    i.ra = structure
    i.addressing = postIndex ? .postIndex : .offset
  }
}
