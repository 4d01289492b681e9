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
    call install_db_handler

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

    call print_db_results
    mov $0x10, %al
    out %al, $0xf4
bad_dr0:
    mov $0x21, %al
    out %al, $0xf4
bad_dr7:
    mov $0x22, %al
    out %al, $0xf4

#include "serial.inc"
#include "debug_exception.inc"

ok_text:   .asciz "dr0=ok dr7=ok\n"
    .p2align 2
watched:    .long 0
    .p2align 4
    .fill 1024, 1, 0
stack_top:
