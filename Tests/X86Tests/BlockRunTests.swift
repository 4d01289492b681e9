import GuestMemory
import Testing

@testable import X86

/// `run` executes decoded blocks (BlockRun.swift); these check that it keeps the
/// per-instruction contract of `step()`: exact counts, RIP at a fault, stores into the code.
struct BlockRunTests {
  /// mov eax, 1; inc eax; inc eax; shl eax, 3; mov ecx, eax; add ecx, 5; hlt: one block.
  static let straightLine: [UInt8] = [
    0xb8, 0x01, 0x00, 0x00, 0x00, 0xff, 0xc0, 0xff, 0xc0, 0xc1, 0xe0, 0x03, 0x89, 0xc1, 0x83, 0xc1, 0x05, 0xf4,
  ]

  @Test func everyBudgetStopsAtItsInstruction() throws {
    let stepped = try makeSandbox(Self.straightLine)
    var states = [stepped.cpu.state]
    while stepped.cpu.step() == .retired { states.append(stepped.cpu.state) }
    #expect(states.count == 7)  // the entry state and one after each of the six before HLT
    for budget in 1..<states.count {
      let ran = try makeSandbox(Self.straightLine)
      let (executed, stop) = ran.cpu.run(maxInstructions: UInt64(budget))
      #expect(executed == UInt64(budget) && stop == .retired)
      #expect(ran.cpu.state.rip == states[budget].rip && ran.reg(.rax) == states[budget][.rax])
      #expect(ran.reg(.rcx) == states[budget][.rcx] && ran.rflags == states[budget].rflags)
      #expect(ran.cpu.retiredInstructions == UInt64(budget) && ran.cpu.state.tsc == states[budget].tsc)
    }
    let ran = try makeSandbox(Self.straightLine)
    let (executed, stop) = ran.cpu.run(maxInstructions: 100)
    #expect(executed == 7 && stop == .halted)
    #expect(ran.reg(.rax) == 24 && ran.reg(.rcx) == 29)
  }

  @Test func faultInsideABlockLeavesRIPAtTheInstruction() throws {
    // inc eax; inc eax; mov rax, [rbx] (RBX non-canonical: #GP(0)); hlt
    let code: [UInt8] = [0xff, 0xc0, 0xff, 0xc0, 0x48, 0x8b, 0x03, 0xf4]
    let s = try makeSandbox(code) { $0[.rbx] = 0x8000_0000_0000_0000 }
    let (executed, stop) = s.cpu.run(maxInstructions: 100)
    #expect(executed == 2)
    #expect(stop == .exception(.generalProtection(0)))
    #expect(s.cpu.state.rip == Layout.code + 4 && s.reg(.rax) == 2)
  }

  @Test func storeIntoTheNextInstructionOfTheBlockTakesEffect() throws {
    // 0: mov byte ptr [rip+1], 7 (the imm32's low byte of the next instruction); 7: mov eax, 1; 12: hlt
    let code: [UInt8] = [0xc6, 0x05, 0x01, 0x00, 0x00, 0x00, 0x07, 0xb8, 0x01, 0x00, 0x00, 0x00, 0xf4]
    let s = try makeSandbox(code)
    let (executed, stop) = s.cpu.run(maxInstructions: 100)
    #expect(executed == 3 && stop == .halted)
    #expect(s.reg(.rax) == 7)
  }

  @Test func storeIntoABlockAlreadyRunIsSeenWhenItRunsAgain() throws {
    // 0: mov eax, 1; 5: mov byte ptr [rip-11], 7 (patches the imm at 1); 12: jmp 0
    let code: [UInt8] = [0xb8, 0x01, 0, 0, 0, 0xc6, 0x05, 0xf5, 0xff, 0xff, 0xff, 0x07, 0xe9, 0xef, 0xff, 0xff, 0xff]
    let s = try makeSandbox(code)
    #expect(s.cpu.run(maxInstructions: 3).executed == 3)
    #expect(s.reg(.rax) == 1 && s.cpu.state.rip == Layout.code)
    #expect(s.cpu.run(maxInstructions: 1).executed == 1)
    #expect(s.reg(.rax) == 7)
  }

  @Test func trapFlagSetInsideABlockStopsAtTheNextBoundary() throws {
    // pushfq; or qword ptr [rsp], 0x100; popfq (TF = 1: a #DB trap after the next instruction); inc eax; inc eax
    let code: [UInt8] = [0x9c, 0x48, 0x81, 0x0c, 0x24, 0x00, 0x01, 0x00, 0x00, 0x9d, 0xff, 0xc0, 0xff, 0xc0]
    let s = try makeSandbox(code)
    let (executed, stop) = s.cpu.run(maxInstructions: 100)
    #expect(executed == 4)
    #expect(stop == .exception(X86Exception(vector: X86Exception.Vector.debug, kind: .trap)))
    #expect(s.reg(.rax) == 1 && s.cpu.state.rip == Layout.code + 12)
  }

  /// dec ecx; jnz -4 (a loop of its own): the two run as one fused dispatch (FastForms.swift).
  static let countdown: [UInt8] = [0xff, 0xc9, 0x75, 0xfc, 0xf4]

  @Test func aBudgetEndingInsideAFusedPairStopsBetweenThem() throws {
    let s = try makeSandbox(Self.countdown) { $0[.rcx] = 3 }
    #expect(s.cpu.run(maxInstructions: 1).executed == 1)
    #expect(s.reg(.rcx) == 2 && s.cpu.state.rip == Layout.code + 2)
    // The Jcc alone, then the next pair, then the first of the third.
    #expect(s.cpu.run(maxInstructions: 4).executed == 4)
    #expect(s.reg(.rcx) == 0 && s.cpu.state.rip == Layout.code + 2 && s.cpu.retiredInstructions == 5)
    let (executed, stop) = s.cpu.run(maxInstructions: 100)
    #expect(executed == 2 && stop == .halted && s.cpu.state.rip == Layout.code + 5)
    #expect(s.rflags & F.zf != 0)
  }

  @Test func aFaultingJccOfAFusedPairLeavesTheFirstRetired() throws {
    // 32-bit code, CS limit 0x10_00ff: dec ecx; jnz +0x1000 (past the limit: #GP(0), SDM Vol. 2, Jcc).
    let code: [UInt8] = [0xff, 0xc9, 0x0f, 0x85, 0x00, 0x10, 0x00, 0x00, 0xf4]
    let s = try makeSandbox(code) { state in
      state = X86State()
      state.cr0 = ControlBit.cr0PE | 0x10
      state[.cs] = SegmentRegister(selector: 0x08, limit: 0x10_00ff, type: 0xb, defaultBig: true)
      for segment in [SegmentName.ds, .es, .ss] { state[segment] = .flatData() }
      state.rip = Layout.code
      state[.rcx] = 5
    }
    let (executed, stop) = s.cpu.run(maxInstructions: 100)
    #expect(executed == 1 && stop == .exception(.generalProtection(0)))
    #expect(s.reg(.rcx) == 4 && s.cpu.state.rip == Layout.code + 2 && s.cpu.retiredInstructions == 1)
  }
}
