// The AArch64 test guests: Guests/aarch64/*.S, assembled by the GuestBuilder plugin into
// `AArch64Guests` (generated), each also bootable by `qemu-system-aarch64 -M virt -kernel`.
