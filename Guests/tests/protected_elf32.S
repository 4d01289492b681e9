// guest: elf32
// An ELF32 executable: entered at its entry point in 32-bit protected mode.
// Prints EFLAGS as found on entry (interrupts off: only the reserved bit 1) and exits with PASS.
    .code32
    .text
    .globl _start
_start:
    pushf                     // EFLAGS before any instruction can change it (uses Hyperstep's boot stack)
    pop %ebp
    mov $stack_top, %esp
    call serial_init
    mov $hello, %esi
    call puts
    mov %ebp, %edi
    call puthex
    mov $newline, %esi
    call puts
    mov $0x10, %al
    out %al, $0xf4

#include "serial.inc"

hello:    .asciz "ELF32 entry: eflags="
newline:  .asciz "\n"
    .p2align 4
    .fill 256, 1, 0
stack_top:
