// guest: elf64
// Loads an empty IDT and raises #UD: no handler for it, nor for the #GP and #DF that
// follow, so the CPU shuts down (a triple fault). (Not INT3: without next-RIP support,
// as under nested SVM, KVM emulates INT3 and fails outside real mode instead.)
    .code64
    .text
    .globl _start
_start:
    lea stack_top(%rip), %rsp
    call serial_init
    lea message(%rip), %rsi
    call puts
    lidt empty_idt(%rip)
    ud2

#include "serial.inc"

message: .asciz "about to triple fault\n"
    .p2align 3
empty_idt:
    .word 0
    .quad 0
    .p2align 4
    .fill 256, 1, 0
stack_top:
