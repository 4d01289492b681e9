/// What CPUID reports: exactly the features the interpreter implements, in one table.
///
/// | leaf | register | bits set | meaning |
/// |------|----------|----------|---------|
/// | 0 | EAX | 1 | highest basic leaf |
/// | 0 | EBX EDX ECX | "HyperstepX86" | vendor string (no real vendor: no vendor quirks are assumed) |
/// | 1 | EAX | 0x000006f1 | family 6, model 15, stepping 1 (a neutral signature) |
/// | 1 | EDX | FPU (0), TSC (4), CX8 (8), CMOV (15), FXSR (24), SSE (25), SSE2 (26) | x87 (with FCMOVcc), RDTSC, CMPXCHG8B, CMOVcc, FXSAVE/FXRSTOR, SSE, SSE2 |
/// | 1 | ECX | CX16 (13) | CMPXCHG16B |
/// | 8000_0000h | EAX | 8000_0008h | highest extended leaf |
/// | 8000_0001h | EDX | NX (20), LM (29) | execute-disable, 64-bit mode |
/// | 8000_0001h | ECX | LAHF-SAHF (0) | LAHF/SAHF in 64-bit mode |
/// | 8000_0008h | EAX | 0x302e | 46 physical, 48 linear address bits |
///
/// Not advertised (so software must not use them): MMX (the integer SIMD forms run on XMM
/// registers only), SSE3 and later, PAE/PSE/PGE/PAT/MTRR/APIC/MSR/SEP/SYSCALL, POPCNT/LZCNT/BMI. Linux needs several
/// of those; they come with the instructions. Leaves above the maximum return zeros (Intel
/// returns the highest basic leaf's data there; with no real leaf beyond 1, zeros are simpler).
public enum CPUIDModel {
  public struct Leaf: Sendable, Equatable {
    public var eax: UInt32, ebx: UInt32, ecx: UInt32, edx: UInt32
    public init(eax: UInt32, ebx: UInt32, ecx: UInt32, edx: UInt32) {
      self.eax = eax
      self.ebx = ebx
      self.ecx = ecx
      self.edx = edx
    }
  }

  public static func query(leaf: UInt32, subleaf: UInt32) -> Leaf {
    switch leaf {
    // "Hype" "rste" "pX86" in EBX, EDX, ECX order, little-endian.
    case 0: Leaf(eax: 1, ebx: 0x6570_7948, ecx: 0x3638_5870, edx: 0x6574_7372)
    case 1:
      Leaf(
        eax: 0x0000_06f1, ebx: 0, ecx: 1 << 13, edx: 1 << 0 | 1 << 4 | 1 << 8 | 1 << 15 | 1 << 24 | 1 << 25 | 1 << 26)
    case 0x8000_0000: Leaf(eax: 0x8000_0008, ebx: 0, ecx: 0, edx: 0)
    case 0x8000_0001: Leaf(eax: 0, ebx: 0, ecx: 1, edx: 1 << 20 | 1 << 29)
    case 0x8000_0008: Leaf(eax: 0x302e, ebx: 0, ecx: 0, edx: 0)
    default: Leaf(eax: 0, ebx: 0, ecx: 0, edx: 0)
    }
  }
}
