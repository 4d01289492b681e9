// guest: elf64
// One instruction of each kind that touches data, each touching its own 8-byte variable
// once, for watchpoint tests (gdb's watch, rwatch and awatch; the event API's memory
// watches). Every access is named by the label of the instruction after it, where a
// watchpoint must stop:
//   written:  mov %rax, var_write         (a store)              -> after_store
//   read:     mov var_read, %rbx          (a load)               -> after_load
//   rmw:      add %rax, var_rmw           (a read, then a write)  -> after_rmw
//   pushed:   push %rax with RSP = var_push + 8 (a stack store)   -> after_push
//   copied:   movsq from var_source to var_copy (a string op: read, then write) -> after_movs
// then leaves through isa-debug-exit with 0x10.
    .code64
    .text
    .globl _start
_start:
    lea stack_top(%rip), %rsp
    mov $0x1122334455667788, %rax
    mov %rax, var_write(%rip)
after_store:
    mov var_read(%rip), %rbx
after_load:
    add %rax, var_rmw(%rip)
after_rmw:
    mov %rsp, %rbp
    lea var_push+8(%rip), %rsp
    push %rax
after_push:
    mov %rbp, %rsp
    lea var_source(%rip), %rsi
    lea var_copy(%rip), %rdi
    movsq
after_movs:
    mov $0x10, %al
    out %al, $0xf4

    .p2align 6
    .globl var_write, var_read, var_rmw, var_push, var_source, var_copy
var_write:  .quad 0
    .p2align 6
var_read:   .quad 0x0123456789abcdef
    .p2align 6
var_rmw:    .quad 1
    .p2align 6
var_push:   .quad 0
    .p2align 6
var_source: .quad 0x5555aaaa5555aaaa
    .p2align 6
var_copy:   .quad 0
    .p2align 4
    .fill 256, 1, 0
stack_top:
