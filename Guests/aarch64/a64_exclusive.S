// guest: a64
// An exclusive increment loop, for the step contract (issue 12): ROUNDS times, LDXR / ADD /
// STXR / CBNZ retry, counting every STXR that fails in `failures`. Nothing else runs between
// a LDXR and its STXR, so none fails (ARM ARM B2.9: only a CLREX, an exception return, a
// store-exclusive or another observer's store clears the monitor), stepped or not: a host
// debugger's steps must not clear it either. Then the control case: an SVC between a LDXR and
// its STXR, whose handler returns with ERET, which clears the local monitor, so that STXR
// fails (status 1) whether or not anything steps it. Prints
//   exclusive: counter=0000000000000005 failures=0000000000000000 control=0000000000000001
// and exits with 0 through semihosting.
    .set ROUNDS, 5
    .text
    .globl _start
_start:
    adr x0, stack_top
    mov sp, x0
    adr x0, vectors
    msr vbar_el1, x0
    adr x1, counter
    mov x2, #ROUNDS
    mov x5, #0                       // failures
increment:
    ldxr x3, [x1]
    add x3, x3, #1
store:
    stxr w4, x3, [x1]
    cbz w4, 1f
    add x5, x5, #1
    b increment
1:  subs x2, x2, #1
    b.ne increment

    ldxr x3, [x1]                    // the control case
    svc #0
    stxr w6, x3, [x1]

    adr x0, text_counter
    bl puts
    ldr x0, counter
    bl put_hex
    adr x0, text_failures
    bl puts
    mov x0, x5
    bl put_hex
    adr x0, text_control
    bl puts
    mov x0, x6
    bl put_hex
    mov x0, #'\n'
    bl putc
    mov x0, #0
    b exit

svc_handler:
    eret

unexpected:
    adr x0, text_unexpected
    bl puts
    mov x0, #0x7f
    b exit

#include "a64.inc"

    VECTORS svc_handler, unexpected, unexpected, unexpected

text_counter: .asciz "exclusive: counter="
text_failures: .asciz " failures="
text_control: .asciz " control="
text_unexpected: .asciz "unexpected exception\n"
    .ltorg
    .balign 64
counter: .quad 0
    .balign 16
    .fill 4096, 1, 0
stack_top:
