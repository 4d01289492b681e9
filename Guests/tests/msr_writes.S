// guest: elf64
// Writes LSTAR (the SYSCALL entry point, here `syscall_entry`) and sets EFER.SCE (bit 0),
// as a kernel does while it boots, then reads both back to check the writes took effect.
// Prints "msrs ok" and exits with 0x10, or exits with 0x11 if a write was lost.
    .code64
    .text
    .globl _start
_start:
    lea stack_top(%rip), %rsp
    call serial_init
    lea syscall_entry(%rip), %rax
    mov %rax, %rdx
    shr $32, %rdx
    mov $0xc0000082, %ecx     // IA32_LSTAR
    wrmsr
    mov $0xc0000080, %ecx     // IA32_EFER: 0x500 on entry (LME, LMA)
    rdmsr
    or $1, %eax               // SCE
    wrmsr
checks:
    mov $0xc0000082, %ecx
    rdmsr
    shl $32, %rdx
    or %rdx, %rax
    lea syscall_entry(%rip), %rbx
    cmp %rbx, %rax
    jne fail
    mov $0xc0000080, %ecx
    rdmsr
    cmp $0x501, %eax
    jne fail
    lea ok_text(%rip), %rsi
    call puts
    mov $0x10, %al
    out %al, $0xf4
fail:
    mov $0x11, %al
    out %al, $0xf4
syscall_entry:
    ud2

#include "serial.inc"

ok_text: .asciz "msrs ok\n"
    .p2align 4
    .fill 256, 1, 0
stack_top:
