/// The Advanced SIMD instructions that move elements without arithmetic (C7.2): DUP, INS,
/// UMOV, SMOV, the modified immediates, ZIP/UZP/TRN, EXT, TBL and TBX.
extension A64Core {
  mutating func simdCopy(_ i: A64Instruction) throws(A64Exception) {
    try checkFloatingPointAccess()
    let size = Int(i.size)
    let index = Int(i.imm)
    let elements = A64Core.lanes(i)
    switch SIMDCopy(rawValue: i.variant) ?? .dupElement {
    case .dupElement, .dupGeneral:
      let value = i.variant == SIMDCopy.dupElement.rawValue ? vector(i.rn).element(index, size) : reg(i.rn)
      var result = Vector128.zero
      for e in 0..<elements { result.setElement(e, size, value) }
      setVector(i.rd, result, full: i.is64)
    case .smov:
      let value = UInt64(bitPattern: A64Core.signed(vector(i.rn).element(index, size), size))
      state.setRegister(i.rd, i.is64 ? value : value & 0xffff_ffff)
    case .umov:
      state.setRegister(i.rd, vector(i.rn).element(index, size))
    case .insGeneral:
      var result = vector(i.rd)
      result.setElement(index, size, reg(i.rn))
      setVector(i.rd, result, full: true)
    case .insElement:
      var result = vector(i.rd)
      result.setElement(index, size, vector(i.rn).element(Int(i.imm2), size))
      setVector(i.rd, result, full: true)
    }
  }

  mutating func simdModifiedImmediate(_ i: A64Instruction) throws(A64Exception) {
    try checkFloatingPointAccess()
    let d = vector(i.rd)
    let result: Vector128
    switch SIMDImmediate(rawValue: i.variant) ?? .move {
    case .move: result = Vector128(low: i.imm, high: i.imm)
    case .orr: result = Vector128(low: d.low | i.imm, high: d.high | i.imm)
    case .bic: result = Vector128(low: d.low & ~i.imm, high: d.high & ~i.imm)
    }
    setVector(i.rd, result, full: i.is64)
  }

  mutating func simdPermute(_ i: A64Instruction) throws(A64Exception) {
    try checkFloatingPointAccess()
    let n = vector(i.rn)
    let m = vector(i.rm)
    let size = Int(i.size)
    let elements = (i.is64 ? 16 : 8) >> size
    let part = Int(i.variant >> 2)
    var result = Vector128.zero
    for e in 0..<elements {
      let value: UInt64
      switch i.variant & 3 {
      case 1:
        // UZP: the even (odd) elements of Vm:Vn.
        let source = 2 * e + part
        value = source < elements ? n.element(source, size) : m.element(source - elements, size)
      case 2:
        // TRN: pairs from even (odd) positions of both.
        let source = e & ~1 + part
        value = e & 1 == 0 ? n.element(source, size) : m.element(source, size)
      default:
        // ZIP: interleave the low (high) halves.
        let source = part * elements / 2 + e / 2
        value = e & 1 == 0 ? n.element(source, size) : m.element(source, size)
      }
      result.setElement(e, size, value)
    }
    setVector(i.rd, result, full: i.is64)
  }

  /// EXT: bytes from position imm4 of Vm:Vn (Vn low).
  mutating func simdExtract(_ i: A64Instruction) throws(A64Exception) {
    try checkFloatingPointAccess()
    let n = vector(i.rn)
    let m = vector(i.rm)
    let bytes = i.is64 ? 16 : 8
    var result = Vector128.zero
    for e in 0..<bytes {
      let source = Int(i.amount) + e
      let value = source < bytes ? n.element(source, 0) : m.element(source - bytes, 0)
      result.setElement(e, 0, value)
    }
    setVector(i.rd, result, full: i.is64)
  }

  /// TBL, TBX: each byte of Vm indexes the table of 1-4 registers from Vn (wrapping at V31);
  /// an index past it gives 0 (TBL) or keeps Vd's byte (TBX).
  mutating func simdTableLookup(_ i: A64Instruction) throws(A64Exception) {
    try checkFloatingPointAccess()
    let indices = vector(i.rm)
    let d = vector(i.rd)
    let registers = Int(i.amount)
    var result = Vector128.zero
    for e in 0..<(i.is64 ? 16 : 8) {
      let index = Int(indices.element(e, 0))
      if index < 16 * registers {
        let table = vector(UInt8((Int(i.rn) + index / 16) % 32))
        result.setElement(e, 0, table.element(index % 16, 0))
      } else if i.variant == 1 {
        result.setElement(e, 0, d.element(e, 0))
      }
    }
    setVector(i.rd, result, full: i.is64)
  }
}
