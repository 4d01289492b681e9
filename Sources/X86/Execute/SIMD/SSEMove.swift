/// SSE/SSE2 data movement: whole-register, scalar, half-register and GPR moves, MOVMSK,
/// PMOVMSKB, PINSRW/PEXTRW, the non-temporal stores and MASKMOVDQU (SDM Vol. 2, each
/// instruction's page). Loads of an xmm register's low part from memory zero the rest where
/// the SDM says so (MOVSS/MOVSD/MOVD/MOVQ), and merge for register sources.
extension X86Core {
  mutating func sseMove(_ d: DecodedInstruction, prefix: UInt16) throws(X86Exception) {
    let opcode = d.sub
    let wide = d.immediate2 & SSEPrefix.rexW != 0
    switch opcode {
    case 0x10, 0x11:
      let load = opcode == 0x10
      if prefix == SSEPrefix.f3 || prefix == SSEPrefix.f2 {
        let size: UInt8 = prefix == SSEPrefix.f3 ? 4 : 8
        let mask = UInt128(sizeMask(size))
        if load {
          if d.isMemory {
            setXMM(d.reg, UInt128(try read(d.segment, effectiveAddress(d), size: size)))
          } else {
            setXMM(d.reg, xmm(d.reg) & ~mask | xmm(d.rm) & mask)
          }
        } else if d.isMemory {
          try write(d.segment, effectiveAddress(d), size: size, UInt64(truncatingIfNeeded: xmm(d.reg)) & sizeMask(size))
        } else {
          setXMM(d.rm, xmm(d.rm) & ~mask | xmm(d.reg) & mask)
        }
      } else {
        try moveFull(d, load: load, aligned: false)
      }
    case 0x28, 0x29: try moveFull(d, load: opcode == 0x28, aligned: true)
    case 0x6f, 0x7f: try moveFull(d, load: opcode == 0x6f, aligned: prefix == SSEPrefix.p66)
    case 0x2b, 0xe7: try moveFull(d, load: false, aligned: true)
    case 0x12, 0x16:
      // MOVLPS/MOVLPD/MOVHPS/MOVHPD m64 loads one half; MOVHLPS/MOVLHPS copy between halves.
      let high = opcode == 0x16
      let destination = xmm(d.reg)
      let value: UInt64
      if d.isMemory {
        value = try read(d.segment, effectiveAddress(d), size: 8)
      } else {
        value = lane(xmm(d.rm), high ? 0 : 1, width: 64)
      }
      setXMM(d.reg, withLane(destination, high ? 1 : 0, width: 64, value))
    case 0x13, 0x17:
      try write(d.segment, effectiveAddress(d), size: 8, lane(xmm(d.reg), opcode == 0x17 ? 1 : 0, width: 64))
    case 0x50:
      // MOVMSKPS/MOVMSKPD: the lanes' sign bits into a zero-extended general register.
      let width = prefix == SSEPrefix.p66 ? 64 : 32
      let value = xmm(d.rm)
      var mask: UInt64 = 0
      for index in 0..<(128 / width) {
        mask |= (lane(value, index, width: width) >> UInt64(width - 1)) << UInt64(index)
      }
      state.gpr[Int(d.reg & 15)] = mask
    case 0xd7:
      // PMOVMSKB: the sixteen bytes' sign bits.
      let value = xmm(d.rm)
      var mask: UInt64 = 0
      for index in 0..<16 { mask |= (lane(value, index, width: 8) >> 7) << UInt64(index) }
      state.gpr[Int(d.reg & 15)] = mask
    case 0x6e:
      // MOVD/MOVQ xmm, r/m32/64: zero-extended into the whole register.
      let size: UInt8 = wide ? 8 : 4
      setXMM(d.reg, UInt128(try readRM(d, size: size)))
    case 0x7e:
      if prefix == SSEPrefix.f3 {
        // MOVQ xmm, xmm/m64: the low quadword, upper half cleared.
        setXMM(d.reg, UInt128(try scalarSource(d, size: 8)))
      } else {
        // MOVD/MOVQ r/m32/64, xmm.
        let size: UInt8 = wide ? 8 : 4
        let value = UInt64(truncatingIfNeeded: xmm(d.reg)) & sizeMask(size)
        if d.isMemory {
          try write(d.segment, effectiveAddress(d), size: size, value)
        } else {
          state.gpr[Int(d.rm & 15)] = value
        }
      }
    case 0xd6:
      // MOVQ xmm/m64, xmm: a register destination gets its upper half cleared.
      let value = UInt64(truncatingIfNeeded: xmm(d.reg))
      if d.isMemory {
        try write(d.segment, effectiveAddress(d), size: 8, value)
      } else {
        setXMM(d.rm, UInt128(value))
      }
    case 0xc4:
      // PINSRW xmm, r32/m16, imm8.
      let value = try readRM(d, size: 2)
      setXMM(d.reg, withLane(xmm(d.reg), Int(d.immediate & 7), width: 16, value))
    case 0xc5:
      // PEXTRW r32, xmm, imm8: zero-extended (to 64 bits in 64-bit mode).
      state.gpr[Int(d.reg & 15)] = lane(xmm(d.rm), Int(d.immediate & 7), width: 16)
    case 0xf7:
      try maskedMove(d)
    default:
      throw .invalidOpcode
    }
  }

  /// The 128-bit moves: MOVAPS/MOVUPS/MOVAPD/MOVUPD/MOVDQA/MOVDQU and the non-temporal stores.
  /// `load`: xmm ← xmm/m128; else xmm/m128 ← xmm.
  mutating func moveFull(_ d: DecodedInstruction, load: Bool, aligned: Bool) throws(X86Exception) {
    if load {
      setXMM(d.reg, try vectorSource(d, aligned: aligned))
    } else if d.isMemory {
      try writeVector(d, offset: effectiveAddress(d), aligned: aligned, xmm(d.reg))
    } else {
      setXMM(d.rm, xmm(d.reg))
    }
  }

  /// MASKMOVDQU xmm1, xmm2: stores the bytes of xmm1 whose byte in xmm2 has its top bit set,
  /// at DS:rDI (segment overridable). Every selected byte is checked writable first, so a
  /// fault stores nothing.
  mutating func maskedMove(_ d: DecodedInstruction) throws(X86Exception) {
    let data = xmm(d.reg)
    let mask = xmm(d.rm)
    let base = state.gpr[Int(GPR.rdi.rawValue)]
    for pass in 0..<2 {
      for index in 0..<16 where lane(mask, index, width: 8) & 0x80 != 0 {
        let offset = (base &+ UInt64(index)) & sizeMask(d.addressSize)
        if pass == 0 {
          _ = try translate(try linearAddress(d.segment, offset), .write)
        } else {
          try write(d.segment, offset, size: 1, lane(data, index, width: 8))
        }
      }
    }
  }
}
