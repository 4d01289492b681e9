// guest: elf64
// A periodic timer: the PIC remapped to vectors 0x20-0x2f with only IRQ 0 unmasked, and
// the PIT's channel 0 in rate-generator mode at about 1 kHz. With interrupts on it first
// spins (`busy`, 20000 iterations), so a debugger can see whether ticks reach it while it
// steps, then sleeps in HLT until its handler has counted three ticks in all. Needs the
// in-kernel interrupt controller (`--irqchip`). Exits with 0x10.
    .code64
    .text
    .globl _start
_start:
    lea stack_top(%rip), %rsp
    lea idt(%rip), %rdx
    lea timer_handler(%rip), %rax
    mov %ax, 0x200(%rdx)      // gate 0x20
    movw $0x18, 0x202(%rdx)
    movw $0x8e00, 0x204(%rdx)
    shr $16, %rax
    mov %ax, 0x206(%rdx)
    shr $16, %rax
    mov %eax, 0x208(%rdx)
    lidt idtr(%rip)

    mov $0xfee00030, %ebx     // the local APIC's version register
lapic_read:
    mov (%rbx), %eax          // MMIO that KVM handles in the kernel
lapic_done:

program_pic:                  // from here to `enable`, every instruction is 2 bytes long
    mov $0x11, %al            // ICW1: edge triggered, cascade, ICW4 follows
    out %al, $0x20
    out %al, $0xa0
    mov $0x20, %al            // ICW2: master vectors 0x20-0x27
    out %al, $0x21
    mov $0x28, %al            // slave vectors 0x28-0x2f
    out %al, $0xa1
    mov $0x04, %al            // ICW3: slave on IRQ 2
    out %al, $0x21
    mov $0x02, %al
    out %al, $0xa1
    mov $0x01, %al            // ICW4: 8086 mode
    out %al, $0x21
    out %al, $0xa1
    mov $0xfe, %al            // mask all but IRQ 0
    out %al, $0x21
    in $0x21, %al             // read the mask back (a port KVM handles)
    mov $0xff, %al
    out %al, $0xa1

    mov $0x34, %al            // PIT channel 0, low then high byte, mode 2
    out %al, $0x43
    mov $1193 & 0xff, %al     // 1193182 Hz / 1193 = about 1 kHz
    out %al, $0x40
    mov $1193 >> 8, %al
    out %al, $0x40

enable:
    sti
    mov $20000, %ecx
busy:
    dec %ecx
    jnz busy
wait:
    hlt
    cmpl $3, ticks(%rip)
    jb wait
    cli
    mov $0x10, %al
    out %al, $0xf4

timer_handler:
    incl ticks(%rip)
    push %rax
    mov $0x20, %al            // end of interrupt
    out %al, $0x20
    pop %rax
    iretq

    .p2align 3
idtr:   .word 256 * 16 - 1
        .quad idt
    .p2align 2
ticks:  .long 0
    .p2align 4
idt:    .fill 256 * 16, 1, 0
    .fill 512, 1, 0
stack_top:
