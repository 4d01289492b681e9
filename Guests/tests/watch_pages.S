// guest: elf64
// Watched data on pages apart from the code, and a watched virtual address the guest's own
// page tables move to another physical page, for watchpoints served through protected pages
// on KVM. Each access is named by the label of the instruction after it, where a watchpoint
// must stop:
//   far_read:  mov far_read, %rbx                (a load)              -> after_far_read
//   far_write: mov %rbx, far_write               (a store)             -> after_far_write
//   far_rmw:   incq far_rmw                      (a read, then a write) -> after_far_rmw
// Then it loads page tables of its own (the boot identity map's first GiB, and virtual
// 0x40000000 mapped by a 4 KiB page to data_a), stops to be looked at (`remapped`), reads
// through 0x40000000 (-> after_read_a), rewrites that page-table entry to map data_b
// instead (a PTE write) with INVLPG, and reads through 0x40000000 again (-> after_read_b).
// rbx holds what each read found: data_a's 0xa0a0a0a0, then data_b's 0xb0b0b0b0.
// Leaves through isa-debug-exit with 0x10.
    .code64
    .text
    .globl _start
_start:
    lea stack_top(%rip), %rsp
    mov far_read(%rip), %rbx
after_far_read:
    mov %rbx, far_write(%rip)
after_far_write:
    incq far_rmw(%rip)
after_far_rmw:
    // Own tables: PML4[0] -> my_pdpt; my_pdpt[0] = the boot tables' first-GiB entry,
    // my_pdpt[1] -> my_pd -> my_pt, whose entry 0 maps 0x40000000 to data_a.
    mov %cr3, %rax
    mov (%rax), %rbx
    movabs $0x000ffffffffff000, %rcx
    and %rcx, %rbx
    mov (%rbx), %rdx
    mov %rdx, my_pdpt(%rip)
    lea my_pd(%rip), %rax
    or $3, %rax
    mov %rax, my_pdpt+8(%rip)
    lea my_pt(%rip), %rax
    or $3, %rax
    mov %rax, my_pd(%rip)
    lea data_a(%rip), %rax
    or $3, %rax
    mov %rax, my_pt(%rip)
    lea my_pdpt(%rip), %rax
    or $3, %rax
    mov %rax, my_pml4(%rip)
    lea my_pml4(%rip), %rax
    mov %rax, %cr3
    .globl remapped
remapped:
    mov 0x40000000, %rbx
after_read_a:
    lea data_b(%rip), %rax
    or $3, %rax
    mov %rax, my_pt(%rip)
    invlpg 0x40000000
    mov 0x40000000, %rbx
after_read_b:
    mov $0x10, %al
    out %al, $0xf4

    .globl after_far_read, after_far_write, after_far_rmw, after_read_a, after_read_b
    .globl far_read, far_write, far_rmw, data_a, data_b
    .p2align 12
far_read:   .quad 0x0123456789abcdef
    .p2align 6
far_write:  .quad 0
    .p2align 6
far_rmw:    .quad 41
    .p2align 4
    .fill 256, 1, 0
stack_top:
    .p2align 12
data_a:     .quad 0xa0a0a0a0
    .p2align 12
data_b:     .quad 0xb0b0b0b0
    .p2align 12
my_pml4:    .fill 512, 8, 0
my_pdpt:    .fill 512, 8, 0
my_pd:      .fill 512, 8, 0
my_pt:      .fill 512, 8, 0
