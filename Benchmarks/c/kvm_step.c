// Baseline for the stepping benchmark: a bare KVM_GUESTDBG_SINGLESTEP loop on a flat
// long-mode guest, writing the PC of every stop to a file as "0x<hex>\n" — the least any
// tracer must do. Hyperstep's `trace` is compared against it in the same run.
//
//   kvm_step GUEST.bin LOAD_ADDRESS OUTPUT   prints "<steps> <nanoseconds>"
#include "flat_long_mode.h"

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s GUEST.bin LOAD_ADDRESS OUTPUT\n", argv[0]);
        return 2;
    }
    uint64_t load = strtoull(argv[2], NULL, 0);
    struct flat_guest guest = flat_guest_start(argv[1], load);
    int vcpu = guest.vcpu;
    struct kvm_run *run = guest.run;
    struct kvm_guest_debug debug = {.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP};
    if (ioctl(vcpu, KVM_SET_GUEST_DEBUG, &debug) < 0) die("KVM_SET_GUEST_DEBUG");

    FILE *out = fopen(argv[3], "w");
    if (!out) die(argv[3]);
    static char buffer[1 << 16];
    setvbuf(out, buffer, _IOFBF, sizeof buffer);
    uint64_t steps = 0, start = now_ns();
    fprintf(out, "0x%llx\n", (unsigned long long)load);
    for (;;) {
        if (ioctl(vcpu, KVM_RUN, 0) < 0) die("KVM_RUN");
        if (run->exit_reason == KVM_EXIT_DEBUG) {
            fprintf(out, "0x%llx\n", (unsigned long long)run->debug.arch.pc);
            steps++;
            continue;
        }
        if (run->exit_reason == KVM_EXIT_IO && run->io.port == 0xf4) break;
        fprintf(stderr, "unexpected exit %u\n", run->exit_reason);
        return 1;
    }
    fclose(out);
    printf("%llu %llu\n", (unsigned long long)steps, (unsigned long long)(now_ns() - start));
    return 0;
}
