/// The Advanced SIMD structure loads and stores (C7.2): LD1-LD4/ST1-ST4 of whole registers
/// and of one lane, and LD1R-LD4R.
extension A64Core {
  /// LD1-LD4/ST1-ST4 of one lane (the other lanes kept) and LD1R-LD4R (every lane, Q's
  /// width): consecutive elements to or from consecutive registers.
  mutating func simdLoadStoreSingle(_ i: A64Instruction) throws(A64Exception) {
    try checkFloatingPointAccess()
    let address = try baseRegister(i.rn)
    let size = Int(i.size)
    let bytes = 1 << size
    let count = Int(i.amount)
    let load = i.variant == LoadStoreKind.loadVector.rawValue
    var values: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    for s in 0..<count {
      let register = UInt8((Int(i.rd) + s) % 32)
      let at = address &+ UInt64(s * bytes)
      if load {
        let value = try read(at, size: bytes)
        switch s {
        case 0: values.0 = value
        case 1: values.1 = value
        case 2: values.2 = value
        default: values.3 = value
        }
      } else {
        try write(at, size: bytes, vector(register).element(Int(i.imm), size))
      }
    }
    if load {
      for s in 0..<count {
        let register = UInt8((Int(i.rd) + s) % 32)
        let value = [values.0, values.1, values.2, values.3][s]
        if i.condition == 1 {
          var result = Vector128.zero
          for e in 0..<((i.is64 ? 16 : 8) >> size) { result.setElement(e, size, value) }
          setVector(register, result, full: i.is64)
        } else {
          var result = vector(register)
          result.setElement(Int(i.imm), size, value)
          setVector(register, result, full: true)
        }
      }
    }
    if i.addressing == .postIndex {
      state.setRegisterOrSP(i.rn, address &+ (i.rm == 31 ? UInt64(count * bytes) : reg(i.rm)))
    }
  }

  /// LD1-LD4 and ST1-ST4 (multiple structures): element by element in the pseudocode's
  /// order; loads build the registers aside and write them only after every access succeeded.
  mutating func simdLoadStoreMultiple(_ i: A64Instruction) throws(A64Exception) {
    try checkFloatingPointAccess()
    let address = try baseRegister(i.rn)
    let size = Int(i.size)
    let bytes = 1 << size
    let elements = (i.is64 ? 16 : 8) >> size
    let structure = Int(i.ra)
    let repeats = structure == 1 ? Int(i.amount) : 1
    let load = i.variant == LoadStoreKind.loadVector.rawValue
    var registers = (0..<Int(i.amount)).map { vector(UInt8((Int(i.rd) + $0) % 32)) }
    var offset: UInt64 = 0
    for r in 0..<repeats {
      for e in 0..<elements {
        for s in 0..<structure {
          let k = r + s
          if load {
            registers[k].setElement(e, size, try read(address &+ offset, size: bytes))
          } else {
            try write(address &+ offset, size: bytes, registers[k].element(e, size))
          }
          offset &+= UInt64(bytes)
        }
      }
    }
    if load {
      for (k, value) in registers.enumerated() { setVector(UInt8((Int(i.rd) + k) % 32), value, full: i.is64) }
    }
    if i.addressing == .postIndex {
      state.setRegisterOrSP(i.rn, address &+ (i.rm == 31 ? offset : reg(i.rm)))
    }
  }
}
