// guest: elf64
// The guest's own debug registers: a write watchpoint in DR0 on `watched` and an
// instruction breakpoint in DR1 on `breakpoint_here`. Its #DB handler counts each hit and
// records DR6 (then clears it); for the instruction breakpoint, a fault, it sets RF in the
// frame so the instruction can run on return. It also checks that DR0 and DR7 read back what
// it wrote. Output, from the SDM's DR6 layout (vol. 3, 18.2.3; bits 4-11 and 16-31 read 1):
//   dr0=ok dr7=ok / hits=00000002 / dr6 after the watchpoint ffff0ff1, after the breakpoint ffff0ff2
    .code64
    .text
    .globl _start
_start:
    lea stack_top(%rip), %rsp
    call serial_init
    lea idt(%rip), %rdx
    lea db_handler(%rip), %rax
    mov %ax, 16(%rdx)
    movw $0x18, 18(%rdx)
    movw $0x8e00, 20(%rdx)
    shr $16, %rax
    mov %ax, 22(%rdx)
    shr $16, %rax
    mov %eax, 24(%rdx)
    lidt idtr(%rip)

    lea watched(%rip), %rax
    mov %rax, %dr0
    lea breakpoint_here(%rip), %rax
    mov %rax, %dr1
    mov $0x000d0005, %eax     // L0, L1; DR0: write (RW=01), 4 bytes (LEN=11); DR1: execute
    mov %rax, %dr7
    mov %dr0, %rax
    lea watched(%rip), %rbx
    cmp %rbx, %rax
    jne bad_dr0
    mov %dr7, %rax
    and $0xffff00ff, %eax      // bits 8-15 are implementation-dependent
    cmp $0x000d0005, %eax
    jne bad_dr7
    lea ok_text(%rip), %rsi
    call puts

    movl $5, watched(%rip)    // the watchpoint: a trap after this write
    nop
breakpoint_here:
    nop                       // the breakpoint: a fault before this instruction
    nop

    lea hits_text(%rip), %rsi
    call puts
    mov hits(%rip), %edi
    call puthex
    lea dr6_text(%rip), %rsi
    call puts
    mov dr6_first(%rip), %edi
    call puthex
    mov $' ', %bl
    call putc
    mov dr6_second(%rip), %edi
    call puthex
    mov $10, %bl
    call putc
    mov $0x10, %al
    out %al, $0xf4
bad_dr0:
    mov $0x21, %al
    out %al, $0xf4
bad_dr7:
    mov $0x22, %al
    out %al, $0xf4

db_handler:
    push %rax
    mov %dr6, %rax
    cmpl $0, hits(%rip)
    jne 1f
    mov %eax, dr6_first(%rip)
    jmp 2f
1:  mov %eax, dr6_second(%rip)
2:  incl hits(%rip)
    xor %eax, %eax
    mov %rax, %dr6
    orq $0x10000, 24(%rsp)    // RF in the saved RFLAGS (above the pushed RAX)
    pop %rax
    iretq

#include "serial.inc"

ok_text:   .asciz "dr0=ok dr7=ok\n"
hits_text: .asciz "hits="
dr6_text:  .asciz "\ndr6="
    .p2align 3
idtr:   .word 256 * 16 - 1
        .quad idt
    .p2align 2
watched:    .long 0
hits:       .long 0
dr6_first:  .long 0
dr6_second: .long 0
    .p2align 4
idt:    .fill 256 * 16, 1, 0
    .fill 1024, 1, 0
stack_top:
