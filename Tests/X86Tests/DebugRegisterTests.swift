import Testing

@testable import X86

/// MOV to and from DR0-DR7 (SDM Vol. 2, "MOV—Move to/from Debug Registers"; SDM Vol. 3, 18.2).
struct DebugRegisterTests {
  static let debugFault = StepResult.exception(X86Exception(vector: 1, kind: .fault))
  static let debugTrap = StepResult.exception(X86Exception(vector: 1, kind: .trap))

  // Encodings: 0F 23 /r is MOV DRn, r64 with DRn in ModRM.reg; 0F 21 /r is MOV r64, DRn.
  // mov dr0, rax = 0f 23 c0; mov dr7, rax = 0f 23 f8; mov rbx, dr6 = 0f 21 f3;
  // mov rbx, dr7 = 0f 21 fb; mov rbx, dr4 = 0f 21 e3; mov dr5, rax = 0f 23 e8.

  @Test func dr0RoundTripsA64BitAddress() throws {
    // mov dr0, rax; mov rbx, dr0 (0f 21 c3)
    let s = try makeSandbox([0x0f, 0x23, 0xc0, 0x0f, 0x21, 0xc3]) { $0[.rax] = 0xffff_8000_1234_5678 }
    #expect(s.cpu.run(maxInstructions: 2).executed == 2)
    #expect(s.cpu.state.dr[0] == 0xffff_8000_1234_5678 && s.reg(.rbx) == 0xffff_8000_1234_5678)
  }

  @Test func dr6AndDr7ReadTheirFixedBits() throws {
    // SDM Vol. 3, 18.2.3/18.2.4: DR6 is 0xffff0ff0 at reset, DR7 0x400; writing 0 to DR6 leaves
    // bits 4-11 and 16-31 set; DR7 bit 10 reads 1 and bits 11, 12, 14, 15 read 0.
    let s = try makeSandbox([0x0f, 0x21, 0xf3, 0x0f, 0x21, 0xfb]) { _ in }
    #expect(s.cpu.run(maxInstructions: 2).executed == 2)
    #expect(s.reg(.rbx) == 0x400)
    let reset = try makeSandbox([0x0f, 0x21, 0xf3]) { _ in }
    #expect(reset.cpu.step() == .retired && reset.reg(.rbx) == 0xffff_0ff0)

    // mov dr6, rax (0f 23 f0) with 0, then read: the fixed ones only
    let zero = try makeSandbox([0x0f, 0x23, 0xf0, 0x0f, 0x21, 0xf3]) { $0[.rax] = 0 }
    #expect(zero.cpu.run(maxInstructions: 2).executed == 2 && zero.reg(.rbx) == 0xffff_0ff0)
    // writing all ones (low 32): B0-B3, BD, BS, BT stick, bit 12 stays 0
    let ones = try makeSandbox([0x0f, 0x23, 0xf0, 0x0f, 0x21, 0xf3]) { $0[.rax] = 0xffff_ffff }
    #expect(ones.cpu.run(maxInstructions: 2).executed == 2 && ones.reg(.rbx) == 0xffff_efff)
    // mov dr7, rax with every low bit but GD (which would fault the read), then read: bits
    // 11, 12, 14, 15 are 0, bit 10 is 1
    let control = try makeSandbox([0x0f, 0x23, 0xf8, 0x0f, 0x21, 0xfb]) { $0[.rax] = 0xffff_dfff }
    #expect(control.cpu.run(maxInstructions: 2).executed == 2 && control.reg(.rbx) == 0xffff_07ff)
  }

  @Test func dr4AndDr5AliasDr6AndDr7WithoutDebugExtensions() throws {
    // mov dr5, rax then mov rbx, dr4: DR7 written, DR6 read (SDM Vol. 3, 18.2.2)
    let s = try makeSandbox([0x0f, 0x23, 0xe8, 0x0f, 0x21, 0xe3]) { $0[.rax] = 0x1 }
    #expect(s.cpu.run(maxInstructions: 2).executed == 2)
    #expect(s.cpu.state.dr7 == 0x401)
    #expect(s.reg(.rbx) == 0xffff_0ff0)
  }

  @Test func dr4AndDr5RaiseUDWithDebugExtensions() throws {
    for code: [UInt8] in [[0x0f, 0x21, 0xe3], [0x0f, 0x23, 0xe8]] {
      let (s, result) = try stepFault(code) { $0.cr4 |= DebugRegisterBit.cr4DE }
      #expect(result == .exception(.invalidOpcode))
      #expect(s.cpu.state.rip == Layout.code)
    }
    // DR6 itself still works with CR4.DE
    let ok = try makeSandbox([0x0f, 0x21, 0xf3]) { $0.cr4 |= DebugRegisterBit.cr4DE }
    #expect(ok.cpu.step() == .retired && ok.reg(.rbx) == 0xffff_0ff0)
  }

  @Test func dr8AndAboveRaiseUD() throws {
    // REX.R: 44 0f 21 c3 would be mov rbx, dr8
    let (_, result) = try stepFault([0x44, 0x0f, 0x21, 0xc3])
    #expect(result == .exception(.invalidOpcode))
  }

  @Test func userModeAccessIsGeneralProtection() throws {
    for code: [UInt8] in [[0x0f, 0x21, 0xc3], [0x0f, 0x23, 0xc0]] {
      let (s, result) = try stepFault(code) {
        $0[.cs] = .flatCode64(selector: 0x1b, dpl: 3)
        $0[.ss] = .flatData(selector: 0x23, dpl: 3)
        $0[.rax] = 0x1234
      }
      #expect(result == .exception(.generalProtection(0)))
      #expect(s.cpu.state.rip == Layout.code && s.cpu.state.dr[0] == 0 && s.reg(.rbx) == 0)
    }
  }

  @Test func upperHalfOfDr6AndDr7MustBeZeroIn64BitMode() throws {
    // mov dr7, rax / mov dr6, rax with bit 32 set: #GP(0), nothing written
    for code: [UInt8] in [[0x0f, 0x23, 0xf8], [0x0f, 0x23, 0xf0]] {
      let (s, result) = try stepFault(code) { $0[.rax] = 1 << 32 | 1 }
      #expect(result == .exception(.generalProtection(0)))
      #expect(s.cpu.state.dr7 == 0x400 && s.cpu.state.dr6 == 0xffff_0ff0)
    }
    // DR0-DR3 take any 64-bit value.
    let s = try stepOne([0x0f, 0x23, 0xc8]) { $0[.rax] = 0xdead_beef_0000_0001 }  // mov dr1, rax
    #expect(s.cpu.state.dr[1] == 0xdead_beef_0000_0001)
  }

  @Test func generalDetectFaultsWithBDAndClearsGD() throws {
    // SDM Vol. 3, 18.2.4 and 18.3.1.3: with DR7.GD set, a MOV DR is a #DB fault before it
    // executes (RIP at the MOV, RBX unchanged) with DR6.BD; GD is cleared for the handler.
    let (s, result) = try stepFault([0x0f, 0x21, 0xc3]) {
      $0.dr7 = 0x400 | DebugRegisterBit.dr7GD
      $0.dr[0] = 0x1111
      $0.dr6 = 0xffff_0ff0 | 0x3  // stale B0, B1: a #DB rewrites B0-B3
    }
    #expect(result == Self.debugFault)
    #expect(s.cpu.state.rip == Layout.code && s.reg(.rbx) == 0)
    #expect(s.cpu.state.dr6 == 0xffff_0ff0 | DebugRegisterBit.dr6BD)
    #expect(s.cpu.state.dr7 == 0x400)
    // With GD clear, the handler's MOV DR executes.
    #expect(s.cpu.step() == .retired && s.reg(.rbx) == 0x1111)
  }

  @Test func thirtyTwoBitCodeMovesThirtyTwoBits() throws {
    // Compatibility mode (CS.L = 0, D = 1): mov ebx, dr0 takes the low half of DR0.
    let (s, result) = try stepFault([0x0f, 0x21, 0xc3]) {
      var cs = SegmentRegister.flatCode64()
      cs.longMode = false
      cs.defaultBig = true
      $0[.cs] = cs
      $0.dr[0] = 0x1234_5678_9abc_def0
      $0[.rbx] = ~0
    }
    #expect(result == .retired)
    #expect(s.reg(.rbx) == 0x9abc_def0)
  }

  @Test func lockPrefixIsUD() throws {
    let (_, result) = try stepFault([0xf0, 0x0f, 0x21, 0xc3])
    #expect(result == .exception(.invalidOpcode))
  }

  @Test func decoderIgnoresTheModFieldAndReadsNoDisplacement() {
    // 0f 21 03: mod = 00 would mean [rbx] for an ordinary ModRM, but MOV DR is always a
    // register form: three bytes, rm = rbx, reg = dr0.
    var bytes = InstructionBytes(low: 0, high: 0, count: 15)
    bytes.low = 0x03_21_0f
    let d = decodeInstruction(bytes, mode: .bits64)
    #expect(d.operation == .movFromDebug && d.length == 3 && d.reg == 0 && d.rm == 3 && !d.isMemory)
    #expect(d.operandSize == 8)
  }
}
