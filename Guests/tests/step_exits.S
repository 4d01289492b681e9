// guest: elf64
// One instruction of each kind that leaves the guest for KVM or for Hyperstep while it is
// single-stepped: OUT and IN on a port the VMM handles, string OUTSB/INSB with and without
// REP, an MMIO store, load and read-modify-write (KVM's emulator) on an address the VMM
// handles, instructions KVM emulates in the kernel (CPUID, RDMSR, WRMSR, MOV from and to
// CR0, RDTSC), and HLT with interrupts off, which must be reported as a halt, never run past.
    .code64
    .text
    .globl _start
_start:
    mov $0x3ff, %dx
    mov $0x5a, %al
    out %al, %dx
    in %dx, %al
    lea text(%rip), %rsi
    outsb
    mov $2, %ecx
    rep outsb
    lea buffer(%rip), %rdi
    insb
    mov $0xd0000000, %ebx
    movl $1, (%rbx)
    movl (%rbx), %eax
    incl (%rbx)
    xor %eax, %eax
    cpuid
    mov $0xc0000080, %ecx
    rdmsr
    wrmsr
    mov %cr0, %rax
    mov %rax, %cr0
    rdtsc
    mov $2, %ecx
    rep insb
    cli
    hlt
    ud2
text:   .ascii "abc"
buffer: .fill 3, 1, 0
