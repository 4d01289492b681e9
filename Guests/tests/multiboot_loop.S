// guest: multiboot
// A Multiboot kernel that loops for ever (add, dec, jnz, jmp): something both Hyperstep and
// QEMU's `-kernel` boot, for the GDB stepping benchmark.
    .set MB_MAGIC, 0x1BADB002
    .set MB_FLAGS, 0x00000000
    .code32
    .text
    .globl _start
    .p2align 2
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)
_start:
    mov $1000, %ecx
spin:
    add $1, %eax
    dec %ecx
    jnz spin
    jmp _start
