// guest: elf64
// A tight loop for the stepping benchmark: 100000 iterations of three instructions, then
// the debug exit. 300004 instructions in all (2 before the loop, 2 after).
    .code64
    .text
    .globl _start
_start:
    mov $100000, %ecx
    xor %eax, %eax
loop:
    add $1, %rax
    dec %ecx
    jnz loop
done:
    mov $0x10, %al
    out %al, $0xf4
