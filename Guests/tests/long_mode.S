// guest: elf64
// An ELF64 executable: entered in 64-bit long mode with identity-mapped paging.
// Prints EFER (LME and LMA set) and CR4 (PAE), then exits with PASS (0x10).
    .code64
    .text
    .globl _start
_start:
    lea stack_top(%rip), %rsp
    call serial_init
    lea hello(%rip), %rsi
    call puts
    mov $0xc0000080, %ecx     // IA32_EFER
    rdmsr
    mov %eax, %edi
    call puthex
    lea cr4_text(%rip), %rsi
    call puts
    mov %cr4, %rdi
    call puthex
    lea far_text(%rip), %rsi
    call puts
    mov $0xfffff000, %rax     // the identity map covers all of the low 4 GiB
    mov (%rax), %edi          // ROM: filled with HLT (0xf4) bytes
    call puthex
    lea newline(%rip), %rsi
    call puts
    mov $0x10, %al
    out %al, $0xf4

#include "serial.inc"

hello:    .asciz "long mode: efer="
cr4_text: .asciz " cr4="
far_text: .asciz " rom="
newline:  .asciz "\n"
    .p2align 4
    .fill 512, 1, 0
stack_top:
