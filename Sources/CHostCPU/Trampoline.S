// The trampoline between C and the instruction under test (see CHostCPU.h for the layout).
//
// Entry loads all sixteen GPRs and RFLAGS from the control area and jumps to the instruction.
// Nothing may be left in a register, so every access is to an absolute address below 2 GiB
// (a disp32 operand needs no base register) and the jump goes through a pointer in memory.
// The instruction then either falls through to the exit stub, which jumps back here to
// `hostcpu_exit_fallthrough`, or raises a signal, whose handler (CHostCPU.c) stores the
// registers itself and resumes at `hostcpu_fault_resume`. Both end by restoring the host's
// callee-saved registers and stack and returning from `hostcpu_enter`.
#include "CHostCPU.h"

#define CTL(offset) (HOSTCPU_CONTROL_BASE + (offset))
#define IN(n) CTL(HOSTCPU_CTL_IN_GPRS + 8 * (n))
#define OUT(n) CTL(HOSTCPU_CTL_OUT_GPRS + 8 * (n))

  .text
  .p2align 4
  // int hostcpu_enter(void): returns 0 after a fall-through, 1 after a signal.
  .globl hostcpu_enter
  .hidden hostcpu_enter
  .type hostcpu_enter, @function
hostcpu_enter:
  movq %rsp, CTL(HOSTCPU_CTL_HOST_RSP)
  movq %rbx, CTL(HOSTCPU_CTL_HOST_RBX)
  movq %rbp, CTL(HOSTCPU_CTL_HOST_RBP)
  movq %r12, CTL(HOSTCPU_CTL_HOST_R12)
  movq %r13, CTL(HOSTCPU_CTL_HOST_R13)
  movq %r14, CTL(HOSTCPU_CTL_HOST_R14)
  movq %r15, CTL(HOSTCPU_CTL_HOST_R15)
  // The host's x87/SSE state aside, the instruction's in.
  fxsave64 CTL(HOSTCPU_CTL_HOST_FXSAVE)
  fxrstor64 CTL(HOSTCPU_CTL_IN_FXSAVE)
  // RFLAGS first, on the private stack: the MOVs that follow leave the flags alone.
  movq $HOSTCPU_PRIVATE_STACK_TOP, %rsp
  pushq CTL(HOSTCPU_CTL_IN_RFLAGS)
  popfq
  movq IN(0), %rax
  movq IN(1), %rcx
  movq IN(2), %rdx
  movq IN(3), %rbx
  movq IN(5), %rbp
  movq IN(6), %rsi
  movq IN(7), %rdi
  movq IN(8), %r8
  movq IN(9), %r9
  movq IN(10), %r10
  movq IN(11), %r11
  movq IN(12), %r12
  movq IN(13), %r13
  movq IN(14), %r14
  movq IN(15), %r15
  movq IN(4), %rsp
  jmp *CTL(HOSTCPU_CTL_ENTRY_POINTER)
  .size hostcpu_enter, . - hostcpu_enter

  // Reached from the exit stub with the instruction's registers and flags intact.
  .p2align 4
  .globl hostcpu_exit_fallthrough
  .hidden hostcpu_exit_fallthrough
hostcpu_exit_fallthrough:
  movq %rsp, OUT(4)
  movq $HOSTCPU_PRIVATE_STACK_TOP, %rsp
  pushfq
  popq CTL(HOSTCPU_CTL_OUT_RFLAGS)
  movq %rax, OUT(0)
  movq %rcx, OUT(1)
  movq %rdx, OUT(2)
  movq %rbx, OUT(3)
  movq %rbp, OUT(5)
  movq %rsi, OUT(6)
  movq %rdi, OUT(7)
  movq %r8, OUT(8)
  movq %r9, OUT(9)
  movq %r10, OUT(10)
  movq %r11, OUT(11)
  movq %r12, OUT(12)
  movq %r13, OUT(13)
  movq %r14, OUT(14)
  movq %r15, OUT(15)
  fxsave64 CTL(HOSTCPU_CTL_OUT_FXSAVE)
  // The C ABI wants DF clear, and AC set would make any misaligned host access fault.
  pushq $0x202
  popfq
  xorl %eax, %eax
  jmp restore_host

  // Reached by the signal handler's rewritten context: RSP is the private stack, RFLAGS
  // is clean, and the handler has stored the registers.
  .p2align 4
  .globl hostcpu_fault_resume
  .hidden hostcpu_fault_resume
hostcpu_fault_resume:
  movl $1, %eax
restore_host:
  fxrstor64 CTL(HOSTCPU_CTL_HOST_FXSAVE)
  movq CTL(HOSTCPU_CTL_HOST_RBX), %rbx
  movq CTL(HOSTCPU_CTL_HOST_RBP), %rbp
  movq CTL(HOSTCPU_CTL_HOST_R12), %r12
  movq CTL(HOSTCPU_CTL_HOST_R13), %r13
  movq CTL(HOSTCPU_CTL_HOST_R14), %r14
  movq CTL(HOSTCPU_CTL_HOST_R15), %r15
  movq CTL(HOSTCPU_CTL_HOST_RSP), %rsp
  ret

  .section .note.GNU-stack, "", @progbits
