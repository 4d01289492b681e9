// guest: elf64
// Asks Hyperstep to trace just one stretch of itself: writes 1 to the control port (0x600)
// before `traced`, and 0 after it, then leaves through isa-debug-exit with 0x10.
    .code64
    .text
    .globl _start
_start:
    mov $0x600, %dx
    mov $1, %eax
    out %eax, %dx             // start stepping: the trace begins after this OUT
traced:
    nop
    add $2, %ebx
    xor %eax, %eax
    out %eax, %dx             // stop stepping
untraced:
    nop
    nop
    mov $0x10, %al
    out %al, $0xf4
