// guest: elf64
// 64-bit instructions KVM's instruction emulator cannot carry out when it must run them
// (on hosts without VMX/SVM, such as PVM, it runs all ring-0 code): LOCK CMPXCHG16B.
// Hyperstep completes them with its interpreter; this guest checks the results, which come
// from the SDM's CMPXCHG8B/CMPXCHG16B description: compare RDX:RAX with the 16-byte
// operand; equal: ZF = 1 and RCX:RBX is stored; not equal: ZF = 0 and the operand is
// loaded into RDX:RAX.
// Prints:
//   cmpxchg16b: zf=00000001 mem=00000003 00000004 zf=00000000 rax=00000003 rdx=00000004
    .code64
    .text
    .globl _start
_start:
    lea stack_top(%rip), %rsp
    call serial_init
    lea pair(%rip), %rdi
    mov $1, %eax              // RDX:RAX = 2:1 equals the operand {1, 2}
    mov $2, %edx
    mov $3, %ebx
    mov $4, %ecx
    lock cmpxchg16b (%rdi)    // equal: the operand becomes {3, 4}
    setz %r12b
    xor %eax, %eax            // RDX:RAX = 0:0 differs from {3, 4}
    xor %edx, %edx
    lock cmpxchg16b (%rdi)    // not equal: RDX:RAX = 4:3
    setz %r13b
    mov %rax, %r14
    mov %rdx, %r15

    lea text_zf(%rip), %rsi
    call puts
    movzbl %r12b, %edi
    call puthex
    lea text_mem(%rip), %rsi
    call puts
    mov pair(%rip), %edi
    call puthex
    lea text_space(%rip), %rsi
    call puts
    mov pair+8(%rip), %edi
    call puthex
    lea text_zf2(%rip), %rsi
    call puts
    movzbl %r13b, %edi
    call puthex
    lea text_rax(%rip), %rsi
    call puts
    mov %r14d, %edi
    call puthex
    lea text_rdx(%rip), %rsi
    call puts
    mov %r15d, %edi
    call puthex
    lea text_newline(%rip), %rsi
    call puts
    mov $0x10, %al
    out %al, $0xf4

#include "serial.inc"

text_zf:      .asciz "cmpxchg16b: zf="
text_mem:     .asciz " mem="
text_space:   .asciz " "
text_zf2:     .asciz " zf="
text_rax:     .asciz " rax="
text_rdx:     .asciz " rdx="
text_newline: .asciz "\n"
    .p2align 4
pair:   .quad 1, 2            // 16-byte aligned, as CMPXCHG16B requires (else #GP)
    .fill 512, 1, 0
stack_top:
