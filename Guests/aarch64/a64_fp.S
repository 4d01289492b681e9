// guest: a64
// FP and Advanced SIMD (issue 12): first, with CPACR_EL1.FPEN at its reset value 0, an FMOV
// and an MRS of FPCR each take the FP access trap (EC 0x07, IL, CV 1, COND 0xE: ESR
// 0x1fe00000, ARM ARM D17.2.37), which the handler counts and skips. Then FPEN = 0b11 and:
//   dot-d     the dot product of eight doubles by FMADD, left to right (one rounding each)
//   dot-s     the same shape in singles with FMUL and FMLA on 4S vectors, reduced with EXT
//             and FADD
//   sqrt2     FSQRT D of 2.0; third-rn and third-rz: FDIV S 1/3 with FPCR.RMode RN and RZ;
//   half      FCVT H of 1.5
//   cvt       FCVTZS(-2.5), FCVTNS(2.5), FCVTAS(2.5), FCVTMS(-2.5), SCVTF(2^53 + 1),
//             FCVTZU(-1.0) (invalid: 0)
//   fpsr-div  FPSR after 1/0 and 1/3 in doubles: DZC and IXC (0x12); fpsr-cvt after the
//             conversions: IXC and IOC (0x11)
//   simd      CNT + ADDV (the 128-bit popcount), UMAXV, TBL reversing the bytes (low, high)
// Expected values worked out with Python's fractions (exact products and sums, each rounded
// once to nearest-even): the output is
//   fp: traps=0000000000000002 esr=000000001fe00000 esr=000000001fe00000
//   dot-d=c00fae147ae147b1 dot-s=0000000040cd5556
//   sqrt2=3ff6a09e667f3bcd third-rn=000000003eaaaaab third-rz=000000003eaaaaaa half=0000000000003e00
//   cvt=fffffffffffffffe 0000000000000002 0000000000000003 fffffffffffffffd 4340000000000000 0000000000000000
//   fpsr-div=0000000000000012 fpsr-cvt=0000000000000011
//   simd=0000000000000040 00000000000000fe 1032547698badcfe efcdab8967452301
// and it exits with 0 through semihosting.
    .text
    .globl _start
_start:
    adr x0, stack_top
    mov sp, x0
    adr x0, vectors
    msr vbar_el1, x0
    mov x20, #0                      // traps taken
    fmov d0, #1.0                    // FPEN = 0: trapped
    mrs x1, fpcr                     // trapped too
    mov x0, #(3 << 20)
    msr cpacr_el1, x0                // FPEN = 0b11: EL0 and EL1 may use FP
    isb
    adr x0, text_traps
    bl puts
    mov x0, x20
    bl put_hex
    adr x0, text_esr
    bl puts
    mov x0, x21
    bl put_hex
    adr x0, text_esr
    bl puts
    mov x0, x22
    bl put_hex
    bl newline

    // Double dot product: d0 = a[i] * b[i] + d0.
    adr x1, doubles_a
    adr x2, doubles_b
    movi d0, #0
    mov x3, #8
1:  ldr d1, [x1], #8
    ldr d2, [x2], #8
    fmadd d0, d1, d2, d0
    subs x3, x3, #1
    b.ne 1b
dot_done:                            // (the GDB test reads D0 and FPSR here)
    adr x0, text_dot_d
    bl puts
    fmov x0, d0
    bl put_hex

    // Single dot product on vectors.
    adr x1, singles_a
    adr x2, singles_b
    ld1 {v0.4s, v1.4s}, [x1]
    ld1 {v2.4s, v3.4s}, [x2]
    fmul v4.4s, v0.4s, v2.4s
    fmla v4.4s, v1.4s, v3.4s
    ext v5.16b, v4.16b, v4.16b, #8
    fadd v4.2s, v4.2s, v5.2s
    ext v5.8b, v4.8b, v4.8b, #4
    fadd s4, s4, s5
    adr x0, text_dot_s
    bl puts
    fmov w0, s4
    bl put_hex
    bl newline

    fmov d0, #2.0
    fsqrt d0, d0
    adr x0, text_sqrt2
    bl puts
    fmov x0, d0
    bl put_hex
    fmov s1, #1.0
    fmov s2, #3.0
    fdiv s3, s1, s2
    adr x0, text_third_rn
    bl puts
    fmov w0, s3
    bl put_hex
    mov x0, #(3 << 22)               // RMode = RZ
    msr fpcr, x0
    fdiv s3, s1, s2
    msr fpcr, xzr
    adr x0, text_third_rz
    bl puts
    fmov w0, s3
    bl put_hex
    fmov s0, #1.5
    fcvt h0, s0
    adr x0, text_half
    bl puts
    fmov w0, s0                      // FCVT zeroed the rest of V0: bits 15-0 are the half
    bl put_hex
    bl newline

    // Division flags, then conversion flags.
    msr fpsr, xzr
    fmov d1, #1.0
    movi d2, #0
    fdiv d3, d1, d2                  // divide by zero: +inf, DZC
    fmov d2, #3.0
    fdiv d3, d1, d2                  // inexact: IXC
    mrs x23, fpsr
    msr fpsr, xzr
    adr x0, text_cvt
    bl puts
    fmov d0, #-2.5
    fcvtzs x0, d0
    bl put_hex_space
    fmov d0, #2.5
    fcvtns x0, d0
    bl put_hex_space
    fcvtas x0, d0
    bl put_hex_space
    fmov d0, #-2.5
    fcvtms x0, d0
    bl put_hex_space
    mov x0, #1
    movk x0, #0x20, lsl #48          // 2^53 + 1
    scvtf d0, x0
    fmov x0, d0
    bl put_hex_space
    fmov d0, #-1.0
    fcvtzu x0, d0
    bl put_hex
    mrs x24, fpsr
    bl newline
    adr x0, text_fpsr_div
    bl puts
    mov x0, x23
    bl put_hex
    adr x0, text_fpsr_cvt
    bl puts
    mov x0, x24
    bl put_hex
    bl newline

    // Integer SIMD.
    adr x1, bytes
    ldr q0, [x1]
    ldr q1, [x1, #16]
    cnt v2.16b, v0.16b
    addv b2, v2.16b
    adr x0, text_simd
    bl puts
    umov w0, v2.b[0]
    bl put_hex_space
    umaxv b3, v0.16b
    fmov w0, s3
    bl put_hex_space
    tbl v4.16b, {v0.16b}, v1.16b
    mov x0, v4.d[0]
    bl put_hex_space
    mov x0, v4.d[1]
    bl put_hex
    bl newline
    mov x0, #0
    b exit

put_hex_space:
    mov x13, x30
    bl put_hex
    mov x0, #' '
    bl putc
    mov x30, x13
    ret

newline:
    mov x13, x30
    mov x0, #'\n'
    bl putc
    mov x30, x13
    ret

// FP access traps: note the ESR of the first two, skip the instruction. Anything else ends
// the run with exit code 1.
sync_handler:
    mrs x0, esr_el1
    lsr x1, x0, #26
    cmp x1, #0x07
    b.ne 1f
    add x20, x20, #1
    cmp x20, #1
    csel x21, x0, x21, eq
    csel x22, x0, x22, ne
    mrs x1, elr_el1
    add x1, x1, #4
    msr elr_el1, x1
    eret
1:  adr x0, text_unexpected
    bl puts
    mrs x0, esr_el1
    bl put_hex
    bl newline
    mov x0, #1
    b exit

#include "a64.inc"

    VECTORS sync_handler, ., ., .

    .balign 16
doubles_a:
    .quad 0x3fb999999999999a, 0x3fc999999999999a, 0x3fd3333333333333, 0x3fd999999999999a
    .quad 0x3fe0000000000000, 0x3fe3333333333333, 0x3fe6666666666666, 0x3fe999999999999a
doubles_b:
    .quad 0x3ff199999999999a, 0xc00199999999999a, 0x400a666666666666, 0xc01199999999999a
    .quad 0x4016000000000000, 0xc01a666666666666, 0x401ecccccccccccd, 0xc02199999999999a
singles_a:                           // 0.5 1.25 -3.75 2.0 0.1 0.2 0.3 0.4
    .word 0x3f000000, 0x3fa00000, 0xc0700000, 0x40000000, 0x3dcccccd, 0x3e4ccccd, 0x3e99999a, 0x3ecccccd
singles_b:                           // 4.0 -0.5 1.5 3.25 10.0 1/3 7.0 2.5
    .word 0x40800000, 0xbf000000, 0x3fc00000, 0x40500000, 0x41200000, 0x3eaaaaab, 0x40e00000, 0x40200000
bytes:
    .quad 0x0123456789abcdef, 0xfedcba9876543210
    .byte 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0
text_traps: .asciz "fp: traps="
text_esr: .asciz " esr="
text_dot_d: .asciz "dot-d="
text_dot_s: .asciz " dot-s="
text_sqrt2: .asciz "sqrt2="
text_third_rn: .asciz " third-rn="
text_third_rz: .asciz " third-rz="
text_half: .asciz " half="
text_cvt: .asciz "cvt="
text_fpsr_div: .asciz "fpsr-div="
text_fpsr_cvt: .asciz " fpsr-cvt="
text_simd: .asciz "simd="
text_unexpected: .asciz "unexpected exception, ESR="
    .balign 16
    .fill 4096, 1, 0
stack_top:
