import TestGuests
import Testing

@testable import Machine

/// KVM's emulation failures completed by the interpreter (Machine/Engine/KVMAssist.swift).
@Suite struct KVMAssistTests {
  /// Instructions KVM's emulator cannot carry out (on hosts without VMX/SVM it runs all of
  /// this code): on KVM the interpreter completes each one (KVMAssist), so the results are
  /// the same as on the interpreter. Expected values from the SDM, as each guest's header says.
  @Test(arguments: Engines.all) func instructionsKVMCannotEmulateComplete(engine: TestEngine) throws {
    let wide = try GuestBootTests().boot(TestGuests.kvmFailures64, on: engine)
    #expect(wide.output == "cmpxchg16b: zf=00000001 mem=00000003 00000004 zf=00000000 rax=00000003 rdx=00000004\n")
    #expect(wide.outcome == GuestBootTests.pass)
    let legacy = try GuestBootTests().boot(TestGuests.kvmFailures32, on: engine)
    #expect(
      legacy.output
        == "daa=00000014 cf=00000001 aam=00000603 flags=00000004 enter=00000014 00000004 cafef00d mxcsr=00007f80 br=00000001\n"
    )
    #expect(legacy.outcome == GuestBootTests.pass)
  }
}
