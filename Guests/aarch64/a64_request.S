// guest: a64
// Hyperstep's guest request (README, "Guest requests"): `hvc #0x4853` ("HS") with the value
// in W0. The guest asks to start tracing (1), stores 4, 3, 2, 1 into `buffer` in a loop of
// four iterations, asks to stop (0), prints
//   request: done
// and exits through semihosting with 0. QEMU virt's firmware takes every HVC as a PSCI call
// and answers this unknown function NOT_SUPPORTED in X0, which the guest ignores; on a machine
// where the HVC is UNDEFINED (no EL2 and no firmware: EC 0, ELR the HVC) the handler steps
// over it. The output is the same everywhere.
    .set REQUEST, 0x4853
    .text
    .globl _start
_start:
    adr x0, stack_top
    mov sp, x0
    adr x0, vectors
    msr vbar_el1, x0
    isb
    mov w0, #1
start_request:
    hvc #REQUEST
    adr x1, buffer
    mov x2, #4
1:  str x2, [x1], #8
    subs x2, x2, #1
    b.ne 1b
    mov w0, #0
stop_request:
    hvc #REQUEST
    adr x0, text_done
    bl puts
    mov x0, #0
    b exit

sync_handler:
    mrs x9, elr_el1
    add x9, x9, #4
    msr elr_el1, x9
    eret

#include "a64.inc"

    VECTORS sync_handler, ., ., .
text_done: .asciz "request: done\n"
    .balign 8
buffer: .fill 4, 8, 0
    .balign 16
    .fill 1024, 1, 0
stack_top:
