/// What CPUID reports: exactly the features the interpreter implements, in one table.
///
/// | leaf | register | bits set | meaning |
/// |------|----------|----------|---------|
/// | 0 | EAX | 7 | highest basic leaf |
/// | 0 | EBX EDX ECX | "HyperstepX86" | vendor string (no real vendor: no vendor quirks are assumed) |
/// | 1 | EAX | 0x000006f1 | family 6, model 15, stepping 1 (a neutral signature) |
/// | 1 | EDX | FPU (0), TSC (4), CX8 (8), CMOV (15), FXSR (24), SSE (25), SSE2 (26) | x87 (with FCMOVcc), RDTSC, CMPXCHG8B, CMOVcc, FXSAVE/FXRSTOR, SSE, SSE2 |
/// | 1 | EDX | PSE (3), MSR (5), PAE (6), PGE (13), PAT (16), PSE-36 (17) | 4 MiB pages, RDMSR/WRMSR, PAE paging, global pages, IA32_PAT, 4 MiB pages above 4 GiB |
/// | 1 | EDX | APIC (9), and EBX[31:24] = the initial APIC ID | only on a machine with local APICs (an engine's; not the bare CPU) |
/// | 1 | EDX | DE (2), SEP (11) | CR4.DE (I/O breakpoints, DR4/DR5 #UD), SYSENTER/SYSEXIT |
/// | 7.0 | EBX | SMEP (7), SMAP (20) | CR4.SMEP, CR4.SMAP with STAC/CLAC |
/// | 7.0 | ECX | RDPID (22) | RDPID (IA32_TSC_AUX) |
/// | 1 | ECX | CX16 (13) | CMPXCHG16B |
/// | 8000_0000h | EAX | 8000_0008h | highest extended leaf |
/// | 8000_0001h | EDX | NX (20), LM (29) | execute-disable, 64-bit mode |
/// | 8000_0001h | EDX | SYSCALL (11) | SYSCALL/SYSRET (in 64-bit mode, Intel's rules) |
/// | 8000_0001h | EDX | Page1GB (26), RDTSCP (27) | 1 GiB pages in 4-level paging, RDTSCP and IA32_TSC_AUX |
/// | 8000_0001h | ECX | LAHF-SAHF (0) | LAHF/SAHF in 64-bit mode |
/// | 8000_0008h | EAX | 0x302e | 46 physical, 48 linear address bits |
///
/// Not advertised (so software must not use them): MMX (the integer SIMD forms run on XMM
/// registers only), SSE3 and later, MTRR/MCE/MCA, POPCNT/LZCNT/BMI. Known gaps under the FPU
/// bit: FBLD/FBSTP raise #UD (with Hyperstep's note on stderr), precision control is ignored,
/// and the transcendentals round as the C library does (within the SDM's one unit, not
/// bit-for-bit any CPU's). Linux needs several of the missing features; they come with the
/// instructions. Leaves above the maximum return zeros (Intel
/// returns the highest basic leaf's data there; zeros are simpler), and so do leaves 2-6 and
/// leaf 7's other subleaves.
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

  /// The leaf as a CPU with a local APIC of ID `localAPIC` reports it (nil: no local APIC).
  public static func query(leaf: UInt32, subleaf: UInt32, localAPIC: UInt8?) -> Leaf {
    var answer = query(leaf: leaf, subleaf: subleaf)
    if leaf == 1, let id = localAPIC {
      answer.edx |= 1 << 9
      answer.ebx |= UInt32(id) << 24
    }
    return answer
  }

  public static func query(leaf: UInt32, subleaf: UInt32) -> Leaf {
    switch leaf {
    // "Hype" "rste" "pX86" in EBX, EDX, ECX order, little-endian.
    case 0: Leaf(eax: 7, ebx: 0x6570_7948, ecx: 0x3638_5870, edx: 0x6574_7372)
    case 1:
      Leaf(
        eax: 0x0000_06f1, ebx: 0, ecx: 1 << 13,
        edx: 1 << 0 | 1 << 4 | 1 << 8 | 1 << 15 | 1 << 24 | 1 << 25 | 1 << 26 | 1 << 3 | 1 << 5 | 1 << 6 | 1 << 13
          | 1 << 16 | 1 << 17 | 1 << 2 | 1 << 11)
    case 7 where subleaf == 0: Leaf(eax: 0, ebx: 1 << 7 | 1 << 20, ecx: 1 << 22, edx: 0)
    case 0x8000_0000: Leaf(eax: 0x8000_0008, ebx: 0, ecx: 0, edx: 0)
    case 0x8000_0001: Leaf(eax: 0, ebx: 0, ecx: 1, edx: 1 << 20 | 1 << 29 | 1 << 26 | 1 << 27 | 1 << 11)
    case 0x8000_0008: Leaf(eax: 0x302e, ebx: 0, ecx: 0, edx: 0)
    default: Leaf(eax: 0, ebx: 0, ecx: 0, edx: 0)
    }
  }
}
