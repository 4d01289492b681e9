// guest: elf64
// MMIO: loads from guest-physical space no device claims read as all-ones, stores
// there vanish, a read-modify-write (incl, emulated by KVM) on it completes, and
// stores to the read-only reset-vector ROM leave it unchanged (it holds HLT bytes).
// Each failing check exits with its own value; all passing exits with 0x10.
    .code64
    .text
    .globl _start
_start:
    lea stack_top(%rip), %rsp
    call serial_init

    mov $0xd0000000, %rbx     // in the 3-4 GiB device hole, unclaimed
    movl (%rbx), %eax
    cmp $0xffffffff, %eax
    mov $0x21, %cl
    jne fail
    movq (%rbx), %rax
    cmp $-1, %rax
    mov $0x22, %cl
    jne fail
    movb $0x12, (%rbx)        // a store to nothing
    movb (%rbx), %al
    cmp $0xff, %al
    mov $0x23, %cl
    jne fail
    incl (%rbx)               // read-modify-write through the emulator
    movl (%rbx), %eax
    cmp $0xffffffff, %eax
    mov $0x24, %cl
    jne fail

    mov $0xffff0000, %rbx     // the read-only ROM
    movl $0x12345678, (%rbx)
    movl (%rbx), %eax
    cmp $0xf4f4f4f4, %eax
    mov $0x25, %cl
    jne fail

    lea done(%rip), %rsi
    call puts
    mov $0x10, %al
    out %al, $0xf4
fail:
    mov %cl, %al
    out %al, $0xf4

#include "serial.inc"

done: .asciz "MMIO checks passed\n"
    .p2align 4
    .fill 256, 1, 0
stack_top:
