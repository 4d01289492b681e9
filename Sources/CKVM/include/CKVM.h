// CKVM: the C face of <linux/kvm.h> for Swift.
//
// Swift cannot import function-like macros such as _IOW(), so each ioctl
// request number is re-exported here as a constant. ioctl(2) itself is
// variadic, which Swift cannot call, so a fixed-signature wrapper is given.
// This module deliberately holds no logic: everything else lives in `KVM`.
#ifndef HYPERSTEP_CKVM_H
#define HYPERSTEP_CKVM_H

#include <linux/kvm.h>
#include <sys/ioctl.h>

// Request numbers (system ioctls on /dev/kvm).
static const unsigned long CKVM_GET_API_VERSION = KVM_GET_API_VERSION;
static const unsigned long CKVM_CREATE_VM = KVM_CREATE_VM;
static const unsigned long CKVM_CHECK_EXTENSION = KVM_CHECK_EXTENSION;
static const unsigned long CKVM_GET_VCPU_MMAP_SIZE = KVM_GET_VCPU_MMAP_SIZE;
static const unsigned long CKVM_GET_SUPPORTED_CPUID = KVM_GET_SUPPORTED_CPUID;
static const unsigned long CKVM_GET_MSR_INDEX_LIST = KVM_GET_MSR_INDEX_LIST;

// VM ioctls.
static const unsigned long CKVM_SET_USER_MEMORY_REGION = KVM_SET_USER_MEMORY_REGION;
static const unsigned long CKVM_CREATE_VCPU = KVM_CREATE_VCPU;
static const unsigned long CKVM_SET_TSS_ADDR = KVM_SET_TSS_ADDR;
static const unsigned long CKVM_SET_IDENTITY_MAP_ADDR = KVM_SET_IDENTITY_MAP_ADDR;
static const unsigned long CKVM_CREATE_IRQCHIP = KVM_CREATE_IRQCHIP;
static const unsigned long CKVM_CREATE_PIT2 = KVM_CREATE_PIT2;
static const unsigned long CKVM_IRQ_LINE = KVM_IRQ_LINE;
static const unsigned long CKVM_GET_IRQCHIP = KVM_GET_IRQCHIP;
static const unsigned long CKVM_SET_IRQCHIP = KVM_SET_IRQCHIP;
static const unsigned long CKVM_GET_PIT2 = KVM_GET_PIT2;
static const unsigned long CKVM_SET_PIT2 = KVM_SET_PIT2;
static const unsigned long CKVM_REINJECT_CONTROL = KVM_REINJECT_CONTROL;
static const unsigned long CKVM_ENABLE_CAP = KVM_ENABLE_CAP;
static const unsigned long CKVM_X86_SET_MSR_FILTER = KVM_X86_SET_MSR_FILTER;

// vCPU ioctls.
static const unsigned long CKVM_RUN = KVM_RUN;
static const unsigned long CKVM_GET_REGS = KVM_GET_REGS;
static const unsigned long CKVM_SET_REGS = KVM_SET_REGS;
static const unsigned long CKVM_GET_SREGS = KVM_GET_SREGS;
static const unsigned long CKVM_SET_SREGS = KVM_SET_SREGS;
static const unsigned long CKVM_GET_FPU = KVM_GET_FPU;
static const unsigned long CKVM_SET_FPU = KVM_SET_FPU;
static const unsigned long CKVM_GET_XSAVE = KVM_GET_XSAVE;
static const unsigned long CKVM_SET_XSAVE = KVM_SET_XSAVE;
static const unsigned long CKVM_GET_MSRS = KVM_GET_MSRS;
static const unsigned long CKVM_SET_MSRS = KVM_SET_MSRS;
static const unsigned long CKVM_SET_CPUID2 = KVM_SET_CPUID2;
static const unsigned long CKVM_GET_MP_STATE = KVM_GET_MP_STATE;
static const unsigned long CKVM_SET_MP_STATE = KVM_SET_MP_STATE;
static const unsigned long CKVM_SET_GUEST_DEBUG = KVM_SET_GUEST_DEBUG;
static const unsigned long CKVM_GET_VCPU_EVENTS = KVM_GET_VCPU_EVENTS;
static const unsigned long CKVM_SET_VCPU_EVENTS = KVM_SET_VCPU_EVENTS;
static const unsigned long CKVM_GET_DEBUGREGS = KVM_GET_DEBUGREGS;
static const unsigned long CKVM_SET_DEBUGREGS = KVM_SET_DEBUGREGS;
static const unsigned long CKVM_TRANSLATE = KVM_TRANSLATE;
static const unsigned long CKVM_INTERRUPT = KVM_INTERRUPT;
static const unsigned long CKVM_NMI = KVM_NMI;
static const unsigned long CKVM_GET_LAPIC = KVM_GET_LAPIC;
static const unsigned long CKVM_SET_LAPIC = KVM_SET_LAPIC;

// ioctl(2) with its third argument spelled out, so Swift can call it.
static inline int ckvm_ioctl_ptr(int fd, unsigned long request, void *argument) {
    return ioctl(fd, request, argument);
}

static inline int ckvm_ioctl_value(int fd, unsigned long request, unsigned long argument) {
    return ioctl(fd, request, argument);
}

#endif
