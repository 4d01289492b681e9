// CHostCPU: runs one x86-64 instruction on the host CPU, in this process, and reports what it
// did. This is the hardware oracle of Hyperstep's differential tester (issue 10): the same
// instruction from the same state is run by the interpreter and the two results compared.
//
// The header is shared by the C code and the assembly trampoline (Trampoline.S), so the fixed
// layout below is written once. Everything sits below 2 GiB on purpose: absolute disp32
// addressing, 32-bit address-size (0x67) forms and sign-extended immediates all reach it, and
// the trampoline can address its control area without a free register.
#ifndef HYPERSTEP_CHOSTCPU_H
#define HYPERSTEP_CHOSTCPU_H

// ---- The fixed layout (see also HostCPU's `NativeLayout`, which mirrors it for Swift) ----

// Control area, private to the trampoline: the register images in and out, the host's
// callee-saved registers while an instruction runs, and a small private stack used for
// PUSHF/POPF around the instruction. Not part of what an instruction may touch.
#define HOSTCPU_CONTROL_BASE 0x0FFF0000
#define HOSTCPU_CONTROL_SIZE 0x10000
#define HOSTCPU_PRIVATE_STACK_TOP (HOSTCPU_CONTROL_BASE + HOSTCPU_CONTROL_SIZE)

// The sandbox: 16 MiB reserved with no access, in which only the code page and the data
// window are mapped. Branch targets anywhere in it end in a catchable fetch fault.
#define HOSTCPU_SANDBOX_BASE 0x10000000
#define HOSTCPU_SANDBOX_SIZE 0x01000000
// The code page (read + execute; written through a second, writable mapping of the same
// memory). Every byte is INT3 except the instruction at HOSTCPU_CODE_ENTRY and the 7-byte
// exit stub right after it (`jmp [HOSTCPU_EXIT_POINTER]`).
#define HOSTCPU_CODE_PAGE 0x10800000
#define HOSTCPU_CODE_PAGE_SIZE 0x1000
#define HOSTCPU_CODE_ENTRY 0x10800800
#define HOSTCPU_EXIT_STUB_LENGTH 7
#define HOSTCPU_MAX_INSTRUCTION_LENGTH 15
// The data window: two read/write pages. The pages just below and above it are guard pages
// (no access), so a run off either end faults before reaching anything else.
#define HOSTCPU_DATA_BASE 0x10900000
#define HOSTCPU_DATA_SIZE 0x2000

// RFLAGS bits an instruction's starting state may set: CF PF AF ZF SF DF OF AC. TF is left
// out (it would trap on the exit stub, not on the instruction), IF and IOPL cannot be changed
// at CPL 3, and NT, RF, VM, VIF, VIP and ID mean nothing to the general-purpose ISA here.
// The same mask is applied to the RFLAGS reported after the instruction.
#define HOSTCPU_RFLAGS_MASK 0x40CD5

// Control-area offsets (bytes), used by the trampoline.
#define HOSTCPU_CTL_IN_GPRS 0x000
#define HOSTCPU_CTL_IN_RFLAGS 0x080
#define HOSTCPU_CTL_OUT_GPRS 0x100
#define HOSTCPU_CTL_OUT_RFLAGS 0x180
#define HOSTCPU_CTL_HOST_RSP 0x200
#define HOSTCPU_CTL_HOST_RBX 0x208
#define HOSTCPU_CTL_HOST_RBP 0x210
#define HOSTCPU_CTL_HOST_R12 0x218
#define HOSTCPU_CTL_HOST_R13 0x220
#define HOSTCPU_CTL_HOST_R14 0x228
#define HOSTCPU_CTL_HOST_R15 0x230
#define HOSTCPU_CTL_ENTRY_POINTER 0x300
#define HOSTCPU_CTL_EXIT_POINTER 0x308
// FXSAVE images (512 bytes, 16-byte aligned): the instruction's x87/SSE state in and out, and
// the host's own, saved on entry and restored on both exit paths.
#define HOSTCPU_CTL_IN_FXSAVE 0x400
#define HOSTCPU_CTL_OUT_FXSAVE 0x600
#define HOSTCPU_CTL_HOST_FXSAVE 0x800
#define HOSTCPU_FXSAVE_SIZE 512

#ifndef __ASSEMBLER__
#include <stdint.h>

/// General-purpose registers in encoding order (rax rcx rdx rbx rsp rbp rsi rdi r8..r15).
/// `fxsave` is the x87/SSE state as FXSAVE64 lays it out (SDM Vol. 1, 10.5.1): FXRSTOR64
/// loads it before the instruction and FXSAVE64 (or, after a signal, the kernel's saved copy)
/// reports it. Its MXCSR must not set reserved bits (FXRSTOR would fault in the trampoline).
typedef struct {
  uint64_t gprs[16];
  uint64_t rflags;
  uint8_t fxsave[HOSTCPU_FXSAVE_SIZE];
} hostcpu_registers;

/// How a run ended.
typedef enum {
  /// The instruction fell through to the exit stub: registers come from the stub.
  HOSTCPU_END_FALLTHROUGH = 0,
  /// A signal stopped it: registers come from the signal's ucontext.
  HOSTCPU_END_SIGNAL = 1,
  /// The watchdog stopped an instruction that never ends (a branch to itself) after
  /// HOSTCPU_WATCHDOG_MS of the thread's CPU time; CPU time, so that a busy machine
  /// descheduling the thread causes no false timeouts. Registers come from its ucontext.
  HOSTCPU_END_TIMEOUT = 2,
} hostcpu_end;

#define HOSTCPU_WATCHDOG_MS 200

typedef struct {
  hostcpu_registers registers;  // rflags masked with HOSTCPU_RFLAGS_MASK
  uint64_t rip;                 // the stub's address, or the ucontext's RIP
  int32_t end;                  // a hostcpu_end
  int32_t signal;               // signal number, or 0
  int32_t signal_code;          // siginfo's si_code
  int32_t reserved;
  uint64_t trap_number;         // REG_TRAPNO: the x86 vector the kernel saw
  uint64_t error_code;          // REG_ERR
  uint64_t fault_address;       // REG_CR2 (page faults), else siginfo's si_addr
} hostcpu_result;

/// Maps the layout and installs the signal handlers, once per process (later calls return
/// the first call's result). Returns 0, or an errno value; `hostcpu_setup_failure` names the
/// step that failed.
int hostcpu_setup(void);
const char *hostcpu_setup_failure(void);

/// Runs `length` bytes (1...15) placed at HOSTCPU_CODE_ENTRY from `input` (RFLAGS masked),
/// with the data window holding `window_in` (HOSTCPU_DATA_SIZE bytes); fills `result` and
/// `window_out` (HOSTCPU_DATA_SIZE bytes). One run at a time per process (a lock serializes
/// callers). Returns 0, EINVAL for a bad length, or hostcpu_setup's error.
///
/// The caller vouches for the instruction: it must not transfer control outside the sandbox,
/// write outside the data window, or change the thread's segments (see docs/ARCHITECTURE.md).
int hostcpu_execute(const uint8_t *code, uint32_t length, const hostcpu_registers *input,
                    const uint8_t *window_in, uint8_t *window_out, hostcpu_result *result);

/// Keeps the watchdog armed across many runs on this thread (one timer interval instead of
/// arming and disarming it around every run); `hostcpu_batch_end` disarms it. Without a batch
/// each run arms and disarms the timer itself (about 1 us here).
int hostcpu_batch_begin(void);
void hostcpu_batch_end(void);

#endif  // __ASSEMBLER__
#endif  // HYPERSTEP_CHOSTCPU_H
