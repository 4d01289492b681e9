// guest: elf32
// 32-bit instructions KVM's instruction emulator fails on or gets wrong when it must run
// them (on hosts without VMX/SVM, such as PVM, it runs all 32-bit protected-mode code):
// DAA, AAM, ENTER with a nesting level, LDMXCSR/STMXCSR, BOUND (in range, and out of range
// raising #BR). Hyperstep completes what KVM cannot with its interpreter. Expected values,
// from the SDM's descriptions of each instruction:
// - DAA after ADD AL, BL with AL = 0x79, BL = 0x35 (SDM DAA, "Example"): AL = 0x14, CF = 1;
// - AAM after AL = 0x3f (63): AH = 6, AL = 3, so AX = 0x0603; ZF = SF = 0, PF = 1 (3 has
//   two 1 bits): flags & 0xc4 = 0x04;
// - ENTER 8, 2 with EBP = B and ESP = S (SDM ENTER, "Operation"): pushes B, then the
//   dword at B - 4 (the enclosing frame pointer), then the new frame pointer S - 4; EBP =
//   S - 4 and ESP = S - 20 (three pushes and 8 bytes): prints S - ESP = 0x14, S - EBP = 4
//   and the copied dword;
// - LDMXCSR with 0x7f80 (all exceptions masked, RC = 11 round toward zero) then STMXCSR
//   gives 0x7f80;
// - BOUND EAX, [bounds] with bounds {10, 20}: 15 passes, 21 raises #BR (vector 5, a fault:
//   the handler sees EIP at the BOUND and moves it past its 6 bytes): br = 1.
// Prints:
//   daa=00000014 cf=00000001 aam=00000603 flags=00000004 enter=00000014 00000004 cafef00d mxcsr=00007f80 br=00000001
    .code32
    .text
    .globl _start
_start:
    mov $stack_top, %esp
    call serial_init
    // #BR's gate: a 32-bit interrupt gate to br_handler through CS 0x08.
    mov $br_handler, %eax
    mov %ax, idt + 5 * 8
    movw $0x08, idt + 5 * 8 + 2
    movw $0x8e00, idt + 5 * 8 + 4
    shr $16, %eax
    mov %ax, idt + 5 * 8 + 6
    lidt idtr

    mov $0x79, %al
    mov $0x35, %bl
    add %bl, %al
    daa
    setc %cl
    movzbl %al, %eax
    mov %eax, daa_result
    movzbl %cl, %eax
    mov %eax, daa_carry

    mov $0x3f, %eax
    aam
    pushf
    pop %ecx
    movzwl %ax, %eax
    mov %eax, aam_result
    and $0xc4, %ecx
    mov %ecx, aam_flags

    mov %esp, %esi            // S
    lea frame_link + 4, %ebp  // B: the dword at B - 4 is frame_link
    enter $8, $2
    mov %esi, %eax
    sub %esp, %eax
    mov %eax, enter_esp
    mov %esi, %eax
    sub %ebp, %eax
    mov %eax, enter_ebp
    mov -4(%ebp), %eax        // the copied enclosing frame pointer, just below the saved EBP
    mov %eax, enter_copied
    leave

    mov %cr4, %eax
    or $0x200, %eax           // CR4.OSFXSR: SSE state instructions allowed
    mov %eax, %cr4
    ldmxcsr mxcsr_in
    stmxcsr mxcsr_out

    mov $15, %eax
    bound %eax, bounds        // in range: nothing happens
    mov $21, %eax
    bound %eax, bounds        // above the upper bound: #BR

    mov $daa_text, %esi
    mov daa_result, %edi
    call print_value
    mov $cf_text, %esi
    mov daa_carry, %edi
    call print_value
    mov $aam_text, %esi
    mov aam_result, %edi
    call print_value
    mov $flags_text, %esi
    mov aam_flags, %edi
    call print_value
    mov $enter_text, %esi
    mov enter_esp, %edi
    call print_value
    mov $space_text, %esi
    mov enter_ebp, %edi
    call print_value
    mov $space_text, %esi
    mov enter_copied, %edi
    call print_value
    mov $mxcsr_text, %esi
    mov mxcsr_out, %edi
    call print_value
    mov $br_text, %esi
    mov br_count, %edi
    call print_value
    mov $10, %bl
    call putc
    mov $0x10, %al
    out %al, $0xf4

print_value:
    push %edi
    call puts
    pop %edi
    call puthex
    ret

br_handler:
    incl br_count
    addl $6, (%esp)           // past BOUND EAX, m32 (62 05 disp32: 6 bytes)
    iret

#include "serial.inc"

daa_text:   .asciz "daa="
cf_text:    .asciz " cf="
aam_text:   .asciz " aam="
flags_text: .asciz " flags="
enter_text: .asciz " enter="
space_text: .asciz " "
mxcsr_text: .asciz " mxcsr="
br_text:    .asciz " br="
    .p2align 3
idtr:   .word 32 * 8 - 1
        .long idt
    .p2align 2
frame_link:   .long 0xcafef00d
bounds:       .long 10, 20
mxcsr_in:     .long 0x7f80
mxcsr_out:    .long 0
daa_result:   .long 0
daa_carry:    .long 0
aam_result:   .long 0
aam_flags:    .long 0
enter_esp:    .long 0
enter_ebp:    .long 0
enter_copied: .long 0
br_count:     .long 0
    .p2align 3
idt:    .fill 32 * 8, 1, 0
    .fill 1024, 1, 0
stack_top:
