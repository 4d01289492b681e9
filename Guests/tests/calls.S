// guest: elf64
// A small call graph with no loops, so a trace's per-function counts can be worked out
// from the source: _start calls leaf, middle (which calls leaf), then leaf again.
//   leaf:   3 instructions (nop, nop, ret)
//   middle: 3 instructions of its own (nop, call leaf, ret) plus leaf's 3
//   _start: 6 instructions (lea, call, call, call, mov, out)
    .code64
    .text
    .globl _start
_start:
    lea stack_top(%rip), %rsp
    call leaf
    call middle
    call leaf
    mov $0x10, %al
    out %al, $0xf4
leaf:
    nop
    nop
    ret
middle:
    nop
    call leaf
    ret
    .p2align 4
    .fill 256, 1, 0
stack_top:
