import GuestMemory
import Testing

@testable import X86

/// Where the tests put things in the sandbox's identity-mapped first GiB.
enum Layout {
  static let code: UInt64 = 0x10_0000
  static let data: UInt64 = 0x20_0000
  static let stackTop: UInt64 = 0x30_0000
}

/// Flag bits by name, for expected values written from the SDM.
enum F {
  static let cf: UInt64 = 0x1, pf: UInt64 = 0x4, af: UInt64 = 0x10, zf: UInt64 = 0x40, sf: UInt64 = 0x80
  static let tf: UInt64 = 0x100, `if`: UInt64 = 0x200, df: UInt64 = 0x400, of: UInt64 = 0x800
  static let fixed: UInt64 = 0x2
}

/// A sandbox with `code` at `Layout.code`, RSP at `Layout.stackTop`, after `setup`.
func makeSandbox(_ code: [UInt8], setup: (inout X86State) -> Void = { _ in }) throws -> X86Sandbox {
  let sandbox = try X86Sandbox()
  try sandbox.load(code: code, at: Layout.code)
  var state = sandbox.cpu.state
  state.rip = Layout.code
  state[.rsp] = Layout.stackTop
  setup(&state)
  sandbox.cpu.state = state
  return sandbox
}

/// Runs one instruction and expects it to retire.
@discardableResult
func stepOne(_ code: [UInt8], setup: (inout X86State) -> Void = { _ in }) throws -> X86Sandbox {
  let sandbox = try makeSandbox(code, setup: setup)
  let result = sandbox.cpu.step()
  #expect(result == .retired)
  #expect(sandbox.cpu.state.rip == Layout.code + UInt64(code.count))
  return sandbox
}

/// Runs one instruction and returns what it raised.
func stepFault(_ code: [UInt8], setup: (inout X86State) -> Void = { _ in }) throws -> (X86Sandbox, StepResult) {
  let sandbox = try makeSandbox(code, setup: setup)
  return (sandbox, sandbox.cpu.step())
}

extension X86Sandbox {
  func load64(_ address: UInt64) throws -> UInt64 { try memory.load(UInt64.self, at: GuestAddress(address)) }
  func store64(_ value: UInt64, _ address: UInt64) throws { try memory.store(value, at: GuestAddress(address)) }
  func load32(_ address: UInt64) throws -> UInt32 { try memory.load(UInt32.self, at: GuestAddress(address)) }
  func store32(_ value: UInt32, _ address: UInt64) throws { try memory.store(value, at: GuestAddress(address)) }
  func load16(_ address: UInt64) throws -> UInt16 { try memory.load(UInt16.self, at: GuestAddress(address)) }
  func store16(_ value: UInt16, _ address: UInt64) throws { try memory.store(value, at: GuestAddress(address)) }
  var rflags: UInt64 { cpu.state.rflags }
  func reg(_ register: GPR) -> UInt64 { cpu.state[register] }
}
