// Shared by the C baselines that run a flat long-mode guest (kvm_step.c, kvm_events.c,
// kvm_msr.c): the least set-up KVM needs for one, with nothing a baseline does not measure.
#ifndef FLAT_LONG_MODE_H
#define FLAT_LONG_MODE_H
#include "baseline.h"

struct flat_guest {
    int vm;
    int vcpu;
    struct kvm_run *run;
    uint8_t *memory;
    struct kvm_regs regs;
};

// A VM with 64 MiB, the guest file at `load`, an identity map of the first 1 GiB, and one
// vCPU in 64-bit mode about to run from `load`.
static struct flat_guest flat_guest_start(const char *path, uint64_t load) {
    struct flat_guest g;
    const size_t memory_size = 64 << 20;
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) die("open /dev/kvm");
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) die("KVM_CREATE_VM");
    uint8_t *memory = mmap(NULL, memory_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    struct kvm_userspace_memory_region region = {
        .slot = 0, .memory_size = memory_size, .userspace_addr = (uint64_t)(uintptr_t)memory};
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) die("KVM_SET_USER_MEMORY_REGION");
    FILE *guest = fopen(path, "rb");
    if (!guest) die(path);
    fread(memory + load, 1, memory_size - load, guest);
    fclose(guest);

    // Identity map of the first 1 GiB with 2 MiB pages.
    uint64_t *pml4 = (uint64_t *)(memory + 0x9000), *pdpt = (uint64_t *)(memory + 0xa000), *pd = (uint64_t *)(memory + 0xb000);
    pml4[0] = 0xa000 | 3;
    pdpt[0] = 0xb000 | 3;
    for (int i = 0; i < 512; i++) pd[i] = ((uint64_t)i << 21) | 0x83;

    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0) die("KVM_CREATE_VCPU");
    struct {
        struct kvm_cpuid2 header;
        struct kvm_cpuid_entry2 entries[256];
    } cpuid = {.header.nent = 256};
    if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, &cpuid) < 0) die("KVM_GET_SUPPORTED_CPUID");
    if (ioctl(vcpu, KVM_SET_CPUID2, &cpuid) < 0) die("KVM_SET_CPUID2");
    int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    struct kvm_run *run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    struct kvm_sregs sregs;
    if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) die("KVM_GET_SREGS");
    struct kvm_segment code = {.base = 0, .limit = 0xffffffff, .selector = 0x18, .type = 11, .present = 1, .s = 1, .l = 1, .g = 1};
    struct kvm_segment data = {.base = 0, .limit = 0xffffffff, .selector = 0x10, .type = 3, .present = 1, .s = 1, .db = 1, .g = 1};
    sregs.cs = code;
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
    sregs.cr3 = 0x9000;
    sregs.cr4 = 1 << 5;
    sregs.cr0 = 0x80050033;
    sregs.efer = 0x500;
    if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) die("KVM_SET_SREGS");
    struct kvm_regs regs = {.rip = load, .rflags = 2, .rsp = 0x7000};
    if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) die("KVM_SET_REGS");
    g.vm = vm;
    g.vcpu = vcpu;
    g.run = run;
    g.memory = memory;
    g.regs = regs;
    return g;
}

#endif
