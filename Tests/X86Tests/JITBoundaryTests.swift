import GuestMemory
import Testing

@testable import X86

/// The JIT tier at its edges: a store into the running block's own code, a fault in the
/// middle of a block, a budget that ends inside one, and a loop that must stay in translated
/// code (TLB hits and chained blocks). Expected values are worked out from the SDM's
/// definitions of the instructions (hand-assembled bytes, each listed with its meaning), and
/// each run is also compared with `step()`.
struct JITBoundaryTests {
  /// A 64-bit sandbox with `code` at `Layout.code`, RSP at `Layout.stackTop`, translation on
  /// or off.
  func sandbox(_ code: [UInt8], translate: Bool, setup: (X86Sandbox) throws -> Void = { _ in }) throws -> X86Sandbox {
    let sandbox = try X86Sandbox()
    sandbox.cpu.usesTranslation = translate
    sandbox.cpu.translationThreshold = 0  // translate on sight: these programs run once
    try sandbox.load(code: code, at: Layout.code)
    try setup(sandbox)
    var state = sandbox.cpu.state
    state.rip = Layout.code
    state[.rsp] = Layout.stackTop
    sandbox.cpu.state = state
    return sandbox
  }

  func stepToEnd(_ sandbox: X86Sandbox) -> StepResult {
    var stop = StepResult.retired
    var steps = 0
    while stop == .retired && steps < 1_000_000 {
      stop = sandbox.cpu.step()
      steps += 1
    }
    return stop
  }

  func runToEnd(_ sandbox: X86Sandbox) -> StepResult {
    var stop = StepResult.retired
    while stop == .retired { stop = sandbox.cpu.run(maxInstructions: 1_000_000).stop }
    return stop
  }

  func expectSameState(_ a: X86Sandbox, _ b: X86Sandbox) {
    for index in 0..<16 { #expect(a.cpu.state.gpr[index] == b.cpu.state.gpr[index], "GPR \(index)") }
    #expect(a.cpu.state.rflags == b.cpu.state.rflags)
    #expect(a.cpu.state.rip == b.cpu.state.rip)
    #expect(a.cpu.state.tsc == b.cpu.state.tsc)
    #expect(a.cpu.retiredInstructions == b.cpu.retiredInstructions)
  }

  /// A store into the next instruction of the same block: the next instruction must be the
  /// new one (SDM Vol. 3, 11.6: a write to a code location takes effect for the instructions
  /// after it), on both passes of the loop.
  @Test func storeIntoOwnBlock() throws {
    let code: [UInt8] = [
      0xba, 0x02, 0x00, 0x00, 0x00,  // 0x00 mov edx, 2
      0x31, 0xc0,  // 0x05 xor eax, eax
      0x88, 0x15, 0x01, 0x00, 0x00, 0x00,  // 0x07 again: mov [rip + 1], dl (the imm8 below's low byte)
      0xb9, 0x11, 0x00, 0x00, 0x00,  // 0x0d mov ecx, 0x11 (its immediate rewritten)
      0x01, 0xc8,  // 0x12 add eax, ecx
      0xff, 0xca,  // 0x14 dec edx
      0x75, 0xef,  // 0x16 jnz again
      0xf4,  // 0x18 hlt
    ]
    let ran = try sandbox(code, translate: true)
    #expect(runToEnd(ran) == .halted)
    // First pass: ECX = 2, then 1: EAX = 3.
    #expect(ran.cpu.state[.rax] == 3)
    #expect(ran.cpu.state[.rcx] == 1)
    #expect(ran.cpu.retiredInstructions == 2 + 5 * 2 + 1)  // HLT retires too
    #expect(ran.cpu.translatedBlocksEntered > 0)
    let stepped = try sandbox(code, translate: false)
    #expect(stepToEnd(stepped) == .halted)
    expectSameState(stepped, ran)
  }

  /// A load from a page that is not present, after two translated instructions of the same
  /// block: #PF with error code 0 (not present, read, supervisor; SDM Vol. 3, 4.7), CR2 = the
  /// address, RIP at the load, the two before it retired.
  @Test func pageFaultInsideBlock() throws {
    let code: [UInt8] = [
      0xb8, 0x05, 0x00, 0x00, 0x00,  // mov eax, 5
      0x83, 0xc0, 0x07,  // add eax, 7
      0x48, 0xc7, 0xc2, 0x00, 0x00, 0x80, 0x00,  // mov rdx, 0x800000
      0x8b, 0x0a,  // mov ecx, [rdx]
      0xf4,
    ]
    // The page directory entry for 8-10 MiB (index 4) not present.
    let hole: (X86Sandbox) throws -> Void = { try $0.write([UInt8](repeating: 0, count: 8), at: 0x3000 + 4 * 8) }
    let ran = try sandbox(code, translate: true, setup: hole)
    let stop = runToEnd(ran)
    #expect(stop == .exception(X86Exception(vector: X86Exception.Vector.pageFault, errorCode: 0)))
    #expect(ran.cpu.state.rip == Layout.code + 15)
    #expect(ran.cpu.state.cr2 == 0x80_0000)
    #expect(ran.cpu.state[.rax] == 12)
    #expect(ran.cpu.retiredInstructions == 3)
    #expect(ran.cpu.translatedBlocksEntered > 0)
    let stepped = try sandbox(code, translate: false, setup: hole)
    #expect(stepToEnd(stepped) == stop)
    expectSameState(stepped, ran)
  }

  /// DIV by zero (left to the interpreter) after translated instructions: #DE, RIP at the
  /// DIV, nothing of it done (SDM Vol. 2, DIV).
  @Test func divideErrorInsideBlock() throws {
    let code: [UInt8] = [
      0x31, 0xd2,  // xor edx, edx
      0xb8, 0x0a, 0x00, 0x00, 0x00,  // mov eax, 10
      0x31, 0xc9,  // xor ecx, ecx
      0xf7, 0xf1,  // div ecx
      0xf4,
    ]
    let ran = try sandbox(code, translate: true)
    let stop = runToEnd(ran)
    #expect(stop == .exception(X86Exception(vector: X86Exception.Vector.divideError, errorCode: nil)))
    #expect(ran.cpu.state.rip == Layout.code + 9)
    #expect(ran.cpu.state[.rax] == 10)
    #expect(ran.cpu.retiredInstructions == 3)
    let stepped = try sandbox(code, translate: false)
    #expect(stepToEnd(stepped) == stop)
    expectSameState(stepped, ran)
  }

  /// Budgets of 1 to 12 instructions over a block of 10 straight-line instructions and a HLT:
  /// exactly that many retire, and the state is the one `step()` reaches after as many steps.
  @Test(arguments: 1...12) func budgetEndsInsideBlock(budget: UInt64) throws {
    let code: [UInt8] =
      [0x31, 0xc0]
      + (0..<9).flatMap { index -> [UInt8] in
        [0x83, 0xc0, UInt8(index + 1)]  // add eax, index + 1
      } + [0xf4]
    let ran = try sandbox(code, translate: true)
    // Translate the block first (a full run), then start again from the top with the budget.
    _ = runToEnd(ran)
    var state = ran.cpu.state
    state.rip = Layout.code
    state.halted = false
    ran.cpu.state = state
    let before = ran.cpu.retiredInstructions
    let (executed, stop) = ran.cpu.run(maxInstructions: budget)
    let retired = min(budget, 11)
    #expect(executed == retired)
    #expect(ran.cpu.retiredInstructions - before == retired)
    #expect(stop == (budget >= 11 ? .halted : .retired))
    // EAX: the sum of the first (retired - 1) immediates 1, 2, ...
    let adds = min(retired - 1, 9)
    #expect(ran.cpu.state[.rax] == adds * (adds + 1) / 2)
    let stepped = try sandbox(code, translate: false)
    _ = stepToEnd(stepped)
    var steppedState = stepped.cpu.state
    steppedState.rip = Layout.code
    steppedState.halted = false
    stepped.cpu.state = steppedState
    for _ in 0..<retired { _ = stepped.cpu.step() }
    expectSameState(stepped, ran)
  }

  /// The page directory entry of a translated function's page is pointed at another physical
  /// page, and CR3 reloaded (the entry is not global, so MOV to CR3 drops it: SDM Vol. 3,
  /// 4.10.4.1): the second call must run the code of the new page.
  @Test func remappedCodePage() throws {
    let code: [UInt8] = [
      0xe8, 0xfb, 0xff, 0x2f, 0x00,  // 0x00 call 0x400000
      0x89, 0xc3,  // 0x05 mov ebx, eax
      0x48, 0xc7, 0xc2, 0x10, 0x30, 0x00, 0x00,  // 0x07 mov rdx, 0x3010 (PDE 2: 4-6 MiB)
      0x48, 0xc7, 0x02, 0xe7, 0x00, 0x60, 0x00,  // 0x0e mov qword [rdx], 0x6000e7 (-> 6 MiB)
      0x0f, 0x20, 0xd8,  // 0x15 mov rax, cr3
      0x0f, 0x22, 0xd8,  // 0x18 mov cr3, rax
      0xe8, 0xe0, 0xff, 0x2f, 0x00,  // 0x1b call 0x400000
      0xf4,  // 0x20 hlt
    ]
    let functions: (X86Sandbox) throws -> Void = { sandbox in
      try sandbox.write([0xb8, 0x01, 0x00, 0x00, 0x00, 0xc3], at: 0x40_0000)  // mov eax, 1; ret
      try sandbox.write([0xb8, 0x02, 0x00, 0x00, 0x00, 0xc3], at: 0x60_0000)  // mov eax, 2; ret
    }
    let ran = try sandbox(code, translate: true, setup: functions)
    #expect(runToEnd(ran) == .halted)
    #expect(ran.cpu.state[.rbx] == 1)
    #expect(ran.cpu.state[.rax] == 2)
    #expect(ran.cpu.translatedBlocksEntered > 0)
    let stepped = try sandbox(code, translate: false, setup: functions)
    #expect(stepToEnd(stepped) == .halted)
    expectSameState(stepped, ran)
  }

  /// A loop of loads, stores, CALL and RET stays in translated code: its blocks chain, its data
  /// accesses hit the TLB and RET finds its target in the jump cache, so the 1000 iterations
  /// (8000 instructions) enter translated code only a few times.
  @Test func loopStaysTranslated() throws {
    let code: [UInt8] = [
      0xb9, 0xe8, 0x03, 0x00, 0x00,  // 0x00 mov ecx, 1000
      0x48, 0xc7, 0xc3, 0x00, 0x00, 0x20, 0x00,  // 0x05 mov rbx, 0x200000
      0x8b, 0x03,  // 0x0c again: mov eax, [rbx]
      0xe8, 0x0a, 0x00, 0x00, 0x00,  // 0x0e call bump (0x1d)
      0x89, 0x43, 0x04,  // 0x13 mov [rbx + 4], eax
      0xff, 0xc9,  // 0x16 dec ecx
      0x75, 0xf2,  // 0x18 jnz again
      0xf4,  // 0x1a hlt
      0x90, 0x90,  // 0x1b padding
      0x83, 0xc0, 0x03,  // 0x1d bump: add eax, 3
      0xc3,  // 0x20 ret
    ]
    let ran = try sandbox(code, translate: true)
    #expect(runToEnd(ran) == .halted)
    #expect(ran.cpu.retiredInstructions == 2 + 1000 * 7 + 1)
    #expect(ran.cpu.state[.rcx] == 0)
    #expect(ran.cpu.translatedBlocksEntered < 40, "entered \(ran.cpu.translatedBlocksEntered) times")
    let stepped = try sandbox(code, translate: false)
    #expect(stepToEnd(stepped) == .halted)
    expectSameState(stepped, ran)
  }

  /// A host breakpoint (an execute range) set in a loop that is already translated and
  /// chained: the run stops before that instruction on the loop's next pass, with the
  /// instructions before it retired, exactly as stepping counts them; and with the range
  /// gone the loop runs on translated to its end.
  @Test func breakpointInATranslatedLoopStopsThere() throws {
    let code: [UInt8] = [
      0xb9, 0x64, 0x00, 0x00, 0x00,  // 0x00 mov ecx, 100
      0x31, 0xc0,  // 0x05 xor eax, eax
      0x83, 0xc0, 0x02,  // 0x07 again: add eax, 2
      0x83, 0xc0, 0x03,  // 0x0a add eax, 3 (the breakpoint)
      0xff, 0xc9,  // 0x0d dec ecx
      0x75, 0xf6,  // 0x0f jnz again
      0xf4,  // 0x11 hlt
    ]
    let ran = try sandbox(code, translate: true)
    // 2 + 10 passes of 4: the loop is translated and chained to itself by now.
    #expect(ran.cpu.run(maxInstructions: 42).executed == 42)
    #expect(ran.cpu.translatedBlocksEntered > 0)
    let breakpoint = Layout.code + 0x0a
    ran.cpu.setWatchRanges([WatchRange(start: breakpoint, length: 1, kinds: .execute)])
    let (executed, _) = ran.cpu.run(maxInstructions: 1000)
    // From `again` (RIP after 10 passes): `add eax, 2` retires, then the stop before 0x0a.
    #expect(executed == 1)
    #expect(ran.cpu.state.rip == breakpoint)
    #expect(ran.cpu.watchHits.map(\.address) == [breakpoint])
    #expect(ran.cpu.state[.rax] == UInt64(10 * 5 + 2))
    ran.cpu.clearWatchHits()
    ran.cpu.setWatchRanges([])
    #expect(runToEnd(ran) == .halted)
    #expect(ran.cpu.state[.rax] == 500)
    #expect(ran.cpu.retiredInstructions == 2 + 100 * 4 + 1)
  }
}
