// guest: flat-protected 0x100000
// A raw binary entered in 32-bit protected mode at 1 MiB, paging off.
// Prints CR0 and the code segment selector, then exits with PASS (0x10).
    .code32
    .text
    .globl _start
_start:
    mov $stack_top, %esp
    call serial_init
    mov $hello, %esi
    call puts
    mov %cr0, %edi
    call puthex
    mov $cs_text, %esi
    call puts
    mov %cs, %edi
    and $0xffff, %edi
    call puthex
    mov $newline, %esi
    call puts
    mov $0x10, %al
    out %al, $0xf4

#include "serial.inc"

hello:    .asciz "protected mode: cr0="
cs_text:  .asciz " cs="
newline:  .asciz "\n"
    .p2align 4
    .fill 256, 1, 0
stack_top:
