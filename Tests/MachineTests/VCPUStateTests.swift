import KVM
import Machine
import TestGuests
import Testing

/// The vCPU's register cache and KVM's register mirror (KVM_CAP_SYNC_REGS) must never show
/// a stale state: after every run and every write, reads see what the guest now holds.
@Suite(requiresKVM) struct VCPUStateTests {
  /// Steps the tight_loop guest by hand. From its disassembly: `mov $100000, %ecx`,
  /// `xor %eax, %eax`, then `loop: add $1, %rax; dec %ecx; jnz loop`. After 2 + 3k steps
  /// RAX = k, RCX = 100000 - k, and RIP is `loop`.
  func stepTightLoop(mirror: MirroredState) throws {
    let machine = try Machine(
      configuration: MachineConfiguration(kernel: TestGuests.tightLoop.image, kernelName: "tight_loop"),
      console: CapturedConsole())
    let vcpu = machine.kvmVCPUs[0]
    vcpu.bindToCurrentThread()
    if !mirror.isEmpty { #expect(vcpu.mirrorStateOnExit(mirror), "this host mirrors \(mirror.rawValue)") }
    let loop = try #require(try ELFFile(TestGuests.tightLoop.elf).symbols().first { $0.name == "loop" }).address
    let stepping = GuestDebug(options: [.singleStep])
    func step(_ count: Int) throws {
      for _ in 0..<count {
        try vcpu.setGuestDebug(stepping)
        guard case .debug = try vcpu.run() else {
          Issue.record("a single step did not end in a debug exit")
          return
        }
      }
    }
    try step(2 + 3 * 5)
    var registers = try vcpu.registers()
    #expect(registers.rax == 5)
    #expect(registers.rcx == 100_000 - 5)
    #expect(registers.rip == loop)
    #expect(try vcpu.specialRegisters().cs.base == 0)
    // A write is seen by the next read, and by the guest.
    registers.rax = 1000
    try vcpu.setRegisters(registers)
    #expect(try vcpu.registers().rax == 1000)
    try step(3)
    registers = try vcpu.registers()
    #expect(registers.rax == 1001)
    #expect(registers.rcx == 100_000 - 6)
    #expect(registers.rip == loop)
  }

  @Test func readsFollowRunsAndWritesWithoutMirroring() throws {
    try stepTightLoop(mirror: [])
  }

  @Test func readsFollowRunsAndWritesWithMirroring() throws {
    try stepTightLoop(mirror: [.registers, .specialRegisters])
  }
}
