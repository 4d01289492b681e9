import Testing

@testable import X86

/// The JIT's encoder against llvm-objdump: each expected byte string was disassembled with
/// `llvm-objdump -d` (the instruction it printed is in the comment), so the encoder emits the
/// instruction the translator means, in its own fixed form (always a SIB byte and a 32-bit
/// displacement for a based operand).
struct HostAssemblerTests {
  typealias R = HostAssembler.Register

  func bytes(_ build: (inout HostAssembler) -> Void) -> [UInt8] {
    var asm = HostAssembler()
    build(&asm)
    return asm.bytes
  }

  @Test func probeInstructions() {
    // shrxq %r12, %rsi, %rdx
    #expect(bytes { $0.shrx(R.rdx, R.rsi, count: R.r12) } == [0xc4, 0xe2, 0x9b, 0xf7, 0xd6])
    // shrxq %r12, %rcx, %rcx
    #expect(bytes { $0.shrx(R.rcx, R.rcx, count: R.r12) } == [0xc4, 0xe2, 0x9b, 0xf7, 0xc9])
    // notq %rcx
    #expect(bytes { $0.not64(R.rcx) } == [0x48, 0xf7, 0xd1])
    // movq 256(%rbx,%rdx,8), %rdi
    #expect(
      bytes { $0.load(R.rdi, .memory(base: R.rbx, index: R.rdx, scale: 3, displacement: 256), size: 8) } == [
        0x48, 0x8b, 0xbc, 0xd3, 0x00, 0x01, 0x00, 0x00,
      ])
    // leaq 1(%rcx,%rdi), %rcx
    #expect(
      bytes { $0.lea(R.rcx, .memory(base: R.rcx, index: R.rdi, scale: 0, displacement: 1), size: 8) } == [
        0x48, 0x8d, 0x8c, 0x39, 0x01, 0x00, 0x00, 0x00,
      ])
    // leal -8(%rsi,%rdi,4), %esi
    #expect(
      bytes { $0.lea(R.rsi, .memory(base: R.rsi, index: R.rdi, scale: 2, displacement: -8), size: 4) } == [
        0x8d, 0xb4, 0xbe, 0xf8, 0xff, 0xff, 0xff,
      ])
  }

  @Test func guestOperands() {
    // addl %ecx, (%rsi,%rdi)
    #expect(bytes { $0.alu(0, .guestData, R.rcx, size: 4) } == [0x01, 0x0c, 0x3e])
    // movl 16(%rbx), %eax
    #expect(bytes { $0.load(R.rax, .context(16), size: 4) } == [0x8b, 0x84, 0x23, 0x10, 0x00, 0x00, 0x00])
    // movq %rax, 16(%rbx)
    #expect(bytes { $0.store(R.rax, .context(16), size: 8) } == [0x48, 0x89, 0x84, 0x23, 0x10, 0x00, 0x00, 0x00])
    // movzbl 9(%rbx), %eax
    #expect(bytes { $0.load(R.rax, .context(9), size: 1) } == [0x0f, 0xb6, 0x84, 0x23, 0x09, 0x00, 0x00, 0x00])
    // imull (%rsi,%rdi), %eax
    #expect(bytes { $0.imul(R.rax, .guestData, size: 4) } == [0x0f, 0xaf, 0x04, 0x3e])
    // movw %cx, (%rsi,%rdi)
    #expect(bytes { $0.store(R.rcx, .guestData, size: 2) } == [0x66, 0x89, 0x0c, 0x3e])
    // movq 144(%rbx), %r14
    #expect(bytes { $0.load(R.r14, .context(144), size: 8) } == [0x4c, 0x8b, 0xb4, 0x23, 0x90, 0x00, 0x00, 0x00])
    // movabsq $0x123456789, %rax ; movl $0x12345678, %r12d
    #expect(bytes { $0.moveImmediate(R.rax, 0x1_2345_6789) } == [0x48, 0xb8, 0x89, 0x67, 0x45, 0x23, 0x01, 0, 0, 0])
    #expect(bytes { $0.moveImmediate(R.r12, 0x1234_5678) } == [0x41, 0xbc, 0x78, 0x56, 0x34, 0x12])
  }

  @Test func flagsSaveAndRestore() {
    // lahf; seto %al; movw %ax, 136(%rbx)
    #expect(bytes { $0.saveFlags(at: 136) } == [0x9f, 0x0f, 0x90, 0xc0, 0x66, 0x89, 0x84, 0x23, 0x88, 0, 0, 0])
    // movw 136(%rbx), %ax; addb $127, %al; sahf
    #expect(bytes { $0.restoreFlags(from: 136) } == [0x66, 0x8b, 0x84, 0x23, 0x88, 0, 0, 0, 0x04, 0x7f, 0x9e])
  }
}
