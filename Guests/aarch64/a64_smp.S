// guest: a64
// Two CPUs (run with --cpus 2, or QEMU's -smp 2): CPU 0 starts CPU 1 with PSCI CPU_ON (HVC,
// function 0xc4000003, target MPIDR 1, the entry `secondary`, context ID 0x55); both then
// add 1 to a shared counter ROUNDS times with an LDXR/STXR loop, so the global exclusive
// monitor (ARM ARM B2.9.3) must fail a STXR whose granule the other CPU stored into. CPU 1
// records its context ID and MPIDR_EL1, signals with STLR and turns itself off (CPU_OFF);
// CPU 0 waits for the signal and for AFFINITY_INFO to say CPU 1 is off, then prints
//   smp: context=0000000000000055 mpidr=0000000080000001 counter=0000000000000fa0
// (2 * ROUNDS = 4000 = 0xfa0) and powers off.
    .set ROUNDS, 2000
    .text
    .globl _start
_start:
    adr x0, stack_top
    mov sp, x0
    ldr x0, =0xc4000003              // CPU_ON
    mov x1, #1
    adr x2, secondary
    mov x3, #0x55
    hvc #0
    cbnz x0, failed
    bl count
    adr x1, done
1:  ldar x0, [x1]
    cbz x0, 1b
2:  ldr x0, =0xc4000004              // AFFINITY_INFO: 1 when CPU 1 is off
    mov x1, #1
    mov x2, #0
    hvc #0
    cmp x0, #1
    b.ne 2b

    adr x0, text_context
    bl puts
    ldr x0, context
    bl put_hex
    adr x0, text_mpidr
    bl puts
    ldr x0, mpidr
    bl put_hex
    adr x0, text_counter
    bl puts
    ldr x0, counter
    bl put_hex
    mov x0, #'\n'
    bl putc
    ldr x0, =0x84000008              // SYSTEM_OFF
    hvc #0
3:  b 3b

secondary:
    adr x1, context
    str x0, [x1]
    mrs x1, mpidr_el1
    adr x2, mpidr
    str x1, [x2]
    bl count
    mov x0, #1
    adr x1, done
    stlr x0, [x1]
    ldr x0, =0x84000002              // CPU_OFF
    hvc #0
4:  b 4b

// Adds 1 to `counter` ROUNDS times, atomically.
count:
    adr x1, counter
    ldr x2, =ROUNDS
5:  ldxr x3, [x1]
    add x3, x3, #1
    stxr w4, x3, [x1]
    cbnz w4, 5b
    subs x2, x2, #1
    b.ne 5b
    ret

failed:
    adr x0, text_failed
    bl puts
    mov x0, #1
    b exit

#include "a64.inc"

text_context: .asciz "smp: context="
text_mpidr: .asciz " mpidr="
text_counter: .asciz " counter="
text_failed: .asciz "CPU_ON failed\n"
    .ltorg
    .balign 8
context: .quad 0
mpidr: .quad 0
done: .quad 0
    .balign 64
counter: .quad 0
    .balign 16
    .fill 4096, 1, 0
stack_top:
