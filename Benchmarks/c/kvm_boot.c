// Baseline for the boot benchmark: the least a VMM must do to boot a real-mode flat
// guest to its first exit, with nothing but the KVM API. Hyperstep's boot is compared
// against this in the same run (see Benchmarks/boot.sh).
//
//   kvm_boot GUEST.bin ITERATIONS MEMORY_MIB   prints the total nanoseconds for all boots
#include "baseline.h"

static void boot_once(const uint8_t *guest, size_t guest_size, size_t memory_size) {
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) die("open /dev/kvm");
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) die("KVM_CREATE_VM");
    if (ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000ul) < 0) die("KVM_SET_TSS_ADDR");
    uint8_t *memory = mmap(NULL, memory_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (memory == MAP_FAILED) die("mmap memory");
    struct kvm_userspace_memory_region region = {
        .slot = 0, .guest_phys_addr = 0, .memory_size = memory_size, .userspace_addr = (uint64_t)(uintptr_t)memory};
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) die("KVM_SET_USER_MEMORY_REGION");
    memcpy(memory + 0x7c00, guest, guest_size);

    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0) die("KVM_CREATE_VCPU");
    int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    struct kvm_run *run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED) die("mmap kvm_run");
    struct kvm_sregs sregs;
    if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) die("KVM_GET_SREGS");
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) die("KVM_SET_SREGS");
    struct kvm_regs regs = {.rip = 0x7c00, .rflags = 2};
    if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) die("KVM_SET_REGS");

    for (;;) {
        if (ioctl(vcpu, KVM_RUN, 0) < 0) die("KVM_RUN");
        if (run->exit_reason == KVM_EXIT_IO && run->io.port == 0xf4) break;
        if (run->exit_reason != KVM_EXIT_IO) {
            fprintf(stderr, "unexpected exit %u\n", run->exit_reason);
            exit(1);
        }
    }
    munmap(run, run_size);
    munmap(memory, memory_size);
    close(vcpu);
    close(vm);
    close(kvm);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s GUEST.bin ITERATIONS MEMORY_MIB\n", argv[0]);
        return 2;
    }
    FILE *file = fopen(argv[1], "rb");
    if (!file) die(argv[1]);
    static uint8_t guest[4096];
    size_t size = fread(guest, 1, sizeof guest, file);
    fclose(file);
    long iterations = atol(argv[2]);
    size_t memory = (size_t)atol(argv[3]) << 20;
    uint64_t start = now_ns();
    for (long i = 0; i < iterations; i++) boot_once(guest, size, memory);
    printf("%llu\n", (unsigned long long)(now_ns() - start));
    return 0;
}
