// guest: elf64
// A WRMSR loop for the MSR-event benchmark: writes IA32_SYSENTER_EIP (0x176) 100000 times,
// the values 1 to 100000 (their sum 5000050000), reads the last back, then the debug exit:
// 0x10 if the MSR holds 100000 (every write took effect), 0x11 if not.
    .code64
    .text
    .globl _start
_start:
    mov $0x176, %ecx          // IA32_SYSENTER_EIP: harmless to write in long mode
    xor %edx, %edx
    mov $1, %eax
loop:
    wrmsr
    add $1, %eax
    cmp $100001, %eax
    jne loop
    rdmsr
    cmp $100000, %eax
    jne fail
    mov $0x10, %al
    out %al, $0xf4
fail:
    mov $0x11, %al
    out %al, $0xf4
