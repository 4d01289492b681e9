// guest: flat-real 0x7c00
// A boot-sector-style raw binary entered in 16-bit real mode at 0000:7c00.
// Prints CR0's low word (PE must be clear) and CS, then exits with PASS (0x10).
    .code16
    .text
    .globl _start
_start:
    xor %ax, %ax
    mov %ax, %ds
    call serial_init
    mov $hello, %si
    call puts
    smsw %di                  // machine status word = CR0[15:0]
    movzwl %di, %edi
    call puthex
    mov $cs_text, %si
    call puts
    mov %cs, %di
    movzwl %di, %edi
    call puthex
    mov $newline, %si
    call puts
    smsw %ax
    test $1, %al              // PE set would mean we were not in real mode
    jnz fail
    mov $0x10, %al
    out %al, $0xf4
fail:
    mov $0x11, %al
    out %al, $0xf4

#include "serial.inc"

hello:    .asciz "real mode: msw="
cs_text:  .asciz " cs="
newline:  .asciz "\n"
