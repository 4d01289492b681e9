// guest: a64
// Bad guest behaviour, for Hyperstep's error paths. Runs a Cryptographic Extension
// instruction (AESE V0.16B, V1.16B: not implemented, ID_AA64ISAR0_EL1.AES = 0, so it is
// UNDEFINED and Hyperstep names it once on stderr), whose UNDEFINED exception (EC 0) the
// handler counts and skips; then
// jumps to 0x10000000, where Hyperstep's virt has nothing (QEMU puts its PCIe window there), so
// the instruction fetch takes a synchronous external abort (EC 0x21, IFSC 0b010000). The
// handler prints
//   bad: undefined=0000000000000001 abort-esr=0000000086000010 abort-far=0000000010000000
// and exits with code 3 through semihosting.
    .text
    .globl _start
_start:
    adr x0, stack_top
    mov sp, x0
    adr x0, vectors
    msr vbar_el1, x0
    mov x20, #0
    .inst 0x4e284820                 // AESE V0.16B, V1.16B (C7.2.6)
    mov x1, #0x10000000
    br x1

sync_handler:
    mrs x21, esr_el1
    lsr x22, x21, #26
    cbnz x22, 1f
    add x20, x20, #1                 // UNDEFINED: skip the instruction
    mrs x22, elr_el1
    add x22, x22, #4
    msr elr_el1, x22
    eret
1:  adr x0, text_undefined
    bl puts
    mov x0, x20
    bl put_hex
    adr x0, text_esr
    bl puts
    mov x0, x21
    bl put_hex
    adr x0, text_far
    bl puts
    mrs x0, far_el1
    bl put_hex
    mov x0, #'\n'
    bl putc
    mov x0, #3
    b exit

#include "a64.inc"

    VECTORS sync_handler, ., ., .

text_undefined: .asciz "bad: undefined="
text_esr: .asciz " abort-esr="
text_far: .asciz " abort-far="
    .balign 16
    .fill 4096, 1, 0
stack_top:
