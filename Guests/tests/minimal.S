// guest: flat-real 0x7c00
// The smallest useful guest: leave through isa-debug-exit at once. Used by the boot
// benchmark, where all that should be measured is building and entering a VM.
    .code16
    .text
    .globl _start
_start:
    mov $0x10, %al
    out %al, $0xf4
    hlt
