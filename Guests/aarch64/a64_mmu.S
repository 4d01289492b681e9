// guest: a64
// The stage 1 MMU (ARM ARM D5) with the 4 KiB granule and 39-bit VAs (TCR_EL1.T0SZ = 25, so
// the walk starts at level 1). Level 1 maps 0-1 GiB as Device-nGnRnE (the UART) and 1-2 GiB
// as Normal memory with 1 GiB blocks, identity; VA 0x80000000 goes through a level 2 and a
// level 3 table to four pages of `scratch` (PA) that test the faults:
//   page 0  read/write                    a store and an unaligned load (Normal: allowed)
//   page 1  read-only (AP 0b10)           a store: permission fault, level 3: ESR 0x9600004f
//   page 2  invalid                       a load: translation fault, level 3: ESR 0x96000007
//   page 3  AF = 0                        a load: access flag fault, level 3: ESR 0x9600000b
//   VA 0xc0000000 (level 1 entry 3 invalid): translation fault, level 1:    ESR 0x96000005
//   page 0 executed (PXN set):            instruction abort, permission, level 3: 0x8600000f
// (EC 0x25 data abort or 0x21 instruction abort from EL1, IL, WnR for the store, the fault
// status codes of D17.2.37.) The handler logs ESR and FAR and skips the access (for the
// instruction abort it returns to the caller). Also AT S1E1R on page 0 and page 2: PAR_EL1
// = the PA (F = 0), then F = 1 with FST 0b000111. Prints one line per event and exits 0.
    .set VA, 0x80000000
    .text
    .globl _start
_start:
    adr x0, stack_top
    mov sp, x0
    adr x0, vectors
    msr vbar_el1, x0
    adr x19, log

    // Level 1: entry 0 Device block, entry 1 Normal block, entry 2 table, entry 3 invalid.
    adr x0, level1
    ldr x1, =0x00000000 | 1 << 10 | 1 << 2 | 1     // AF, AttrIndx 1 (Device), block
    str x1, [x0]
    ldr x1, =0x40000000 | 1 << 10 | 0 << 2 | 1     // AF, AttrIndx 0 (Normal), block
    str x1, [x0, #8]
    adr x1, level2
    orr x1, x1, #3                                 // table
    str x1, [x0, #16]
    str xzr, [x0, #24]
    adr x0, level2
    adr x1, level3
    orr x1, x1, #3
    str x1, [x0]
    adr x0, level3
    adr x2, scratch
    ldr x3, =1 << 53 | 1 << 10 | 3                 // PXN, AF, page (AP 0b00: EL1 read/write)
    orr x1, x2, x3
    str x1, [x0]                                   // page 0
    add x1, x1, #0x1000
    orr x1, x1, #(2 << 6)                          // AP 0b10: read-only
    str x1, [x0, #8]                               // page 1
    str xzr, [x0, #16]                             // page 2: invalid
    add x1, x2, #0x3000
    orr x1, x1, #3                                 // AF clear
    str x1, [x0, #24]                              // page 3

    ldr x0, =0x00ff                                // MAIR: Attr0 Normal WB, Attr1 Device-nGnRnE
    msr mair_el1, x0
    ldr x0, =25 | 1 << 23 | 5 << 32                // T0SZ 25, EPD1, IPS 48 bits, TG0 4 KiB
    msr tcr_el1, x0
    adr x0, level1
    msr ttbr0_el1, x0
    isb
    mrs x0, sctlr_el1
    orr x0, x0, #1                                 // M
    msr sctlr_el1, x0
    isb

    mov x20, #VA
    ldr x1, =0x1122334455667788
    str x1, [x20]
    ldr x2, [x20, #1]                              // unaligned, Normal memory: no fault
    mov x0, #'u'
    bl log_value_x2
    mov x1, #1
    str x1, [x20, #0x1008]                         // read-only page
    ldr x1, [x20, #0x2010]                         // invalid page
    ldr x1, [x20, #0x3018]                         // access flag clear
    mov x1, #0xc0000000
    ldr x2, [x1]                                   // level 1 entry invalid
    at s1e1r, x20
    mrs x2, par_el1
    mov x0, #'p'
    bl log_value_x2
    add x1, x20, #0x2000
    at s1e1r, x1
    mrs x2, par_el1
    mov x0, #'p'
    bl log_value_x2
    ldr x1, =0xd65f03c0                            // RET, into page 0, which has PXN
    str w1, [x20, #0x100]
    add x1, x20, #0x100
    blr x1

    adr x20, log
1:  cmp x20, x19
    b.hs 2f
    ldr x0, [x20], #8
    bl putc
    mov x0, #' '
    bl putc
    ldr x0, [x20], #8
    bl put_hex
    mov x0, #' '
    bl putc
    ldr x0, [x20], #8
    adr x1, scratch
    sub x0, x0, x1                                 // FAR and PAR as offsets from scratch
    bl put_hex
    mov x0, #'\n'
    bl putc
    b 1b
2:  mov x0, #0
    b exit

// Logs (x0, x2, 0 + scratch): a value line.
log_value_x2:
    adr x1, scratch
    stp x0, x2, [x19], #16
    str x1, [x19], #8
    ret

sync_handler:
    mrs x21, esr_el1
    mrs x22, far_el1
    mov x23, #'f'
    stp x23, x21, [x19], #16
    lsr x23, x21, #26
    cmp x23, #0x21
    b.eq 3f
    // A data abort: FAR as an offset from scratch when it is in the VA window, else raw.
    mov x23, #VA
    sub x24, x22, x23
    adr x23, scratch
    cmp x24, #0x4000
    add x24, x24, x23
    csel x22, x24, x22, lo
    str x22, [x19], #8
    mrs x23, elr_el1
    add x23, x23, #4
    msr elr_el1, x23
    eret
3:  adr x23, scratch                               // instruction abort: FAR is the page-0 RET
    mov x24, #VA
    sub x22, x22, x24
    add x22, x22, x23
    str x22, [x19], #8
    msr elr_el1, x30                               // back to after the BLR
    eret

#include "a64.inc"

    VECTORS sync_handler, ., ., .
    .ltorg
    .balign 4096
level1: .fill 512, 8, 0
level2: .fill 512, 8, 0
level3: .fill 512, 8, 0
scratch: .fill 4 * 4096, 1, 0
log: .fill 64 * 24, 1, 0
    .balign 16
    .fill 4096, 1, 0
stack_top:
