// guest: a64
// The EL1 physical timer through the GICv2 (QEMU virt: distributor 0x08000000, CPU interface
// 0x08010000, timer PPI 14 = INTID 30), taken as IRQs while the CPU sleeps in WFI. The
// handler acknowledges through GICC_IAR, counts INTID 30, re-arms the timer PERIOD ticks
// ahead with CNTP_TVAL_EL0 and ends the interrupt through GICC_EOIR. After three ticks the
// guest prints
//   timer: ticks=0000000000000003 last=000000000000001e elapsed-ok=0000000000000001
// (elapsed-ok: CNTPCT_EL0 advanced by at least 3 * PERIOD, ARM ARM D11.2.4) and powers off
// through PSCI SYSTEM_OFF (HVC, function 0x84000008), Hyperstep's exit status 0.
    .set GICD, 0x08000000
    .set GICC, 0x08010000
    .set PERIOD, 20000
    .text
    .globl _start
_start:
    adr x0, stack_top
    mov sp, x0
    adr x0, vectors
    msr vbar_el1, x0
    isb
    mov x20, #0                      // ticks
    mov x21, #0                      // the last INTID acknowledged

    mov x0, #GICD
    mov w1, #0x80
    strb w1, [x0, #0x400 + 30]       // GICD_IPRIORITYR: INTID 30 at priority 0x80
    mov w1, #(1 << 30)
    str w1, [x0, #0x100]             // GICD_ISENABLER0: enable INTID 30
    mov w1, #1
    str w1, [x0]                     // GICD_CTLR: distributor on
    mov x0, #GICC
    mov w1, #0xf0
    str w1, [x0, #0x04]              // GICC_PMR: let priorities below 0xf0 through
    mov w1, #1
    str w1, [x0]                     // GICC_CTLR: CPU interface on

    mrs x22, cntpct_el0              // the start
    mov x0, #PERIOD
    msr cntp_tval_el0, x0
    mov x0, #1
    msr cntp_ctl_el0, x0             // ENABLE, not masked
    msr daifclr, #2                  // IRQs on
1:  wfi
    cmp x20, #3
    b.lo 1b
    msr daifset, #2
    msr cntp_ctl_el0, xzr

    mrs x23, cntpct_el0
    sub x23, x23, x22
    ldr x0, =3 * PERIOD
    cmp x23, x0
    cset x23, hs

    adr x0, text_ticks
    bl puts
    mov x0, x20
    bl put_hex
    adr x0, text_last
    bl puts
    mov x0, x21
    bl put_hex
    adr x0, text_elapsed
    bl puts
    mov x0, x23
    bl put_hex
    mov x0, #'\n'
    bl putc
    ldr x0, =0x84000008              // PSCI SYSTEM_OFF
    hvc #0
2:  b 2b

irq_handler:
    mov x0, #GICC
    ldr w21, [x0, #0x0c]             // GICC_IAR
    and w21, w21, #0x3ff
    cmp w21, #30
    b.ne 3f
    add x20, x20, #1
    mov x1, #PERIOD
    msr cntp_tval_el0, x1
3:  str w21, [x0, #0x10]             // GICC_EOIR
    eret

unexpected:
    adr x0, text_unexpected
    bl puts
    mov x0, #0x7f
    b exit

#include "a64.inc"

    VECTORS unexpected, irq_handler, unexpected, unexpected

text_ticks: .asciz "timer: ticks="
text_last: .asciz " last="
text_elapsed: .asciz " elapsed-ok="
text_unexpected: .asciz "unexpected exception\n"
    .ltorg
    .balign 16
    .fill 4096, 1, 0
stack_top:
