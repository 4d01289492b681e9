// guest: elf64
// Never ends: for stepping a long way (the memory-growth check steps it 10 million times).
    .code64
    .text
    .globl _start
_start:
    add $1, %rax
    jmp _start
