// guest: elf64
// The guest's own instruction breakpoint beside the host's: DR0 on `guest_bp` (L0,
// execute), then calls to `host_a`, `guest_bp`, `host_b`, `guest_bp`. The host sets
// hardware breakpoints on `host_a` and `host_b`. The guest's #DB handler counts its hits,
// records DR6 and clears it, and sets RF in the frame so the instruction runs on return
// (an instruction breakpoint is a fault). It checks DR0 and DR7 read back what it wrote.
// Output, from the SDM's DR6 layout (vol. 3, 18.2.3; bits 4-11 and 16-31 read 1, B0 is bit 0):
//   dr0=ok dr7=ok / hits=00000002 / dr6=ffff0ff1 ffff0ff1
// The first call of `guest_bp` comes after a host stop: a slot the guest enables while the
// vCPU runs beside host breakpoints counts from the host's next stop (see Stepper).
    .code64
    .text
    .globl _start
_start:
    lea stack_top(%rip), %rsp
    call serial_init
    call install_db_handler

    lea guest_bp(%rip), %rax
    mov %rax, %dr0
    mov $0x00000001, %eax     // L0; R/W0 = 00 (execute), LEN0 = 00
    mov %rax, %dr7
    call host_a
    call guest_bp
    call host_b
    call guest_bp

    mov %dr0, %rax
    lea guest_bp(%rip), %rbx
    cmp %rbx, %rax
    jne bad_dr0
    mov %dr7, %rax
    and $0xffff00ff, %eax      // bits 8-15 are implementation-dependent
    cmp $0x00000001, %eax
    jne bad_dr7
    lea ok_text(%rip), %rsi
    call puts
    call print_db_results
    mov $0x10, %al
    out %al, $0xf4
bad_dr0:
    mov $0x21, %al
    out %al, $0xf4
bad_dr7:
    mov $0x22, %al
    out %al, $0xf4

host_a:
    nop
    ret
host_b:
    nop
    ret
guest_bp:
    nop
    ret

#include "serial.inc"
#include "debug_exception.inc"

ok_text:   .asciz "dr0=ok dr7=ok\n"
    .p2align 4
    .fill 1024, 1, 0
stack_top:
