// hs-writes: a static x86-64 Linux program that makes exactly three write(2) calls on
// stdout and then exit(0), for the kernel-introspection tests: a breakpoint on the kernel's
// write system call handler must fire once per call made here (plus the shell's own, which
// the tests count from the /init script). No libc: each line is one `syscall`.
    .intel_syntax noprefix
    .text
    .globl _start
_start:
    lea rbx, [rip + lines]
    mov r12d, 3
1:  mov eax, 1                // write(1, line, 12)
    mov edi, 1
    mov rsi, rbx
    mov edx, 12
    syscall
    add rbx, 12
    dec r12d
    jnz 1b
    mov eax, 60               // exit(0)
    xor edi, edi
    syscall
    .section .rodata
lines:
    .ascii "hs-writes 1\n"
    .ascii "hs-writes 2\n"
    .ascii "hs-writes 3\n"
