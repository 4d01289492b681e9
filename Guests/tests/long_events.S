// guest: elf64
// Exercises every way control reaches a handler in long mode, and counts each one in
// the handler itself: INT3 (#BP), INT 0x40, UD2 (#UD), DIV by zero (#DE), a
// non-canonical load (#GP), a load above the 4 GiB identity map (#PF), and the guest's
// own TF single-stepping (#DB: the five instructions from the first NOP after POPF sets
// TF up to and including the POPF that clears it). It also records whether PUSHF, or the
// RFLAGS image in a fault's frame, ever showed TF outside the guest's own stepping. It prints the counters and exits with 0x10.
// The counts are architectural: they must be the same whether or not a debugger steps it.
    .code64
    .text
    .globl _start
_start:
    lea stack_top(%rip), %rsp
    call serial_init
    mov $1, %edi
    lea db_handler(%rip), %rax
    call set_gate
    mov $3, %edi
    lea bp_handler(%rip), %rax
    call set_gate
    mov $0x40, %edi
    lea int40_handler(%rip), %rax
    call set_gate
    mov $6, %edi
    lea ud_handler(%rip), %rax
    call set_gate
    xor %edi, %edi
    lea de_handler(%rip), %rax
    call set_gate
    mov $13, %edi
    lea gp_handler(%rip), %rax
    call set_gate
    mov $14, %edi
    lea pf_handler(%rip), %rax
    call set_gate
    lidt idtr(%rip)

events:
    int3
    int $0x40
    ud2
    xor %edx, %edx
    mov $7, %eax
    xor %ecx, %ecx
    div %ecx                  // #DE; the handler skips these 2 bytes
    movabs $0x8000000000000000, %rax
    mov (%rax), %rax          // #GP (non-canonical); the handler skips these 3 bytes
    movabs $0x100000000, %rax
    mov (%rax), %rax          // #PF (not mapped); the handler skips these 3 bytes
    pushf
    pop %rax
    and $0x100, %eax          // TF as PUSHF shows it: must be 0 here
    mov %eax, pushf_tf(%rip)
    pushf
    orq $0x100, (%rsp)
    popf                      // TF on: a #DB after each of the next five instructions
    nop
    nop
    pushf
    andq $~0x100, (%rsp)
    popf                      // TF off (the trap after this POPF still happens)
    nop

report:
    lea db_text(%rip), %rsi
    mov db_count(%rip), %edi
    call print_count
    lea bp_text(%rip), %rsi
    mov bp_count(%rip), %edi
    call print_count
    lea int40_text(%rip), %rsi
    mov int40_count(%rip), %edi
    call print_count
    lea ud_text(%rip), %rsi
    mov ud_count(%rip), %edi
    call print_count
    lea de_text(%rip), %rsi
    mov de_count(%rip), %edi
    call print_count
    lea gp_text(%rip), %rsi
    mov gp_count(%rip), %edi
    call print_count
    lea pf_text(%rip), %rsi
    mov pf_count(%rip), %edi
    call print_count
    lea tf_text(%rip), %rsi
    mov pushf_tf(%rip), %edi
    call print_count
    lea frame_text(%rip), %rsi
    mov frame_tf(%rip), %edi
    call print_count
    mov $0x10, %al
    out %al, $0xf4

print_count:                  // "<text>=<hex %edi>\n"
    push %rdi
    call puts
    pop %rdi
    call puthex
    mov $10, %bl
    call putc
    ret

set_gate:                     // IDT[%edi] = 64-bit interrupt gate to %rax
    lea idt(%rip), %rdx
    shl $4, %edi
    add %rdi, %rdx
    mov %ax, (%rdx)
    movw $0x18, 2(%rdx)
    movw $0x8e00, 4(%rdx)
    shr $16, %rax
    mov %ax, 6(%rdx)
    shr $16, %rax
    mov %eax, 8(%rdx)
    movl $0, 12(%rdx)
    ret

db_handler:
    incl db_count(%rip)
    iretq
bp_handler:
    incl bp_count(%rip)
    iretq
int40_handler:
    incl int40_count(%rip)
    iretq
ud_handler:
    incl ud_count(%rip)
    testl $0x100, 16(%rsp)    // TF in the frame's RFLAGS image: must be clear
    jz 1f
    incl frame_tf(%rip)
1:  addq $2, (%rsp)
    iretq
de_handler:
    incl de_count(%rip)
    addq $2, (%rsp)
    iretq
gp_handler:
    incl gp_count(%rip)
    testl $0x100, 24(%rsp)    // past the error code
    jz 1f
    incl frame_tf(%rip)
1:
    addq $3, 8(%rsp)          // past the error code to the saved RIP
    add $8, %rsp              // drop the error code
    iretq
pf_handler:
    incl pf_count(%rip)
    addq $3, 8(%rsp)
    add $8, %rsp
    iretq

#include "serial.inc"

db_text:    .asciz "db="
bp_text:    .asciz "bp="
int40_text: .asciz "int40="
ud_text:    .asciz "ud="
de_text:    .asciz "de="
gp_text:    .asciz "gp="
pf_text:    .asciz "pf="
tf_text:    .asciz "pushf_tf="
frame_text: .asciz "frame_tf="
    .p2align 3
idtr:   .word 256 * 16 - 1
        .quad idt
    .p2align 2
db_count:    .long 0
bp_count:    .long 0
int40_count: .long 0
ud_count:    .long 0
de_count:    .long 0
gp_count:    .long 0
pf_count:    .long 0
pushf_tf:    .long 0
frame_tf:    .long 0
    .p2align 4
idt:    .fill 256 * 16, 1, 0
    .fill 1024, 1, 0
stack_top:
