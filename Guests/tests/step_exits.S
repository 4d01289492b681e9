// guest: elf64
// One instruction of each kind that leaves the guest for KVM or for Hyperstep while it is
// single-stepped: OUT and IN on a port the VMM handles, an MMIO store, load and
// read-modify-write (KVM's emulator) on an address the VMM handles, CPUID (emulated in the
// kernel), and HLT with interrupts off, which must be reported as a halt and never run past.
    .code64
    .text
    .globl _start
_start:
    mov $0x3ff, %dx
    mov $0x5a, %al
    out %al, %dx
    in %dx, %al
    mov $0xd0000000, %ebx
    movl $1, (%rbx)
    movl (%rbx), %eax
    incl (%rbx)
    xor %eax, %eax
    cpuid
    cli
    hlt
    ud2
