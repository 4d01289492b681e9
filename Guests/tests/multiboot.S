// guest: multiboot
// A Multiboot v1 ELF kernel that checks the boot state the specification promises:
// EAX = 0x2BADB002 and EBX = the information structure. It prints the info flags,
// mem_lower, mem_upper, the command line, the loader name and every memory-map entry
// (low 32 bits of base and length, then the type), then exits with PASS (0x10).
    .set MB_MAGIC, 0x1BADB002
    .set MB_FLAGS, 0x00000003
    .code32
    .text
    .globl _start
    .p2align 2
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)
_start:
    mov $stack_top, %esp
    mov %ebx, %ebp
    cmp $0x2BADB002, %eax
    jne fail
    call serial_init
    mov $flags_text, %esi
    call puts
    mov (%ebp), %edi
    call puthex
    mov $lower_text, %esi
    call puts
    mov 4(%ebp), %edi
    call puthex
    mov $upper_text, %esi
    call puts
    mov 8(%ebp), %edi
    call puthex
    mov $cmdline_text, %esi
    call puts
    mov 16(%ebp), %esi
    call puts
    mov $name_text, %esi
    call puts
    mov 64(%ebp), %esi
    call puts
    mov $newline, %esi
    call puts

    mov 48(%ebp), %eax        // mmap_addr
    mov 44(%ebp), %ecx        // mmap_length
    lea (%eax, %ecx), %ebp    // end of the map
    mov %eax, cursor
1:  mov cursor, %eax
    cmp %ebp, %eax
    jae 2f
    mov $entry_text, %esi
    call puts
    mov cursor, %eax
    mov 4(%eax), %edi         // base_addr low
    call puthex
    mov $space, %esi
    call puts
    mov cursor, %eax
    mov 12(%eax), %edi        // length low
    call puthex
    mov $space, %esi
    call puts
    mov cursor, %eax
    mov 20(%eax), %edi        // type
    call puthex
    mov $newline, %esi
    call puts
    mov cursor, %eax
    add (%eax), %eax          // size field excludes itself
    add $4, %eax
    mov %eax, cursor
    jmp 1b
2:  mov $0x10, %al
    out %al, $0xf4
fail:
    mov $0x11, %al
    out %al, $0xf4

#include "serial.inc"

flags_text:   .asciz "multiboot: flags="
lower_text:   .asciz " mem_lower="
upper_text:   .asciz " mem_upper="
cmdline_text: .asciz "\ncmdline="
name_text:    .asciz "\nloader="
entry_text:   .asciz "mmap "
space:        .asciz " "
newline:      .asciz "\n"
    .p2align 2
cursor:       .long 0
    .p2align 4
    .fill 256, 1, 0
stack_top:
