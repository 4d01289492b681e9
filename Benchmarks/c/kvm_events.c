// Baseline for the event benchmark: a bare C breakpoint-event loop on the flat tight-loop
// guest. Hyperstep's event API (hyperstep-bench events) is compared against it in one run.
//
//   kvm_events GUEST.bin LOAD_ADDRESS BREAKPOINT [sync]
//
// prints "<events> <nanoseconds> <sum of RCX>". With "sync" the registers come from kvm_run
// (KVM_CAP_SYNC_REGS, as Hyperstep's stepper reads them) instead of a KVM_GET_REGS per event.
#include "flat_long_mode.h"

int main(int argc, char **argv) {
    int sync = argc == 5 && strcmp(argv[4], "sync") == 0;
    if (argc != 4 && !sync) {
        fprintf(stderr, "usage: %s GUEST.bin LOAD_ADDRESS BREAKPOINT [sync]\n", argv[0]);
        return 2;
    }
    uint64_t breakpoint = strtoull(argv[3], NULL, 0);
    uint64_t load = strtoull(argv[2], NULL, 0);
    struct flat_guest guest = flat_guest_start(argv[1], load);
    int vcpu = guest.vcpu;
    struct kvm_run *run = guest.run;
    uint8_t *memory = guest.memory;
    struct kvm_regs regs = guest.regs;
    // The least a breakpoint-event loop can do: INT3 at the address; on each hit read the
    // registers (the handler's one register read), put the byte back, single-step it,
    // replant, run on. PVM reports an executed INT3 as an emulation failure at its address.
    uint8_t original = memory[breakpoint];
    memory[breakpoint] = 0xcc;
    struct kvm_guest_debug running = {.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_SW_BP};
    struct kvm_guest_debug stepping = {.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_SW_BP | KVM_GUESTDBG_SINGLESTEP};
    if (ioctl(vcpu, KVM_SET_GUEST_DEBUG, &running) < 0) die("KVM_SET_GUEST_DEBUG");
    if (sync) run->kvm_valid_regs = KVM_SYNC_X86_REGS;
    uint64_t events = 0, checksum = 0, start = now_ns();
    for (;;) {
        if (ioctl(vcpu, KVM_RUN, 0) < 0) die("KVM_RUN");
        int hit = (run->exit_reason == KVM_EXIT_DEBUG && run->debug.arch.exception == 3) ||
                  run->exit_reason == KVM_EXIT_INTERNAL_ERROR;
        if (hit) {
            if (sync)
                regs = run->s.regs.regs;
            else if (ioctl(vcpu, KVM_GET_REGS, &regs) < 0)
                die("KVM_GET_REGS");
            if (regs.rip != breakpoint) {
                fprintf(stderr, "stopped at 0x%llx, not at the breakpoint\n", (unsigned long long)regs.rip);
                return 1;
            }
            checksum += regs.rcx;
            events++;
            memory[breakpoint] = original;
            if (ioctl(vcpu, KVM_SET_GUEST_DEBUG, &stepping) < 0) die("KVM_SET_GUEST_DEBUG");
            if (ioctl(vcpu, KVM_RUN, 0) < 0) die("KVM_RUN");
            if (run->exit_reason != KVM_EXIT_DEBUG) die("step");
            memory[breakpoint] = 0xcc;
            if (ioctl(vcpu, KVM_SET_GUEST_DEBUG, &running) < 0) die("KVM_SET_GUEST_DEBUG");
            continue;
        }
        if (run->exit_reason == KVM_EXIT_IO && run->io.port == 0xf4) break;
        fprintf(stderr, "unexpected exit %u\n", run->exit_reason);
        return 1;
    }
    printf("%llu %llu %llu\n", (unsigned long long)events, (unsigned long long)(now_ns() - start),
           (unsigned long long)checksum);
    return 0;
}
