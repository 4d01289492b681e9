// guest: multiboot
// A compute-bound Multiboot v1 kernel for Benchmarks/interp-vs-tcg.sh: the same ELF32 file
// runs on QEMU (-kernel, TCG), on Hyperstep's interpreter and on KVM. 32-bit protected mode
// with the flat segments and no paging the Multiboot specification (3.2) promises.
//
// It reads N, the last word of the Multiboot command line in decimal (`hyperstep run
// --cmdline N`; QEMU's `-append N`, which QEMU puts after the kernel's file name), runs N
// iterations of an integer mix over a 4 KiB buffer, prints
//   compute: sum=XXXXXXXX ordered=XXXXXXXX hist=XXXXXXXX
// on COM1 and leaves through isa-debug-exit (port 0xf4) with 0x10 (exit status 33).
//
// One iteration, W = 1024 words (32-bit arithmetic throughout, modulo 2^32):
//   fill       for j in 0..<W: x = x * 1103515245 + 12345; buf[j] = x ^ (x >> 16)
//   exchange   for p in 0..<W/2: a = buf[2p], b = buf[2p+1] (unsigned);
//                if a > b { swap them } else { ordered += 1; sum = rol(sum ^ a, 5) }
//   hash       for j in 0..<W: h = mix(buf[j]) (a call); buf[j] = h; sum = sum * 33 + h
//                where mix(v) = v' ^ (v' >> 12) with v' = (v ^ (v >> 15)) * 0x2c1b3c6d
//   histogram  for j in 0..<W: hist[buf[j] & 0xff] += 1   (a byte load and a memory RMW)
// starting from x = 1, sum = 0, ordered = 0, hist all 0. At the end hist is folded into
// one word, f = f * 31 + hist[k] for k in 0..<256 from f = 0.
//
// Exact instruction count (retired instructions, read off `llvm-objdump -d`). The only
// data-dependent branch, the exchange pass's `jbe`, has arms of 3 instructions each, and the
// output is written without polling the UART, so the count depends on nothing but N and the
// command line:
//   per iteration     35 * W + 26 = 35866: the outer loop 6 (four calls, subl, jae),
//                     fill 9W+5, exchange 5W+7, hash 16W+5 (mix 8 of it per word),
//                     histogram 5W+3
//   command line      10 per digit and 9 per other character, up to its NUL
//   everything else   1677: entry 4, serial_init 13, the command-line test and call 5,
//                     parse_last_word's first and last 6, loop set-up and last test 7,
//                     the fold 3+5*256+1 = 1284, printing 356 (print 5+5 per character
//                     and print_hex 59, plus 2 per call), the exit 2
// so a run executes 1677 + 10 * digits + 9 * others + 35866 * N instructions: 109285 for
// `hyperstep run --cmdline 3`. QEMU's -append N gives the command line "FILE N", the
// kernel's file name first. Benchmarks/interp-vs-tcg.sh checks these counts against traces.
    .set MB_MAGIC, 0x1BADB002
    .set MB_FLAGS, 0x00000003     // page-aligned modules, memory information
    .set MB_BOOTED, 0x2BADB002    // what a Multiboot loader leaves in %eax
    .set MB_INFO_CMDLINE, 4       // flags bit 2: the cmdline field is valid
    .set DEBUG_EXIT, 0xf4
    .set PASS, 0x10
    .set BAD_LOADER, 0x11
    .set WORDS, 1024

    .code32
    .text
    .globl _start
    .p2align 2
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)

_start:
    mov $stack_top, %esp
    cmp $MB_BOOTED, %eax
    jne bad_loader
    call serial_init
    xor %eax, %eax            // no command line: N = 0
    testl $MB_INFO_CMDLINE, (%ebx)
    jz 1f
    mov 16(%ebx), %esi
    call parse_last_word
1:  mov %eax, remaining
    movl $1, seed
    movl $0, sum
    movl $0, ordered
    jmp 3f
2:  call fill
    call exchange_pass
    call hash_pass
    call histogram
3:  subl $1, remaining        // borrows (CF) when the last iteration is done
    jnc 2b

    xor %eax, %eax            // fold the histogram
    mov $hist, %esi
    mov $256, %ecx
4:  imul $31, %eax, %eax
    add (%esi), %eax
    add $4, %esi
    dec %ecx
    jnz 4b
    mov %eax, folded

    mov $sum_text, %esi
    call print
    mov sum, %edi
    call print_hex
    mov $ordered_text, %esi
    call print
    mov ordered, %edi
    call print_hex
    mov $hist_text, %esi
    call print
    mov folded, %edi
    call print_hex
    mov $newline, %esi
    call print
    mov $PASS, %al
    out %al, $DEBUG_EXIT
bad_loader:
    mov $BAD_LOADER, %al
    out %al, $DEBUG_EXIT

// %eax = the last space-separated word of the NUL-terminated string at %esi, in decimal;
// any character other than a digit starts the value again. Clobbers %edx, %esi.
parse_last_word:
    xor %eax, %eax
1:  movzbl (%esi), %edx
    inc %esi
    test %edx, %edx
    jz 3f
    sub $'0', %edx
    cmp $9, %edx              // unsigned: below '0' wraps round to a large value
    ja 2f
    imul $10, %eax, %eax
    add %edx, %eax
    jmp 1b
2:  xor %eax, %eax
    jmp 1b
3:  ret

// buf[j] = x ^ (x >> 16) after each step of the linear congruential generator
// x = x * 1103515245 + 12345 (the ANSI C example's constants). Clobbers %eax, %ecx, %edx, %edi.
fill:
    mov seed, %eax
    mov $buffer, %edi
    mov $WORDS, %ecx
1:  imul $1103515245, %eax, %eax
    add $12345, %eax
    mov %eax, %edx
    shr $16, %edx
    xor %eax, %edx
    mov %edx, (%edi)
    add $4, %edi
    dec %ecx
    jnz 1b
    mov %eax, seed
    ret

// Compare-exchange of the pairs (0,1), (2,3) ... (one step of an odd-even transposition
// sort): swap a pair out of order (unsigned), else count it and fold its first word into
// sum. Over fresh random words the branch goes either way half the time.
// Clobbers %eax, %ebx, %ecx, %edx, %esi, %ebp.
exchange_pass:
    mov sum, %ebp
    mov ordered, %ebx
    mov $buffer, %esi
    mov $WORDS / 2, %ecx
1:  mov (%esi), %eax
    mov 4(%esi), %edx
    cmp %edx, %eax
    jbe 2f
    mov %edx, (%esi)          // out of order: swap the pair
    mov %eax, 4(%esi)
    jmp 3f
2:  inc %ebx                  // in order: as many instructions as the swap's arm, so that
    xor %eax, %ebp            // the count per pass does not depend on the data
    rol $5, %ebp
3:  add $8, %esi
    dec %ecx
    jnz 1b
    mov %ebp, sum
    mov %ebx, ordered
    ret

// buf[j] = mix(buf[j]); sum = sum * 33 + buf[j]. Clobbers %eax, %ebx, %edx, %esi, %edi.
hash_pass:
    mov sum, %ebx
    mov $buffer, %esi
    mov $WORDS, %edi
1:  mov (%esi), %eax
    call mix
    imul $33, %ebx, %ebx
    add %eax, %ebx
    mov %eax, (%esi)
    add $4, %esi
    dec %edi
    jnz 1b
    mov %ebx, sum
    ret

// An integer hash, xor-shift / multiply / xor-shift: %eax = mix(%eax). Clobbers %edx.
mix:
    mov %eax, %edx
    shr $15, %edx
    xor %edx, %eax
    imul $0x2c1b3c6d, %eax, %eax
    mov %eax, %edx
    shr $12, %edx
    xor %edx, %eax
    ret

// hist[low byte of buf[j]] += 1. Clobbers %eax, %ecx, %esi.
histogram:
    mov $buffer, %esi
    mov $WORDS, %ecx
1:  movzbl (%esi), %eax       // little-endian: the word's low byte
    incl hist(, %eax, 4)
    add $4, %esi
    dec %ecx
    jnz 1b
    ret

// Output without polling the line status register: both emulated UARTs take a byte at any
// time, and a poll loop would make the instruction count depend on the host's console.
// print: the NUL-terminated string at %esi; clobbers %al, %dx, %esi.
print:
    mov $COM1, %dx
1:  lodsb
    test %al, %al
    jz 2f
    out %al, %dx
    jmp 1b
2:  ret

// print_hex: %edi as 8 lowercase hex digits, from a table (no branch on the digit's value).
// Clobbers %eax, %ecx, %dx, %edi.
print_hex:
    mov $COM1, %dx
    mov $8, %ecx
1:  rol $4, %edi
    mov %edi, %eax
    and $0xf, %eax
    movzbl hex_digits(%eax), %eax
    out %al, %dx
    dec %ecx
    jnz 1b
    ret

#include "serial.inc"

sum_text:     .asciz "compute: sum="
ordered_text: .asciz " ordered="
hist_text:    .asciz " hist="
newline:      .asciz "\n"
hex_digits:   .ascii "0123456789abcdef"
// Data and stack on pages of their own: a store to a page holding code makes QEMU drop its
// translations of that page, and would make the benchmark measure that instead.
    .p2align 12
data_start:                   // the code lies below: Benchmarks/interp-vs-tcg.sh counts it
remaining:    .long 0
seed:         .long 0
sum:          .long 0
ordered:      .long 0
folded:       .long 0
hist:         .fill 256, 4, 0
buffer:       .fill WORDS, 4, 0
    .p2align 4
    .fill 256, 1, 0
stack_top:
