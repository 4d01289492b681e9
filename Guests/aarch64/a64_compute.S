// guest: a64
// A compute-bound AArch64 guest for Benchmarks/a64-vs-tcg.sh, the counterpart of
// Guests/bench/compute.S: the same integer mix over a 4 KiB buffer, ITERATIONS times (3 unless
// assembled with -DITERATIONS=N), then
//   compute: sum=XXXXXXXXXXXXXXXX ordered=XXXXXXXXXXXXXXXX hist=XXXXXXXXXXXXXXXX
// and a semihosting exit with 0. One iteration, W = 1024 words (32-bit arithmetic, modulo 2^32):
//   fill       x = x * 1103515245 + 12345; buf[j] = x ^ (x >> 16)
//   exchange   pairs (2p, 2p+1), unsigned: swap when out of order, else ordered += 1 and
//              sum = rol(sum ^ a, 5)
//   hash       buf[j] = mix(buf[j]) (a call); sum = sum * 33 + buf[j], where
//              mix(v) = v' ^ (v' >> 12), v' = (v ^ (v >> 15)) * 0x2c1b3c6d
//   histogram  hist[buf[j] & 0xff] += 1
// from x = 1, sum = 0, ordered = 0, hist all 0; at the end f = f * 31 + hist[k] for k in 0..<256.
// The exchange pass's arms have the same length, so the instruction count depends on
// ITERATIONS alone (the benchmark measures it with two traced runs).
#ifndef ITERATIONS
#define ITERATIONS 3
#endif
    .set WORDS, 1024
    .text
    .globl _start
_start:
    adr x0, stack_top
    mov sp, x0
    mov w19, #1                      // x (the generator)
    mov w20, #0                      // sum
    mov w21, #0                      // ordered
    ldr x22, =ITERATIONS
    adr x23, buffer
    adr x24, hist
1:  cbz x22, 5f
    sub x22, x22, #1
    // fill
    mov x1, x23
    mov x2, #WORDS
    ldr w3, =1103515245
2:  mul w19, w19, w3
    add w19, w19, #12345 & 0xfff
    add w19, w19, #12345 & 0xf000
    eor w4, w19, w19, lsr #16
    str w4, [x1], #4
    subs x2, x2, #1
    b.ne 2b
    // exchange
    mov x1, x23
    mov x2, #WORDS / 2
3:  ldp w4, w5, [x1]
    cmp w4, w5
    b.ls 4f
    stp w5, w4, [x1]
    b 6f
4:  add w21, w21, #1
    eor w20, w20, w4
    ror w20, w20, #27
6:  add x1, x1, #8
    subs x2, x2, #1
    b.ne 3b
    // hash
    mov x1, x23
    mov x2, #WORDS
7:  ldr w0, [x1]
    bl mix
    str w0, [x1], #4
    lsl w6, w20, #5
    add w20, w6, w20
    add w20, w20, w0
    subs x2, x2, #1
    b.ne 7b
    // histogram
    mov x1, x23
    mov x2, #WORDS
8:  ldrb w4, [x1], #4
    ldr w5, [x24, x4, lsl #2]
    add w5, w5, #1
    str w5, [x24, x4, lsl #2]
    subs x2, x2, #1
    b.ne 8b
    b 1b

5:  mov w25, #0                      // fold the histogram
    mov x2, #256
    mov x1, x24
    mov w6, #31
9:  ldr w4, [x1], #4
    madd w25, w25, w6, w4
    subs x2, x2, #1
    b.ne 9b

    adr x0, text_sum
    bl puts
    mov w0, w20
    bl put_hex
    adr x0, text_ordered
    bl puts
    mov w0, w21
    bl put_hex
    adr x0, text_hist
    bl puts
    mov w0, w25
    bl put_hex
    mov x0, #'\n'
    bl putc
    mov x0, #0
    b exit

// w0 = mix(w0); clobbers w6, w7.
mix:
    eor w0, w0, w0, lsr #15
    ldr w7, =0x2c1b3c6d
    mul w0, w0, w7
    eor w0, w0, w0, lsr #12
    ret

#include "a64.inc"

text_sum: .asciz "compute: sum="
text_ordered: .asciz " ordered="
text_hist: .asciz " hist="
    .ltorg
    .balign 16
buffer: .fill WORDS, 4, 0
hist: .fill 256, 4, 0
    .fill 4096, 1, 0
stack_top:
