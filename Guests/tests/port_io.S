// guest: elf64
// Port I/O through the VMM's bus: the UART scratch register round-trips a byte,
// an unclaimed port reads as all-ones at every width and swallows writes, REP OUTSB
// reaches the UART byte by byte and REP INSB from an unclaimed port fills all-ones.
// Each check that fails exits with its own value; all passing exits with 0x10.
    .set SCRATCH, 0x3ff
    .set NOTHING, 0x2f0       // no device answers here
    .code64
    .text
    .globl _start
_start:
    lea stack_top(%rip), %rsp
    call serial_init

    mov $SCRATCH, %dx         // 1: scratch register keeps what was written
    mov $0x5a, %al
    out %al, %dx
    xor %eax, %eax
    in %dx, %al
    cmp $0x5a, %al
    mov $0x21, %bl
    jne fail

    mov $NOTHING, %dx         // 2: unclaimed port, each width
    out %al, %dx
    in %dx, %al
    cmp $0xff, %al
    mov $0x22, %bl
    jne fail
    in %dx, %ax
    cmp $0xffff, %ax
    mov $0x23, %bl
    jne fail
    in %dx, %eax
    cmp $0xffffffff, %eax
    mov $0x24, %bl
    jne fail

    lea message(%rip), %rsi   // 3: string output to the UART
    mov $message_end - message, %rcx
    mov $0x3f8, %dx
    rep outsb

    lea buffer(%rip), %rdi    // 4: string input from nothing
    mov $8, %rcx
    mov $NOTHING, %dx
    rep insb
    cmpq $-1, buffer(%rip)
    mov $0x25, %bl
    jne fail

    lea done(%rip), %rsi
    call puts
    mov $0x10, %al
    out %al, $0xf4
fail:
    mov %bl, %al
    out %al, $0xf4

#include "serial.inc"

message:     .ascii "rep outsb reached the UART\n"
message_end:
done:        .asciz "port I/O checks passed\n"
    .p2align 3
buffer:      .quad 0
    .p2align 4
    .fill 256, 1, 0
stack_top:
