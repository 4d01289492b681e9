// guest: elf64
// Prints a line, then halts with interrupts disabled: a clean end (exit status 0).
    .code64
    .text
    .globl _start
_start:
    lea stack_top(%rip), %rsp
    call serial_init
    lea message(%rip), %rsi
    call puts
    cli
    hlt
    ud2                       // never reached: nothing can wake a CPU halted with IF=0

#include "serial.inc"

message: .asciz "halting with interrupts off\n"
    .p2align 4
    .fill 256, 1, 0
stack_top:
