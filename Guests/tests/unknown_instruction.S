// guest: elf64
// Runs an instruction neither engine may execute here: VZEROUPPER (C5 F8 77), an AVX
// instruction, raises #UD on a real CPU while CR4.OSXSAVE is clear (SDM Vol. 2, VZEROUPPER,
// "Exceptions": #UD if CR4.OSXSAVE = 0), and the interpreter implements no AVX. The #UD
// handler prints where the fault was (the RIP in its frame: the label `unknown`) and skips
// the 3 bytes; then the guest exits with 0x10. The interpreter also says on stderr, once,
// which bytes it did not know.
    .code64
    .text
    .globl _start
_start:
    lea stack_top(%rip), %rsp
    call serial_init
    lea idt(%rip), %rdx
    lea ud_handler(%rip), %rax
    mov %ax, 6 * 16(%rdx)          // gate 6: 64-bit interrupt gate, CS 0x18
    movw $0x18, 6 * 16 + 2(%rdx)
    movw $0x8e00, 6 * 16 + 4(%rdx)
    shr $16, %rax
    mov %ax, 6 * 16 + 6(%rdx)
    shr $16, %rax
    mov %eax, 6 * 16 + 8(%rdx)
    lidt idtr(%rip)
    .globl unknown
unknown:
    vzeroupper
    mov $0x10, %al
    out %al, $0xf4

ud_handler:
    mov (%rsp), %rdi               // the faulting RIP
    mov $ud_text, %esi
    call puts
    call puthex
    mov $newline, %esi
    call puts
    addq $3, (%rsp)
    iretq

#include "serial.inc"

ud_text: .asciz "#UD at "
newline: .asciz "\n"
idtr:   .word 16 * 16 - 1
        .quad idt
    .p2align 4
idt:    .fill 16 * 16, 1, 0
    .fill 1024, 1, 0
stack_top:
