// guest: elf32
// The 32-bit protected-mode counterpart of long_events: INT3 (#BP), INT 0x40, UD2 (#UD),
// DIV by zero (#DE), loading a selector beyond the GDT limit (#GP), and the guest's own TF
// single-stepping (#DB, five traps as in long_events). Each handler counts its entries;
// the counts are printed and must not change when a debugger steps the guest.
    .code32
    .text
    .globl _start
_start:
    mov $stack_top, %esp
    call serial_init
    mov $1, %edi
    mov $db_handler, %eax
    call set_gate
    mov $3, %edi
    mov $bp_handler, %eax
    call set_gate
    mov $0x40, %edi
    mov $int40_handler, %eax
    call set_gate
    mov $6, %edi
    mov $ud_handler, %eax
    call set_gate
    xor %edi, %edi
    mov $de_handler, %eax
    call set_gate
    mov $13, %edi
    mov $gp_handler, %eax
    call set_gate
    lidt idtr

events:
    int3
    int $0x40
    ud2
    xor %edx, %edx
    mov $7, %eax
    xor %ecx, %ecx
    div %ecx                  // #DE; the handler skips these 2 bytes
    mov $0x28, %eax
    mov %eax, %ds             // #GP: GDT entry 5 is beyond the limit; the handler skips 2 bytes
    pushf
    orl $0x100, (%esp)
    popf                      // TF on: a #DB after each of the next five instructions
    nop
    nop
    pushf
    andl $~0x100, (%esp)
    popf
    nop

report:
    mov $db_text, %esi
    mov db_count, %edi
    call print_count
    mov $bp_text, %esi
    mov bp_count, %edi
    call print_count
    mov $int40_text, %esi
    mov int40_count, %edi
    call print_count
    mov $ud_text, %esi
    mov ud_count, %edi
    call print_count
    mov $de_text, %esi
    mov de_count, %edi
    call print_count
    mov $gp_text, %esi
    mov gp_count, %edi
    call print_count
    mov $0x10, %al
    out %al, $0xf4

print_count:
    push %edi
    call puts
    pop %edi
    call puthex
    mov $10, %bl
    call putc
    ret

set_gate:                     // IDT[%edi] = 32-bit interrupt gate to %eax, CS 0x08
    lea idt(, %edi, 8), %edx
    mov %ax, (%edx)
    movw $0x08, 2(%edx)
    movw $0x8e00, 4(%edx)
    shr $16, %eax
    mov %ax, 6(%edx)
    ret

db_handler:
    incl db_count
    iret
bp_handler:
    incl bp_count
    iret
int40_handler:
    incl int40_count
    iret
ud_handler:
    incl ud_count
    addl $2, (%esp)
    iret
de_handler:
    incl de_count
    addl $2, (%esp)
    iret
gp_handler:
    incl gp_count
    addl $2, 4(%esp)          // past the error code to the saved EIP
    add $4, %esp
    iret

#include "serial.inc"

db_text:    .asciz "db="
bp_text:    .asciz "bp="
int40_text: .asciz "int40="
ud_text:    .asciz "ud="
de_text:    .asciz "de="
gp_text:    .asciz "gp="
    .p2align 3
idtr:   .word 256 * 8 - 1
        .long idt
    .p2align 2
db_count:    .long 0
bp_count:    .long 0
int40_count: .long 0
ud_count:    .long 0
de_count:    .long 0
gp_count:    .long 0
    .p2align 3
idt:    .fill 256 * 8, 1, 0
    .fill 1024, 1, 0
stack_top:
