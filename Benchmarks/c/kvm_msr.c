// Baseline for the MSR-event benchmark: a bare C loop taking the msr_loop guest's WRMSRs
// as user-space MSR exits (KVM_X86_SET_MSR_FILTER denies the one MSR's writes to the
// kernel), reading the registers once per exit and carrying the write out with
// KVM_SET_MSRS, as Hyperstep must for the write to take effect.
//
//   kvm_msr GUEST.bin LOAD_ADDRESS MSR [sync]   prints "<events> <nanoseconds> <sum of values>"
//
// With "sync" the registers come from kvm_run (KVM_CAP_SYNC_REGS) instead of KVM_GET_REGS.
#include "flat_long_mode.h"

int main(int argc, char **argv) {
    int sync = argc == 5 && strcmp(argv[4], "sync") == 0;
    if (argc != 4 && !sync) {
        fprintf(stderr, "usage: %s GUEST.bin LOAD_ADDRESS MSR [sync]\n", argv[0]);
        return 2;
    }
    uint64_t load = strtoull(argv[2], NULL, 0);
    uint32_t msr = (uint32_t)strtoul(argv[3], NULL, 0);
    struct flat_guest guest = flat_guest_start(argv[1], load);
    struct kvm_run *run = guest.run;
    struct kvm_regs regs;

    struct kvm_enable_cap enable = {.cap = KVM_CAP_X86_USER_SPACE_MSR, .args = {KVM_MSR_EXIT_REASON_FILTER}};
    if (ioctl(guest.vm, KVM_ENABLE_CAP, &enable) < 0) die("KVM_ENABLE_CAP");
    uint8_t deny = 0;
    struct kvm_msr_filter filter = {
        .flags = KVM_MSR_FILTER_DEFAULT_ALLOW,
        .ranges = {{.flags = KVM_MSR_FILTER_WRITE, .nmsrs = 1, .base = msr, .bitmap = &deny}}};
    if (ioctl(guest.vm, KVM_X86_SET_MSR_FILTER, &filter) < 0) die("KVM_X86_SET_MSR_FILTER");
    if (sync) run->kvm_valid_regs = KVM_SYNC_X86_REGS;

    struct {
        struct kvm_msrs header;
        struct kvm_msr_entry entry;
    } write = {.header.nmsrs = 1, .entry.index = msr};
    uint64_t events = 0, checksum = 0, start = now_ns();
    for (;;) {
        if (ioctl(guest.vcpu, KVM_RUN, 0) < 0) die("KVM_RUN");
        if (run->exit_reason == KVM_EXIT_X86_WRMSR && run->msr.index == msr) {
            if (sync)
                regs = run->s.regs.regs;
            else if (ioctl(guest.vcpu, KVM_GET_REGS, &regs) < 0)
                die("KVM_GET_REGS");
            if (regs.rcx != msr) die("RCX is not the MSR written");
            checksum += run->msr.data;
            events++;
            write.entry.data = run->msr.data;
            if (ioctl(guest.vcpu, KVM_SET_MSRS, &write) != 1) die("KVM_SET_MSRS");
            run->msr.error = 0;
            continue;
        }
        if (run->exit_reason == KVM_EXIT_IO && run->io.port == 0xf4) {
            uint8_t value = *((uint8_t *)run + run->io.data_offset);
            if (value != 0x10) {
                fprintf(stderr, "the guest saw a lost MSR write (debug exit 0x%x)\n", value);
                return 1;
            }
            break;
        }
        fprintf(stderr, "unexpected exit %u\n", run->exit_reason);
        return 1;
    }
    printf("%llu %llu %llu\n", (unsigned long long)events, (unsigned long long)(now_ns() - start),
           (unsigned long long)checksum);
    return 0;
}
