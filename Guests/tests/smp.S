// guest: elf64
// Starts the second vCPU the way a PC does: the local APIC software-enabled (SVR), a
// real-mode trampoline copied to 0x8000, then INIT and a STARTUP IPI (vector 0x08) through
// the ICR. The application processor increments the word at 0x7000 from real mode and halts
// with interrupts off; the bootstrap processor waits for it (boundedly), prints the count
// ("aps: 00000001") and exits with 0x10.
    .set ICR_LOW, 0xfee00300
    .set ICR_HIGH, 0xfee00310
    .set SVR, 0xfee000f0
    .set AP_COUNT, 0x7000
    .code64
    .text
    .globl _start
_start:
    lea stack_top(%rip), %rsp
    call serial_init
    lea trampoline(%rip), %rsi
    mov $0x8000, %edi
    mov $trampoline_end - trampoline, %ecx
    rep movsb
    movl $0, AP_COUNT
    mov $SVR, %ebx
    movl $0x1ff, (%rbx)
    mov $ICR_HIGH, %ebx
    movl $1 << 24, (%rbx)
    mov $ICR_LOW, %ebx
    movl $0x4500, (%rbx)
    mov $ICR_HIGH, %ebx
    movl $1 << 24, (%rbx)
    mov $ICR_LOW, %ebx
    movl $0x4608, (%rbx)
    mov $20000000, %ecx      // long enough for an AP thread of a loaded host to be scheduled
wait_ap:
    cmpl $0, AP_COUNT
    jne ap_seen
    dec %ecx
    jnz wait_ap
ap_seen:
    lea count_text(%rip), %rsi
    call puts
    mov AP_COUNT, %edi
    call puthex
    mov $10, %bl
    call putc
    mov $0x10, %al
    out %al, $0xf4
    .code16
trampoline:
    xor %ax, %ax
    mov %ax, %ds
    lock incw AP_COUNT
2:  cli
    hlt
    jmp 2b
trampoline_end:
    .code64
#include "serial.inc"
count_text: .asciz "aps: "
    .p2align 4
    .fill 512, 1, 0
stack_top:
