// guest: a64
// The guest's own debugger (ARM ARM D2, self-hosted debug), at EL1:
//
// Part 1, software step of EL0 code (D2.12): MDSCR_EL1.SS with SPSR_EL1.SS = 1 and ERET to
// EL0. Each Software Step exception (EC 0x32, from EL0) is logged and the handler sets
// SPSR_EL1.SS again, so every EL0 instruction is stepped:
//   mov x1, #1      -> ESR 0xcb000022 (EC 0x32, IL, ISV 1, EX 0, IFSC 0b100010), ELR +4
//   ldxr x2, [x3]   -> ESR 0xcb000062 (EX 1: a load-exclusive was stepped),       ELR +8
//   add x2, x2, #1  -> ESR 0xcb000022, ELR +12
//   stxr w4, ...    -> ESR 0xcb000022, ELR +16; W4 = 1: the handler's ERET cleared the
//                      local monitor (B2.9.5), so the stepped STXR fails
//   svc #0          -> ESR 0x56000000 (EC 0x15), ELR +20: SVC completes before it traps, so
//                      SPSR_EL1.SS = 0; the handler returns with it
//   (return)        -> ESR 0xca000022 (ISV 0: active-pending entered by ERET), ELR +20
//   nop             -> ESR 0xcb000022, ELR +24
//   svc #1          -> ESR 0x56000001, ELR +28: ends part 1
// Part 2, at EL1 with MDSCR_EL1.KDE and MDE and PSTATE.D clear:
//   breakpoint 0 (DBGBCR0_EL1 = E, PMC EL1, BAS 0b1111) on `bp_target`:
//                   -> ESR 0xc6000022 (EC 0x31), ELR +0 from bp_target
//   watchpoint 0 (DBGWCR0_EL1 = E, PAC EL1, LSC store, BAS 0x0f) on `watched`: a load and a
//   byte store to watched+4 do not hit, `str w7, [x8]` to `watched` does:
//                   -> ESR 0xd6000062 (EC 0x35, WnR 1, DFSC 0b100010), ELR +0 from
//                      watch_store, then a line "d 00000000000000fa <FAR - watched>" = 0
// Each log line is "d <ESR> <offset>"; then "stxr-status <W4>" (1) and the exit code 0.
    .text
    .globl _start
_start:
    adr x0, stack_top
    mov sp, x0
    adr x0, vectors
    msr vbar_el1, x0
    adr x19, log
    msr oslar_el1, xzr               // the OS lock is set from reset (D2.5)
    mov x0, #1                       // MDSCR_EL1.SS
    msr mdscr_el1, x0
    adr x0, el0_stack
    msr sp_el0, x0
    adr x0, el0_code
    msr elr_el1, x0
    mov x0, #(1 << 21)               // SPSR_EL1: EL0t, SS = 1
    orr x0, x0, #0x3c0               // interrupts masked
    msr spsr_el1, x0
    adr x3, counter
    isb
    eret

el0_code:
    mov x1, #1
    ldxr x2, [x3]
    add x2, x2, #1
    stxr w4, x2, [x3]
    svc #0
    nop
    svc #1
1:  b 1b

// Exceptions from EL0: log ESR and ELR - el0_code.
lower_sync:
    mrs x20, esr_el1
    mrs x21, elr_el1
    adr x22, el0_code
    sub x21, x21, x22
    stp x20, x21, [x19], #16
    lsr x22, x20, #26
    cmp x22, #0x32                   // Software Step from EL0: step the next instruction too
    b.ne 2f
    mrs x22, spsr_el1
    orr x22, x22, #(1 << 21)
    msr spsr_el1, x22
    eret
2:  and x22, x20, #0xffff            // SVC: #0 returns with SPSR_EL1.SS as taken (0)
    cbz x22, 3f
    b part2                          // SVC #1: on to part 2, at EL1
3:  eret

part2:
    mov x23, x4                      // the STXR's status
    msr mdscr_el1, xzr               // software step off
    mov x0, #(1 << 13 | 1 << 15)     // KDE, MDE
    msr mdscr_el1, x0
    adr x0, bp_target
    msr dbgbvr0_el1, x0
    mov x0, #0x1e3                   // E, PMC 0b01 (EL1), BAS 0b1111, BT 0 (address match)
    msr dbgbcr0_el1, x0
    isb
    msr daifclr, #8                  // PSTATE.D = 0: debug exceptions from EL1 enabled
bp_target:
    nop
    adr x8, watched
    msr dbgwvr0_el1, x8
    mov x0, #0x1f3                   // E, PAC 0b01 (EL1), LSC 0b10 (stores), BAS 0x0f
    msr dbgwcr0_el1, x0
    isb
    ldr w5, [x8]                     // a load: LSC says stores only
    mov w6, #0x66
    strb w6, [x8, #4]                // byte 4: outside BAS
    mov w7, #0x77
watch_store:
    str w7, [x8]
    msr daifset, #8

    adr x20, log
4:  cmp x20, x19
    b.hs 5f
    mov x0, #'d'
    bl putc
    mov x0, #' '
    bl putc
    ldr x0, [x20], #8
    bl put_hex
    mov x0, #' '
    bl putc
    ldr x0, [x20], #8
    bl put_hex
    mov x0, #'\n'
    bl putc
    b 4b
5:  adr x0, text_status
    bl puts
    mov x0, x23
    bl put_hex
    mov x0, #'\n'
    bl putc
    mov x0, #0
    b exit

// Debug exceptions from EL1: log ESR and ELR minus the instruction's label (FAR minus
// `watched` for the watchpoint), disable breakpoint and watchpoint 0, return to retry.
same_sync:
    mrs x20, esr_el1
    mrs x21, elr_el1
    lsr x22, x20, #26
    cmp x22, #0x31
    adr x22, bp_target
    b.eq 6f
    adr x22, watch_store
6:  sub x21, x21, x22
    stp x20, x21, [x19], #16
    lsr x22, x20, #26
    cmp x22, #0x35
    b.ne 7f
    mrs x21, far_el1
    adr x22, watched
    sub x21, x21, x22
    mov x20, #0xfa                   // a "FAR" line: d 00000000000000fa <FAR - watched>
    stp x20, x21, [x19], #16
7:  msr dbgbcr0_el1, xzr
    msr dbgwcr0_el1, xzr
    isb
    eret

unexpected:
    adr x0, text_unexpected
    bl puts
    mov x0, #0x7f
    b exit

#include "a64.inc"

    VECTORS same_sync, unexpected, lower_sync, unexpected

text_status: .asciz "stxr-status "
text_unexpected: .asciz "unexpected exception\n"
    .ltorg
    .balign 8
watched: .quad 0
counter: .quad 0
log: .fill 32 * 16, 1, 0
    .balign 16
    .fill 1024, 1, 0
el0_stack:
    .fill 4096, 1, 0
stack_top:
