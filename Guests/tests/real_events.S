// guest: flat-real 0x7c00
// The real-mode counterpart of long_events: handlers installed in the IVT count INT3
// (#BP), INT 0x40, UD2 (#UD), DIV by zero (#DE) and the guest's own TF single-steps (#DB,
// five traps as in long_events). The counts are printed and must not change when a
// debugger steps the guest.
    .code16
    .text
    .globl _start
_start:
    xor %ax, %ax
    mov %ax, %ds
    mov %ax, %ss
    mov $0x7c00, %sp
    call serial_init
    movw $db_handler, 1 * 4
    movw $0, 1 * 4 + 2
    movw $bp_handler, 3 * 4
    movw $0, 3 * 4 + 2
    movw $int40_handler, 0x40 * 4
    movw $0, 0x40 * 4 + 2
    movw $ud_handler, 6 * 4
    movw $0, 6 * 4 + 2
    movw $de_handler, 0 * 4
    movw $0, 0 * 4 + 2

events:
    int3
    int $0x40
    ud2
    xor %dx, %dx
    mov $7, %ax
    xor %cx, %cx
    div %cx                   // #DE; the handler skips these 2 bytes
    pushf
    mov %sp, %bp
    orw $0x100, (%bp)
    popf                      // TF on: a #DB after each of the next five instructions
    nop
    nop
    pushf                     // BP still points at this slot: SP is back where it was
    andw $~0x100, (%bp)
    popf
    nop

report:
    mov $db_text, %si
    mov db_count, %di
    call print_count
    mov $bp_text, %si
    mov bp_count, %di
    call print_count
    mov $int40_text, %si
    mov int40_count, %di
    call print_count
    mov $ud_text, %si
    mov ud_count, %di
    call print_count
    mov $de_text, %si
    mov de_count, %di
    call print_count
    mov $0x10, %al
    out %al, $0xf4

print_count:                  // "<text>=<hex %di>\n"
    push %di
    call puts
    pop %di
    movzwl %di, %edi
    call puthex
    mov $10, %bl
    call putc
    ret

db_handler:
    incw db_count
    iret
bp_handler:
    incw bp_count
    iret
int40_handler:
    incw int40_count
    iret
ud_handler:
    incw ud_count
    push %bp
    mov %sp, %bp
    addw $2, 2(%bp)           // past UD2 (the saved IP is above the pushed BP)
    pop %bp
    iret
de_handler:
    incw de_count
    push %bp
    mov %sp, %bp
    addw $2, 2(%bp)           // past DIV
    pop %bp
    iret

#include "serial.inc"

db_text:    .asciz "db="
bp_text:    .asciz "bp="
int40_text: .asciz "int40="
ud_text:    .asciz "ud="
de_text:    .asciz "de="
    .p2align 1
db_count:    .word 0
bp_count:    .word 0
int40_count: .word 0
ud_count:    .word 0
de_count:    .word 0
