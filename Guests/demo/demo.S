// guest: multiboot
// The bundled demo guest: a Multiboot v1 kernel that greets over COM1, reports
// what its loader handed it (memory size and command line), and leaves through
// the isa-debug-exit port with DEMO_SUCCESS, which `hyperstep run` maps to 0.
    .set MB_MAGIC, 0x1BADB002
    .set MB_FLAGS, 0x00000003     // bit 0: page-aligned modules, bit 1: memory info wanted
    .set MB_BOOTED, 0x2BADB002    // what a Multiboot loader leaves in %eax
    .set DEBUG_EXIT, 0xf4
    .set DEMO_SUCCESS, 0x10       // debug-exit value meaning "demo ran to the end"
    .set DEMO_BAD_LOADER, 0x01

    .text
    .code32
    .globl _start
    .p2align 2
multiboot_header:
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)

_start:
    mov $stack_top, %esp
    mov %eax, %edi            // keep the loader's magic
    mov %ebx, %ebp            // and its multiboot_info pointer
    call serial_init
    mov $banner, %esi
    call puts
    cmp $MB_BOOTED, %edi
    jne bad_loader

    testl $1, (%ebp)          // flags bit 0: mem_lower/mem_upper are valid
    jz 1f
    mov $memory_text, %esi
    call puts
    mov 8(%ebp), %eax         // mem_upper: KiB above 1 MiB
    add $1024, %eax
    shr $10, %eax             // whole MiB
    call putdec
    mov $mib_text, %esi
    call puts
1:  mov $cpu_text, %esi      // the CPU's vendor string tells the engines apart:
    call puts                 // the host's under KVM, "HyperstepX86" on the interpreter
    xor %eax, %eax
    cpuid                     // leaf 0: the vendor in EBX, EDX, ECX
    mov %ebx, vendor
    mov %edx, vendor+4
    mov %ecx, vendor+8
    mov $vendor, %esi
    call puts
    mov $newline_text, %esi
    call puts
    testl $4, (%ebp)          // flags bit 2: cmdline is valid
    jz 2f
    mov $cmdline_text, %esi
    call puts
    mov 16(%ebp), %esi
    call puts
    mov $quote_text, %esi
    call puts
2:  mov $goodbye_text, %esi
    call puts
    mov $DEMO_SUCCESS, %al
    out %al, $DEBUG_EXIT
    cli                       // not reached: the debug-exit port ends the run
    hlt

bad_loader:
    mov $bad_loader_text, %esi
    call puts
    mov $DEMO_BAD_LOADER, %al
    out %al, $DEBUG_EXIT
    cli
    hlt

#include "serial.inc"

putdec:                       // print %eax in decimal; clobbers %eax, %ebx, %ecx, %edx
    mov $10, %ecx
    push $0                   // sentinel below the digits
5:  xor %edx, %edx
    div %ecx
    add $'0', %dl
    push %edx
    test %eax, %eax
    jnz 5b
6:  pop %ebx
    test %ebx, %ebx
    jz 7f
    call putc
    jmp 6b
7:  ret

banner:        .asciz "Hyperstep demo guest: hello from a Multiboot kernel\n"
cpu_text:      .asciz "  CPU vendor: "
newline_text:  .asciz "\n"
vendor:        .fill 13, 1, 0   // 12 characters and the terminating zero
memory_text:   .asciz "  guest memory: "
mib_text:      .asciz " MiB\n"
cmdline_text:  .asciz "  command line: \""
quote_text:    .asciz "\"\n"
goodbye_text:  .asciz "  leaving through the isa-debug-exit port\n"
bad_loader_text: .asciz "  error: not started by a Multiboot loader (bad %eax)\n"
    .p2align 4
    .fill 1024, 1, 0
stack_top:
