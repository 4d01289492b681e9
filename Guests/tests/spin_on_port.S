// guest: elf64
// Polls a port that no device answers, forever: the VMM must keep serving it
// (all-ones each time) until it is stopped from outside.
    .code64
    .text
    .globl _start
_start:
    mov $0x2f0, %dx
1:  in %dx, %al
    jmp 1b
