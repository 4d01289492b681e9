// guest: elf64
// Halts with interrupts enabled on a machine that has no interrupt source: it would
// sleep forever, which Hyperstep reports instead of hanging.
    .code64
    .text
    .globl _start
_start:
    sti
    hlt
    ud2
