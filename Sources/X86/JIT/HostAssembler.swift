/// A tiny x86-64 encoder for the translator (X86JIT): only the forms it emits, each written
/// from the SDM's encoding tables (Vol. 2, 2.1-2.3 for ModRM/SIB/REX, 3.1.1.2 for VEX).
/// Guest and host share the ISA, so most guest instructions become the same operation on
/// host registers and the encoder only needs register, [rbx + disp32] (the context buffer),
/// [rsi + rdi] (a guest data access through the TLB) and general base + index·scale + disp32.
struct HostAssembler {
  var bytes: [UInt8] = []

  enum Register {
    static let rax: UInt8 = 0
    static let rcx: UInt8 = 1
    static let rdx: UInt8 = 2
    static let rbx: UInt8 = 3
    static let rsp: UInt8 = 4
    static let rbp: UInt8 = 5
    static let rsi: UInt8 = 6
    static let rdi: UInt8 = 7
    static let r12: UInt8 = 12
    static let r13: UInt8 = 13
    static let r14: UInt8 = 14
    static let r15: UInt8 = 15
  }

  /// An r/m operand.
  enum Operand {
    case register(UInt8)
    /// [base + index·2^scale + displacement]; base or index nil when absent.
    case memory(base: UInt8?, index: UInt8?, scale: UInt8, displacement: Int32)

    /// [rbx + displacement]: a field of the context buffer.
    static func context(_ displacement: Int) -> Operand {
      .memory(base: Register.rbx, index: nil, scale: 0, displacement: Int32(displacement))
    }
    /// [rsi + rdi]: the guest's linear address plus the TLB's host delta.
    static let guestData = Operand.memory(base: Register.rsi, index: Register.rdi, scale: 0, displacement: 0)
  }

  var count: Int { bytes.count }

  mutating func byte(_ value: UInt8) { bytes.append(value) }
  mutating func int32(_ value: Int32) {
    for shift in stride(from: 0, to: 32, by: 8) { byte(UInt8(truncatingIfNeeded: value >> shift)) }
  }
  mutating func int64(_ value: UInt64) {
    for shift in stride(from: 0, to: 64, by: 8) { byte(UInt8(truncatingIfNeeded: value >> shift)) }
  }

  /// One instruction `opcode` with ModRM: `size` 2 adds 66, 8 sets REX.W; `reg` is ModRM.reg
  /// (a register or an opcode extension). Byte-sized operations must use AL, CL, DL or BL.
  mutating func emit(_ opcode: [UInt8], size: UInt8, reg: UInt8, _ rm: Operand) {
    if size == 2 { byte(0x66) }
    var rex: UInt8 = size == 8 ? 0x48 : 0
    if reg & 8 != 0 { rex |= 0x44 }
    switch rm {
    case .register(let r):
      if r & 8 != 0 { rex |= 0x41 }
    case .memory(let base, let index, _, _):
      if let base, base & 8 != 0 { rex |= 0x41 }
      if let index, index & 8 != 0 { rex |= 0x42 }
    }
    if rex != 0 { byte(rex | 0x40) }
    bytes.append(contentsOf: opcode)
    modRM(reg: reg, rm)
  }

  private mutating func modRM(reg: UInt8, _ rm: Operand) {
    let r = (reg & 7) << 3
    switch rm {
    case .register(let register):
      byte(0xc0 | r | register & 7)
    case .memory(let base, let index, let scale, let displacement):
      // Always the SIB form with mod 10 (disp32) unless [base + index] needs none: simple and
      // valid for every base (RSP/R12 need SIB, RBP/R13 need a displacement anyway).
      let sibIndex = (index ?? Register.rsp) & 7  // 100: no index
      guard let base else {
        // [index·s + disp32]: mod 00, SIB base 101.
        byte(0x04 | r)
        byte(scale << 6 | sibIndex << 3 | 5)
        int32(displacement)
        return
      }
      if displacement == 0 && base & 7 != Register.rbp {
        byte(0x04 | r)
        byte(scale << 6 | sibIndex << 3 | base & 7)
      } else {
        byte(0x84 | r)
        byte(scale << 6 | sibIndex << 3 | base & 7)
        int32(displacement)
      }
    }
  }

  // MARK: Moves

  /// Loads `size` bytes from `source` into `register`, zero-extended to 64 bits (MOVZX for 1
  /// and 2, a 32-bit MOV for 4).
  mutating func load(_ register: UInt8, _ source: Operand, size: UInt8) {
    switch size {
    case 1: emit([0x0f, 0xb6], size: 4, reg: register, source)
    case 2: emit([0x0f, 0xb7], size: 4, reg: register, source)
    case 4: emit([0x8b], size: 4, reg: register, source)
    default: emit([0x8b], size: 8, reg: register, source)
    }
  }

  /// Stores the low `size` bytes of `register` (AL/CL/DL/BL for bytes).
  mutating func store(_ register: UInt8, _ destination: Operand, size: UInt8) {
    emit([size == 1 ? 0x88 : 0x89], size: size, reg: register, destination)
  }

  mutating func moveImmediate(_ register: UInt8, _ value: UInt64) {
    if value <= UInt64(UInt32.max) {
      if register & 8 != 0 { byte(0x41) }
      byte(0xb8 | register & 7)
      int32(Int32(truncatingIfNeeded: value))
    } else {
      byte(register & 8 != 0 ? 0x49 : 0x48)
      byte(0xb8 | register & 7)
      int64(value)
    }
  }

  /// MOV r64, r64 (or 32-bit, zero-extending).
  mutating func move(_ destination: UInt8, _ source: UInt8, size: UInt8 = 8) {
    emit([0x89], size: size, reg: source, .register(destination))
  }

  mutating func lea(_ destination: UInt8, _ address: Operand, size: UInt8) {
    emit([0x8d], size: size, reg: destination, address)
  }

  // MARK: Arithmetic

  /// ALU kind 0-7 (ADD OR ADC SBB AND SUB XOR CMP) of r/m, reg.
  mutating func alu(_ kind: UInt8, _ destination: Operand, _ source: UInt8, size: UInt8) {
    emit([kind << 3 | (size == 1 ? 0 : 1)], size: size, reg: source, destination)
  }

  /// ALU kind of reg, r/m.
  mutating func alu(_ kind: UInt8, _ destination: UInt8, _ source: Operand, size: UInt8) {
    emit([kind << 3 | (size == 1 ? 2 : 3)], size: size, reg: destination, source)
  }

  mutating func test(_ destination: Operand, _ source: UInt8, size: UInt8) {
    emit([size == 1 ? 0x84 : 0x85], size: size, reg: source, destination)
  }

  /// The FE/FF (INC 0, DEC 1) and F6/F7 (NOT 2, NEG 3) groups.
  mutating func unary(_ operation: UInt8, _ operand: Operand, size: UInt8) {
    let opcode: UInt8 = operation < 2 ? (size == 1 ? 0xfe : 0xff) : (size == 1 ? 0xf6 : 0xf7)
    emit([opcode], size: size, reg: operation, operand)
  }

  /// Shift group kind 0-7 by an immediate count.
  mutating func shift(_ kind: UInt8, _ operand: Operand, count: UInt8, size: UInt8) {
    emit([size == 1 ? 0xc0 : 0xc1], size: size, reg: kind, operand)
    byte(count)
  }

  /// Shift group kind 0-7 by CL.
  mutating func shiftByCL(_ kind: UInt8, _ operand: Operand, size: UInt8) {
    emit([size == 1 ? 0xd2 : 0xd3], size: size, reg: kind, operand)
  }

  /// IMUL reg, r/m (sizes 2, 4, 8).
  mutating func imul(_ destination: UInt8, _ source: Operand, size: UInt8) {
    emit([0x0f, 0xaf], size: size, reg: destination, source)
  }

  mutating func cmov(_ condition: UInt8, _ destination: UInt8, _ source: Operand, size: UInt8) {
    emit([0x0f, 0x40 | condition], size: size, reg: destination, source)
  }

  /// SETcc r/m8 (AL, CL, DL or BL when a register).
  mutating func setcc(_ condition: UInt8, _ destination: Operand) {
    emit([0x0f, 0x90 | condition], size: 4, reg: 0, destination)
  }

  /// SHRX r64, r/m64, count register (BMI2): a shift that leaves the flags alone, so the TLB
  /// probe can sit between a guest flag writer and its reader.
  mutating func shrx(_ destination: UInt8, _ source: UInt8, count: UInt8) {
    // VEX.LZ.F2.0F38.W1 F7 /r, three-byte VEX (C4): R X B inverted, map 00010; W vvvv L pp.
    byte(0xc4)
    byte((destination & 8 == 0 ? 0x80 : 0) | 0x40 | (source & 8 == 0 ? 0x20 : 0) | 0x02)
    byte(0x80 | (~count & 15) << 3 | 0x03)
    byte(0xf7)
    byte(0xc0 | (destination & 7) << 3 | source & 7)
  }

  /// NOT r64 (no flags).
  mutating func not64(_ register: UInt8) { emit([0xf7], size: 8, reg: 2, .register(register)) }

  // MARK: Flags

  /// Saves the six status flags at `offset` of the context: LAHF's SF ZF AF PF CF in the high
  /// byte, OF (SETO) in the low byte. Uses RAX; leaves the host flags as they were.
  mutating func saveFlags(at offset: Int) {
    byte(0x9f)  // LAHF
    bytes.append(contentsOf: [0x0f, 0x90, 0xc0])  // SETO AL
    emit([0x89], size: 2, reg: Register.rax, .context(offset))
  }

  /// The inverse: ADD AL, 0x7F overflows exactly when AL is 1, then SAHF sets the others.
  mutating func restoreFlags(from offset: Int) {
    emit([0x8b], size: 2, reg: Register.rax, .context(offset))
    bytes.append(contentsOf: [0x04, 0x7f])  // ADD AL, 0x7F
    byte(0x9e)  // SAHF
  }

  // MARK: Control

  /// JMP rel32 to a placeholder; returns the offset of its displacement field.
  mutating func jump() -> Int {
    byte(0xe9)
    int32(0)
    return count - 4
  }

  /// Jcc rel32; returns the offset of its displacement field.
  mutating func jump(if condition: UInt8) -> Int {
    bytes.append(contentsOf: [0x0f, 0x80 | condition])
    int32(0)
    return count - 4
  }

  /// Points the rel32 field at `field` to `target` (offsets in this buffer).
  mutating func bind(_ field: Int, to target: Int) {
    let displacement = Int32(target - (field + 4))
    for index in 0..<4 { bytes[field + index] = UInt8(truncatingIfNeeded: displacement >> (index * 8)) }
  }
}
