// guest: elf64
// Instructions whose single-step behaviour the architecture defines specially:
// MOV SS (the next instruction runs in its shadow, without a trap of its own) and REP MOVSB
// (traps between iterations, RIP staying on the REP until the last one).
    .code64
    .text
    .globl _start
_start:
    mov $0x10, %eax
    mov %eax, %ss             // shadow: the next instruction has no stop of its own
    nop
    nop
    lea source(%rip), %rsi
    lea target(%rip), %rdi
    mov $3, %ecx
    rep movsb                 // three iterations
    pushf
    pop %rax
    and $0x100, %eax          // TF as pushed: 0
    mov $0x10, %al
    out %al, $0xf4
source: .ascii "abc"
target: .fill 4, 1, 0
