// guest: a64
// Self-checking integer instructions, loads, stores, exclusives and synchronous exceptions
// at EL1 with the MMU off. Every expected value below is worked out from the instruction's
// pseudocode in the ARM ARM (DDI 0487, C6.2) and written next to the check; the guest
// prints "FAIL n got X" for check n that differs, then "a64_checks: N checks, F failed"
// and exits through semihosting with F (0 when all pass). Boots on qemu-system-aarch64
// -M virt -cpu cortex-a57 -semihosting -kernel too.
    .text
    .globl _start

// CHECK reg, value: one check; x28 counts checks, x27 failures. NZCV is kept (in x26), so
// a flag-setting instruction can be checked and then its flags.
    .macro CHECK reg, value
    mrs x26, nzcv
    ldr x9, =\value
    add x28, x28, #1
    cmp \reg, x9
    b.eq .Lok\@
    mov x0, \reg
    bl fail
.Lok\@:
    msr nzcv, x26
    .endm

// CHECKFLAGS value: NZCV (bits 31-28) as the last flag-setting instruction left them.
    .macro CHECKFLAGS value
    mrs x26, nzcv
    CHECK x26, \value
    .endm

_start:
    adr x0, stack_top
    mov sp, x0
    adr x0, vectors
    msr vbar_el1, x0
    isb
    mov x28, #0
    mov x27, #0

    // Move wide (C6.2.191-193).
    movz x0, #0x1234, lsl #16
    CHECK x0, 0x12340000
    movk x0, #0xbeef
    CHECK x0, 0x1234beef
    movn w1, #0                      // NOT(0) in 32 bits, the upper half zeroed
    CHECK x1, 0xffffffff
    movn x1, #1, lsl #16
    CHECK x1, 0xfffffffffffeffff

    // Add/subtract and AddWithCarry's flags (J1.1.3).
    mov w0, #0x7fffffff
    adds w2, w0, #1                  // signed overflow: N=1 V=1, no carry out of bit 31
    CHECK x2, 0x80000000
    CHECKFLAGS 0x90000000
    mov x4, #5
    subs x3, x4, x4                  // x + NOT(x) + 1 = 2^64: Z=1, C=1
    CHECK x3, 0
    CHECKFLAGS 0x60000000
    mov w5, #0
    subs w3, w5, #1                  // 0 + 0xfffffffe + 1: no carry (a borrow), N=1
    CHECK x3, 0xffffffff
    CHECKFLAGS 0x80000000
    add x7, x4, x4, lsl #3           // 5 + 40
    CHECK x7, 45
    ldr x6, =0x123456789abcdef0
    mov x13, #-7
    add x7, x6, w13, sxtw #2         // x6 + (-28)
    CHECK x7, 0x123456789abcded4
    cmp x4, #5                       // C=1 for ADC/SBC
    adc x7, x4, x4
    CHECK x7, 11
    sbc x7, x4, x4                   // 5 + NOT(5) + C(1) = 0
    CHECK x7, 0
    cmp x4, #6                       // borrow: C=0
    sbc x7, x4, x4                   // 5 + NOT(5) + 0 = -1
    CHECK x7, 0xffffffffffffffff

    // Logical immediates (DecodeBitMasks) and shifted registers.
    and x5, x6, #0xff00ff00ff00ff00
    CHECK x5, 0x120056009a00de00
    orr w5, wzr, #0x0f0f0f0f
    CHECK x5, 0x0f0f0f0f
    eor x5, x6, #1
    CHECK x5, 0x123456789abcdef1
    ands x5, x6, #0x8000000000000000
    CHECK x5, 0
    CHECKFLAGS 0x40000000            // Z=1; ANDS clears C and V
    ldr x17, =0xfedcba9876543210
    bic x5, x17, x6                  // x17 AND NOT x6
    CHECK x5, 0xecc8a88064402000
    orn w5, wzr, w4, lsl #4          // NOT(5 << 4) in 32 bits
    CHECK x5, 0xffffffaf
    eon x5, x6, x17, ror #32         // x6 XOR NOT(ROR(x17, 32))
    CHECK x5, 0x9b9f9b979b9f9b97

    // Bitfield moves (BFM, SBFM, UBFM) and EXTR.
    ubfx x7, x6, #8, #16
    CHECK x7, 0xbcde
    sbfx x7, x6, #4, #8              // bits 11-4 = 0xef, sign bit set
    CHECK x7, 0xffffffffffffffef
    mov x8, #-1
    bfi x8, x6, #8, #12              // 0xef0 into bits 19-8
    CHECK x8, 0xfffffffffffef0ff
    lsl x7, x6, #4
    CHECK x7, 0x23456789abcdef00
    mov x29, #0x8000000000000000
    asr x7, x29, #63
    CHECK x7, 0xffffffffffffffff
    extr x7, x6, x17, #16            // (x6:x17) >> 16
    CHECK x7, 0xdef0fedcba987654
    ror w7, w6, #8                   // 0x9abcdef0 rotated right 8
    CHECK x7, 0xf09abcde
    sxtb x7, w6                      // 0xf0
    CHECK x7, 0xfffffffffffffff0
    uxth w7, w17                     // 0x3210
    CHECK x7, 0x3210

    // Conditional select and compare.
    mov x1, #0x161
    mov x2, #0x222
    cmp x4, #5
    csel x7, x1, x2, eq
    CHECK x7, 0x161
    csinc x7, x1, x2, ne
    CHECK x7, 0x223
    csinv x7, xzr, xzr, ne
    CHECK x7, 0xffffffffffffffff
    csneg x7, x1, x4, ne
    CHECK x7, 0xfffffffffffffffb
    cmp x4, #5
    ccmp x4, #3, #0b0010, eq         // condition holds: flags of 5 - 3
    CHECKFLAGS 0x20000000
    ccmp x4, #3, #0b1010, ne         // NE holds now (Z=0): the comparison's flags again
    CHECKFLAGS 0x20000000
    cmp x4, #5
    ccmp x4, #3, #0b1010, ne         // NE fails after an equal compare: NZCV = 1010
    CHECKFLAGS 0xa0000000
    cset x7, hi                      // NZCV = 1010: C=1 and Z=0, so HI holds
    CHECK x7, 1

    // Multiply and divide (no exception on division by zero: the result is 0).
    udiv x7, x6, xzr
    CHECK x7, 0
    mov x16, #-1
    sdiv x7, x29, x16                 // the most negative / -1 wraps to itself
    CHECK x7, 0x8000000000000000
    mov w14, #2
    sdiv w7, w13, w14                // -7 / 2 rounds toward zero
    CHECK x7, 0xfffffffd
    madd x7, x4, x4, x6
    CHECK x7, 0x123456789abcdf09
    msub x7, x4, x4, xzr
    CHECK x7, 0xffffffffffffffe7
    umulh x7, x16, x16               // (2^64-1)^2 >> 64
    CHECK x7, 0xfffffffffffffffe
    smulh x7, x16, x16               // (-1)(-1) >> 64
    CHECK x7, 0
    smull x7, w13, w14
    CHECK x7, 0xfffffffffffffff2
    umull x7, w13, w14               // 0xfffffff9 * 2
    CHECK x7, 0x1fffffff2

    // Bit and byte operations.
    mov w15, #1
    rbit w7, w15
    CHECK x7, 0x80000000
    rev x7, x6
    CHECK x7, 0xf0debc9a78563412
    rev16 w7, w6
    CHECK x7, 0xbc9af0de
    rev32 x7, x6
    CHECK x7, 0x78563412f0debc9a
    clz x7, x4
    CHECK x7, 61
    cls x7, x16
    CHECK x7, 63
    mov w15, #0x40000000
    cls w7, w15
    CHECK x7, 0

    // Loads and stores in every addressing mode (C1.3.3).
    adr x20, buffer
    stp x6, x17, [x20]
    ldp x7, x8, [x20]
    CHECK x7, 0x123456789abcdef0
    CHECK x8, 0xfedcba9876543210
    ldr x7, [x20, #8]
    CHECK x7, 0xfedcba9876543210
    ldrb w7, [x20, #7]               // little-endian: x6's top byte
    CHECK x7, 0x12
    ldrsb x7, [x20]
    CHECK x7, 0xfffffffffffffff0
    ldrsh w7, [x20, #2]              // bytes bc 9a: 0x9abc sign-extended to 32 bits only
    CHECK x7, 0xffff9abc
    ldrsw x7, [x20, #4]
    CHECK x7, 0x12345678
    mov x21, x20
    ldr x7, [x21, #8]!
    CHECK x7, 0xfedcba9876543210
    sub x0, x21, x20
    CHECK x0, 8
    ldr x7, [x21], #-8
    CHECK x7, 0xfedcba9876543210
    CHECK x21, buffer
    mov x22, #1
    ldr x7, [x20, x22, lsl #3]
    CHECK x7, 0xfedcba9876543210
    mov w23, #4
    ldr w7, [x20, w23, sxtw]
    CHECK x7, 0x12345678
    strh w6, [x20, #16]
    ldr x7, [x20, #16]
    CHECK x7, 0xdef0
    ldpsw x7, x8, [x20]
    CHECK x7, 0xffffffff9abcdef0
    CHECK x8, 0x12345678
    mov w8, #1
    stp w4, w8, [x20, #24]
    ldr x7, [x20, #24]
    CHECK x7, 0x0000000100000005
    ldr x7, literal
    CHECK x7, 0x0123456789abcdef
    sub sp, sp, #16
    str x6, [sp]
    ldr x7, [sp], #16
    CHECK x7, 0x123456789abcdef0

    // The local exclusive monitor (B2.9): a STXR after a LDXR of the same location succeeds
    // (status 0), one after CLREX fails (status 1) and stores nothing.
    ldxr x7, [x20]
    add x7, x7, #1
    stxr w8, x7, [x20]
    CHECK x8, 0
    ldr x7, [x20]
    CHECK x7, 0x123456789abcdef1
    ldxr x7, [x20]
    clrex
    stxr w8, xzr, [x20]
    CHECK x8, 1
    ldr x7, [x20]
    CHECK x7, 0x123456789abcdef1
    ldaxp x7, x8, [x20]
    stlxp w3, x8, x7, [x20]          // swap the halves
    CHECK x3, 0
    ldp x7, x8, [x20]
    CHECK x7, 0xfedcba9876543210
    CHECK x8, 0x123456789abcdef1
    stlr w4, [x20]
    ldar x7, [x20]
    CHECK x7, 0xfedcba9800000005

    // Synchronous exceptions taken to EL1 (D1.10): the handler records ESR_EL1, ELR_EL1 and
    // FAR_EL1 in x25, x24 and x23 and, except for SVC, steps ELR past the instruction.
svc_at:
    svc #0x42
    CHECK x25, 0x56000042            // EC 0x15, IL, imm16
    CHECK x24, svc_at + 4            // SVC's preferred return: the next instruction
brk_at:
    brk #7
    CHECK x25, 0xf2000007            // EC 0x3c, IL, imm16
    CHECK x24, brk_at                // BRK's: the BRK itself
udf_at:
    udf #0
    CHECK x25, 0x02000000            // EC 0 (unknown), IL
    CHECK x24, udf_at
    add x0, x20, #1
unaligned_at:
    ldr x7, [x0]                     // MMU off: Device memory, so unaligned is an alignment fault
    CHECK x25, 0x96000021            // EC 0x25, IL, WnR 0, DFSC 0b100001
    CHECK x24, unaligned_at
    CHECK x23, buffer + 1
    mrs x7, currentel
    CHECK x7, 4                      // EL1
    mrs x7, midr_el1
    CHECK x7, 0x411fd070             // Cortex-A57 r1p0

    // Report.
    adr x0, text_checks
    bl puts
    mov x0, x28
    bl put_hex
    adr x0, text_failed
    bl puts
    mov x0, x27
    bl put_hex
    mov x0, #'\n'
    bl putc
    mov x0, x27
    b exit

// Prints "FAIL n got X" for check x28 with value x0.
fail:
    mov x19, x30
    mov x18, x0
    add x27, x27, #1
    adr x0, text_fail
    bl puts
    mov x0, x28
    bl put_hex
    adr x0, text_got
    bl puts
    mov x0, x18
    bl put_hex
    mov x0, #'\n'
    bl putc
    mov x30, x19
    ret

sync_handler:
    mrs x25, esr_el1
    mrs x24, elr_el1
    mrs x23, far_el1
    lsr x0, x25, #26
    cmp x0, #0x15
    b.eq 1f
    add x0, x24, #4
    msr elr_el1, x0
1:  eret

unexpected:
    adr x0, text_unexpected
    bl puts
    mov x0, #0x7f
    b exit

#include "a64.inc"

    // The vector table (D1.10.2): 16 entries of 128 bytes; only "current EL with SP_ELx,
    // synchronous" (offset 0x200) is expected.
    VECTORS sync_handler, unexpected, unexpected, unexpected

    .balign 8
literal:
    .quad 0x0123456789abcdef
text_checks: .asciz "a64_checks: "
text_failed: .asciz " checks, failed "
text_fail: .asciz "FAIL "
text_got: .asciz " got "
text_unexpected: .asciz "unexpected exception\n"
    .ltorg
    .balign 16
buffer:
    .fill 64, 1, 0
    .fill 4096, 1, 0
stack_top:
