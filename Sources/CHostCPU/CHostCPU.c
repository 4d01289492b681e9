// Runs one instruction natively (see CHostCPU.h). The instruction runs on the calling thread,
// in this process: a fork per instruction would cost far more than the instruction. Faults
// are recovered in place: the signal handler, on an alternate stack (the instruction's RSP
// points into the data window), copies the registers out of the ucontext and rewrites the
// context so that returning from the handler lands in the trampoline's resume path. No
// siglongjmp: sigreturn restores the signal mask and the FPU state the kernel saved, so the
// thread leaves exactly as it entered.
#define _GNU_SOURCE
#include "CHostCPU.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

// Assembly (Trampoline.S).
extern int hostcpu_enter(void);
extern char hostcpu_exit_fallthrough[];
extern char hostcpu_fault_resume[];

#define CONTROL(offset) ((volatile uint64_t *)(uintptr_t)(HOSTCPU_CONTROL_BASE + (offset)))
#define ENTRY_OFFSET (HOSTCPU_CODE_ENTRY - HOSTCPU_CODE_PAGE)
#define INT3 0xCC

static pthread_once_t setup_once = PTHREAD_ONCE_INIT;
static int setup_error;
static const char *setup_step = "";
static uint8_t *code_writable;  // the code page through its writable mapping
static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER;

static const int fault_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP};
static int watchdog_signal;
static struct sigaction previous_actions[_NSIG];

// Per thread: only the thread running an instruction may claim a signal as the instruction's.
static __thread volatile sig_atomic_t running;
static __thread bool thread_ready;
static __thread timer_t watchdog_timer;
static __thread bool in_batch;
static __thread volatile uint64_t run_serial;   // counts runs on this thread
static __thread volatile uint64_t tick_serial;  // the run the last batch tick saw

// What the handler saw; read under run_lock after hostcpu_enter returns 1.
static hostcpu_result signal_record;

static void *map_fixed(uintptr_t address, size_t size, int protection, int flags, int fd) {
  void *result = mmap((void *)address, size, protection, flags, fd, 0);
  if (result == MAP_FAILED) return NULL;
  if ((uintptr_t)result != address) {  // a kernel older than MAP_FIXED_NOREPLACE took it as a hint
    munmap(result, size);
    errno = EEXIST;
    return NULL;
  }
  return result;
}

static bool in_sandbox(uint64_t address) {
  return address >= HOSTCPU_SANDBOX_BASE && address - HOSTCPU_SANDBOX_BASE < HOSTCPU_SANDBOX_SIZE;
}

static void chain(int signal, siginfo_t *info, void *context) {
  struct sigaction *old = &previous_actions[signal];
  if (old->sa_flags & SA_SIGINFO) {
    if (old->sa_sigaction) old->sa_sigaction(signal, info, context);
    return;
  }
  if (old->sa_handler == SIG_IGN) return;
  if (old->sa_handler == SIG_DFL) {
    // Not ours: let the default action happen. A fault would simply repeat on return; a trap
    // or a sent signal is raised again (blocked until this handler returns).
    sigaction(signal, old, NULL);
    bool repeats = info->si_code > 0 && signal != SIGTRAP && signal != watchdog_signal;
    if (!repeats) raise(signal);
    return;
  }
  old->sa_handler(signal);
}

static void on_signal(int signal, siginfo_t *info, void *context) {
  // The instruction may have set AC, and the kernel leaves it set for the handler: clear it
  // before any host code makes a misaligned access.
  __asm__ volatile("pushfq; andq $~0x40000, (%%rsp); popfq" ::: "memory", "cc");
  ucontext_t *uc = context;
  greg_t *g = uc->uc_mcontext.gregs;
  if (!running) {
    // A batch's periodic watchdog tick between runs is ours and means nothing.
    if (signal != watchdog_signal) chain(signal, info, context);
    return;
  }
  bool timeout = signal == watchdog_signal;
  if (timeout) {
    // Only an instruction still running in the sandbox has overrun; a tick that finds the
    // trampoline (entering or leaving) is ignored. In a batch the timer is periodic, and a
    // run times out on the second tick that finds it.
    if (!in_sandbox((uint64_t)g[REG_RIP])) return;
    if (in_batch && tick_serial != run_serial) {
      tick_serial = run_serial;
      return;
    }
  }
  static const int order[16] = {REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP, REG_RSI, REG_RDI,
                                REG_R8,  REG_R9,  REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15};
  hostcpu_result *r = &signal_record;
  for (int i = 0; i < 16; i++) r->registers.gprs[i] = (uint64_t)g[order[i]];
  r->registers.rflags = (uint64_t)g[REG_EFL] & HOSTCPU_RFLAGS_MASK;
  // The instruction's x87/SSE state as the kernel saved it (FXSAVE layout); the resume path
  // restores the host's own.
  if (uc->uc_mcontext.fpregs) memcpy(r->registers.fxsave, uc->uc_mcontext.fpregs, HOSTCPU_FXSAVE_SIZE);
  r->rip = (uint64_t)g[REG_RIP];
  r->end = timeout ? HOSTCPU_END_TIMEOUT : HOSTCPU_END_SIGNAL;
  r->signal = signal;
  r->signal_code = info->si_code;
  // A timer signal has no trap: the kernel's fields still hold the thread's last fault.
  r->trap_number = timeout ? 0 : (uint64_t)g[REG_TRAPNO];
  r->error_code = timeout ? 0 : (uint64_t)g[REG_ERR];
  r->fault_address = timeout ? 0 : g[REG_TRAPNO] == 14 ? (uint64_t)g[REG_CR2] : (uint64_t)(uintptr_t)info->si_addr;
  // Resume in the trampoline on its private stack, with DF, AC and TF clear.
  g[REG_RIP] = (greg_t)(uintptr_t)hostcpu_fault_resume;
  g[REG_RSP] = (greg_t)HOSTCPU_PRIVATE_STACK_TOP;
  g[REG_EFL] = 0x202;
}

static void setup(void) {
  setup_step = "mapping the control area";
  if (!map_fixed(HOSTCPU_CONTROL_BASE, HOSTCPU_CONTROL_SIZE, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1))
    goto fail;
  setup_step = "reserving the sandbox";
  if (!map_fixed(HOSTCPU_SANDBOX_BASE, HOSTCPU_SANDBOX_SIZE, PROT_NONE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1))
    goto fail;
  // From here on MAP_FIXED only replaces parts of our own reservation.
  setup_step = "mapping the code page";
  int fd = memfd_create("hyperstep-hostcpu-code", MFD_CLOEXEC);
  if (fd >= 0 && ftruncate(fd, HOSTCPU_CODE_PAGE_SIZE) == 0) {
    code_writable = mmap(NULL, HOSTCPU_CODE_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (code_writable == MAP_FAILED ||
        !map_fixed(HOSTCPU_CODE_PAGE, HOSTCPU_CODE_PAGE_SIZE, PROT_READ | PROT_EXEC, MAP_SHARED | MAP_FIXED, fd)) {
      if (code_writable != MAP_FAILED) munmap(code_writable, HOSTCPU_CODE_PAGE_SIZE);
      code_writable = NULL;
    }
  }
  if (fd >= 0) close(fd);
  if (!code_writable) {
    // Where a memfd cannot be executed (vm.memfd_noexec), one writable and executable page
    // does the same job; only a store into the code page would then behave differently.
    code_writable = map_fixed(HOSTCPU_CODE_PAGE, HOSTCPU_CODE_PAGE_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1);
    if (!code_writable) goto fail;
  }
  memset(code_writable, INT3, HOSTCPU_CODE_PAGE_SIZE);
  setup_step = "mapping the data window";
  if (!map_fixed(HOSTCPU_DATA_BASE, HOSTCPU_DATA_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                 -1))
    goto fail;
  *CONTROL(HOSTCPU_CTL_ENTRY_POINTER) = HOSTCPU_CODE_ENTRY;
  *CONTROL(HOSTCPU_CTL_EXIT_POINTER) = (uint64_t)(uintptr_t)hostcpu_exit_fallthrough;

  setup_step = "installing signal handlers";
  watchdog_signal = SIGRTMIN + 7;
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_sigaction = on_signal;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  sigemptyset(&action.sa_mask);
  sigaddset(&action.sa_mask, watchdog_signal);
  for (size_t i = 0; i < sizeof fault_signals / sizeof fault_signals[0]; i++)
    if (sigaction(fault_signals[i], &action, &previous_actions[fault_signals[i]]) != 0) goto fail;
  if (sigaction(watchdog_signal, &action, &previous_actions[watchdog_signal]) != 0) goto fail;
  setup_step = "";
  return;
fail:
  setup_error = errno ? errno : EINVAL;
}

int hostcpu_setup(void) {
  pthread_once(&setup_once, setup);
  return setup_error;
}

const char *hostcpu_setup_failure(void) { return setup_step; }

#define ALTERNATE_STACK_SIZE (64 * 1024)
static pthread_key_t thread_key;
static pthread_once_t thread_key_once = PTHREAD_ONCE_INIT;
static __thread void *own_alternate_stack;

// At the thread's exit: the timer would outlive it, and the alternate stack is ours to free.
static void release_thread(void *unused) {
  (void)unused;
  timer_delete(watchdog_timer);
  if (own_alternate_stack) {
    stack_t off = {.ss_flags = SS_DISABLE};
    sigaltstack(&off, NULL);
    munmap(own_alternate_stack, ALTERNATE_STACK_SIZE);
  }
}

static void make_thread_key(void) { pthread_key_create(&thread_key, release_thread); }

// Each thread that runs instructions gets an alternate signal stack (unless it has one) and a
// watchdog timer aimed at itself, released when the thread exits.
static int prepare_thread(void) {
  if (thread_ready) return 0;
  pthread_once(&thread_key_once, make_thread_key);
  stack_t current;
  if (sigaltstack(NULL, &current) != 0) return errno;
  if (current.ss_flags & SS_DISABLE) {
    void *memory = mmap(NULL, ALTERNATE_STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) return errno;
    stack_t stack = {.ss_sp = memory, .ss_size = ALTERNATE_STACK_SIZE, .ss_flags = 0};
    if (sigaltstack(&stack, NULL) != 0) {
      munmap(memory, ALTERNATE_STACK_SIZE);
      return errno;
    }
    own_alternate_stack = memory;
  }
  struct sigevent event;
  memset(&event, 0, sizeof event);
  event.sigev_notify = SIGEV_THREAD_ID;
  event.sigev_signo = watchdog_signal;
  event._sigev_un._tid = gettid();
  if (timer_create(CLOCK_THREAD_CPUTIME_ID, &event, &watchdog_timer) != 0) return errno;
  // Threads made by libdispatch start with every signal blocked, and a blocked timer signal
  // would leave a looping instruction running forever. Only this thread's own timer sends
  // it, and faults are synchronous, so unblocking them changes nothing else for the thread.
  sigset_t ours;
  sigemptyset(&ours);
  sigaddset(&ours, watchdog_signal);
  for (size_t i = 0; i < sizeof fault_signals / sizeof fault_signals[0]; i++) sigaddset(&ours, fault_signals[i]);
  int error = pthread_sigmask(SIG_UNBLOCK, &ours, NULL);
  if (error != 0) return error;
  pthread_setspecific(thread_key, (void *)1);  // any non-NULL value makes the destructor run
  thread_ready = true;
  return 0;
}

static void arm(long interval_ms, long first_ms) {
  struct itimerspec spec = {
      .it_interval = {interval_ms / 1000, (interval_ms % 1000) * 1000000},
      .it_value = {first_ms / 1000, (first_ms % 1000) * 1000000},
  };
  timer_settime(watchdog_timer, 0, &spec, NULL);
}

int hostcpu_batch_begin(void) {
  int error = hostcpu_setup();
  if (error == 0) error = prepare_thread();
  if (error != 0) return error;
  in_batch = true;
  arm(HOSTCPU_WATCHDOG_MS / 2, HOSTCPU_WATCHDOG_MS / 2);
  return 0;
}

void hostcpu_batch_end(void) {
  if (!in_batch) return;
  arm(0, 0);
  in_batch = false;
}

int hostcpu_execute(const uint8_t *code, uint32_t length, const hostcpu_registers *input, const uint8_t *window_in,
                    uint8_t *window_out, hostcpu_result *result) {
  if (length == 0 || length > HOSTCPU_MAX_INSTRUCTION_LENGTH) return EINVAL;
  int error = hostcpu_setup();
  if (error == 0) error = prepare_thread();
  if (error != 0) return error;

  pthread_mutex_lock(&run_lock);
  uint8_t *entry = code_writable + ENTRY_OFFSET;
  memcpy(entry, code, length);
  // The exit stub: jmp qword [disp32] (FF /4, ModRM 0x24, SIB 0x25: no base, no index).
  uint32_t pointer = HOSTCPU_CONTROL_BASE + HOSTCPU_CTL_EXIT_POINTER;
  uint8_t stub[HOSTCPU_EXIT_STUB_LENGTH] = {0xFF, 0x24, 0x25, pointer & 0xFF, (pointer >> 8) & 0xFF,
                                            (pointer >> 16) & 0xFF, pointer >> 24};
  memcpy(entry + length, stub, sizeof stub);
  memcpy((void *)(uintptr_t)HOSTCPU_DATA_BASE, window_in, HOSTCPU_DATA_SIZE);
  for (int i = 0; i < 16; i++) *CONTROL(HOSTCPU_CTL_IN_GPRS + 8 * i) = input->gprs[i];
  // Bit 1 is always one; IF is one at CPL 3 and POPF there cannot change it anyway.
  *CONTROL(HOSTCPU_CTL_IN_RFLAGS) = (input->rflags & HOSTCPU_RFLAGS_MASK) | 0x202;
  memcpy((void *)(uintptr_t)(HOSTCPU_CONTROL_BASE + HOSTCPU_CTL_IN_FXSAVE), input->fxsave, HOSTCPU_FXSAVE_SIZE);
  memset(&signal_record, 0, sizeof signal_record);

  run_serial = run_serial + 1;
  if (!in_batch) arm(0, HOSTCPU_WATCHDOG_MS);
  running = 1;
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  int ended_by_signal = hostcpu_enter();
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  running = 0;
  if (!in_batch) arm(0, 0);

  if (ended_by_signal) {
    *result = signal_record;
  } else {
    memset(result, 0, sizeof *result);
    for (int i = 0; i < 16; i++) result->registers.gprs[i] = *CONTROL(HOSTCPU_CTL_OUT_GPRS + 8 * i);
    result->registers.rflags = *CONTROL(HOSTCPU_CTL_OUT_RFLAGS) & HOSTCPU_RFLAGS_MASK;
    memcpy(result->registers.fxsave, (const void *)(uintptr_t)(HOSTCPU_CONTROL_BASE + HOSTCPU_CTL_OUT_FXSAVE),
           HOSTCPU_FXSAVE_SIZE);
    result->rip = HOSTCPU_CODE_ENTRY + length;
    result->end = HOSTCPU_END_FALLTHROUGH;
  }
  memcpy(window_out, (const void *)(uintptr_t)HOSTCPU_DATA_BASE, HOSTCPU_DATA_SIZE);
  memset(entry, INT3, length + HOSTCPU_EXIT_STUB_LENGTH);
  pthread_mutex_unlock(&run_lock);
  return 0;
}
