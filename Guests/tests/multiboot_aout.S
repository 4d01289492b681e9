// guest: flat-protected 0x100000
// A Multiboot v1 kernel in raw-binary form: no ELF headers, so its header's address
// fields (flag 16, the "a.out kludge") tell the loader where to put it and where to enter.
// Its BSS (bss_end_addr) must arrive zeroed. Exits with PASS (0x10) when both hold.
    .set MB_MAGIC, 0x1BADB002
    .set MB_FLAGS, 0x00010000
    .code32
    .text
    .globl _start
header:
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)
    .long header              // header_addr
    .long header              // load_addr: the file starts with this header
    .long image_end           // load_end_addr
    .long bss_end             // bss_end_addr
    .long _start              // entry_addr
_start:
    mov $bss_end, %esp
    cmp $0x2BADB002, %eax
    jne fail
    call serial_init
    mov $hello, %esi
    call puts
    cmpl $0, bss_start        // zero-filled by the loader
    jne fail
    mov $0x10, %al
    out %al, $0xf4
fail:
    mov $0x11, %al
    out %al, $0xf4

#include "serial.inc"

hello: .asciz "multiboot a.out kludge: entered\n"
    .p2align 4
image_end:
    .set bss_start, image_end
    .set bss_end, image_end + 0x1000
