/// GPR indices in encoding order (ModRM reg/rm, SIB, opcode+r, with REX.R/X/B as bit 3).
public enum GPR: UInt8, Sendable, CaseIterable {
  case rax = 0
  case rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8, r9, r10, r11, r12, r13, r14, r15
}

/// One x87 register: the 80-bit extended format as a 64-bit significand and a 16-bit sign+exponent.
public struct X87Register: Sendable, Equatable {
  public var significand: UInt64
  public var signExponent: UInt16
  public init(significand: UInt64 = 0, signExponent: UInt16 = 0) {
    self.significand = significand
    self.signExponent = signExponent
  }
}

/// x87 and SSE register storage (FXSAVE's contents). Storage only: no instruction uses it yet.
public struct FloatingPointState: Sendable, Equatable {
  /// ST0-ST7 in physical register order (R0-R7), as FXSAVE stores them relative to TOP.
  public var st: InlineArray<8, X87Register> = .init(repeating: X87Register())
  /// FCW after FNINIT: all exceptions masked, 64-bit precision, round to nearest.
  public var fcw: UInt16 = 0x037f
  public var fsw: UInt16 = 0
  /// Abridged tag word as in FXSAVE (one bit per register, 1 = valid); 0 = all empty.
  public var ftw: UInt8 = 0
  public var lastOpcode: UInt16 = 0
  public var lastInstructionPointer: UInt64 = 0
  public var lastDataPointer: UInt64 = 0
  public var xmm: InlineArray<16, UInt128> = .init(repeating: 0)
  /// MXCSR after reset: all exceptions masked, round to nearest.
  public var mxcsr: UInt32 = 0x1f80

  public init() {}

  public static func == (lhs: FloatingPointState, rhs: FloatingPointState) -> Bool {
    for index in 0..<8 where lhs.st[index] != rhs.st[index] { return false }
    for index in 0..<16 where lhs.xmm[index] != rhs.xmm[index] { return false }
    return lhs.fcw == rhs.fcw && lhs.fsw == rhs.fsw && lhs.ftw == rhs.ftw && lhs.lastOpcode == rhs.lastOpcode
      && lhs.lastInstructionPointer == rhs.lastInstructionPointer && lhs.lastDataPointer == rhs.lastDataPointer
      && lhs.mxcsr == rhs.mxcsr
  }
}

/// The model-specific registers Linux uses, by name (their architectural numbers in `MSRIndex`).
public struct ModelSpecificRegisters: Sendable, Equatable {
  public var star: UInt64 = 0
  public var lstar: UInt64 = 0
  public var cstar: UInt64 = 0
  /// IA32_FMASK (SFMASK): RFLAGS bits SYSCALL clears.
  public var sfmask: UInt64 = 0
  public var kernelGSBase: UInt64 = 0
  public var sysenterCS: UInt64 = 0
  public var sysenterESP: UInt64 = 0
  public var sysenterEIP: UInt64 = 0
  /// IA32_PAT at its power-up value (SDM Vol. 3, 13.12.4).
  public var pat: UInt64 = 0x0007_0406_0007_0406
  public var apicBase: UInt64 = 0xfee0_0900
  public var tscAux: UInt64 = 0
  public var miscEnable: UInt64 = 1
  public init() {}
}

/// Architectural MSR numbers (SDM Vol. 4).
public enum MSRIndex {
  public static let tsc: UInt32 = 0x10
  public static let apicBase: UInt32 = 0x1b
  public static let sysenterCS: UInt32 = 0x174
  public static let sysenterESP: UInt32 = 0x175
  public static let sysenterEIP: UInt32 = 0x176
  public static let miscEnable: UInt32 = 0x1a0
  public static let pat: UInt32 = 0x277
  public static let efer: UInt32 = 0xc000_0080
  public static let star: UInt32 = 0xc000_0081
  public static let lstar: UInt32 = 0xc000_0082
  public static let cstar: UInt32 = 0xc000_0083
  public static let sfmask: UInt32 = 0xc000_0084
  public static let fsBase: UInt32 = 0xc000_0100
  public static let gsBase: UInt32 = 0xc000_0101
  public static let kernelGSBase: UInt32 = 0xc000_0102
  public static let tscAux: UInt32 = 0xc000_0103
}

/// Control-register and EFER bits the interpreter consults (SDM Vol. 3, 2.5 and 2.2.1).
public enum ControlBit {
  public static let cr0PE: UInt64 = 1 << 0
  public static let cr0WP: UInt64 = 1 << 16
  /// Alignment mask: with RFLAGS.AC, misaligned accesses at CPL 3 raise #AC.
  public static let cr0AM: UInt64 = 1 << 18
  public static let cr0PG: UInt64 = 1 << 31
  public static let cr4TSD: UInt64 = 1 << 2
  public static let cr4PAE: UInt64 = 1 << 5
  public static let cr4PGE: UInt64 = 1 << 7
  public static let cr4SMEP: UInt64 = 1 << 20
  public static let cr4SMAP: UInt64 = 1 << 21
  public static let eferSCE: UInt64 = 1 << 0
  public static let eferLME: UInt64 = 1 << 8
  public static let eferLMA: UInt64 = 1 << 10
  public static let eferNXE: UInt64 = 1 << 11
}

/// The whole architectural state of one x86-64 logical processor, as a value.
///
/// Everything an engine boundary needs to read or write is here; KVM's `Registers`,
/// `SpecialRegisters` and FPU state convert field by field. RFLAGS is kept partly lazily (the
/// last arithmetic operation's operands, see LazyFlags.swift); read and write it through
/// `rflags`, which always gives the architectural value.
public struct X86State: Sendable {
  /// RAX..R15 in encoding order (index with `GPR.rawValue`).
  public var gpr: InlineArray<16, UInt64> = .init(repeating: 0)
  public var rip: UInt64 = 0

  /// RFLAGS except, while `lazy.op != .none`, its six status flags (computed from `lazy`).
  var flagBits: UInt64 = RFlagsBit.reserved1
  var lazy = LazyFlags()

  /// ES CS SS DS FS GS in encoding order (index with `SegmentName.rawValue`).
  public var segments: InlineArray<6, SegmentRegister> = .init(repeating: SegmentRegister()) {
    didSet { refreshSegmentBounds() }
  }
  /// What each segment register allows a data access, derived from `segments` and CR0.PE
  /// (SegmentBounds.swift). Their observers refresh it on every write, whoever writes, so it
  /// can never be stale.
  private(set) var segmentBounds: InlineArray<6, SegmentBounds> = .init(repeating: SegmentBounds())
  /// The low bits of a data-page cache tag for the current privilege (`TLB.dataTag`): 1, or 3
  /// at CPL 3, whose rights differ. Derived from CR0.PE and CS.DPL with `segmentBounds`, by the
  /// same observers, so a privilege change can never leave the cache serving the old rights.
  private(set) var dataTagPrivilege: UInt64 = 1
  public var ldtr = SegmentRegister(type: 2, isCodeOrData: false)
  public var tr = SegmentRegister(type: 11, isCodeOrData: false)
  public var gdtr = DescriptorTableRegister()
  public var idtr = DescriptorTableRegister()

  /// CR0 at reset: ET and CD/NW set, protection and paging off.
  public var cr0: UInt64 = 0x6000_0010 {
    didSet { refreshSegmentBounds() }
  }
  public var cr2: UInt64 = 0
  public var cr3: UInt64 = 0
  public var cr4: UInt64 = 0
  /// CR8: the task-priority register's bits 7:4.
  public var cr8: UInt64 = 0
  public var efer: UInt64 = 0
  public var msr = ModelSpecificRegisters()
  /// The time-stamp counter; the interpreter advances it by one per retired instruction.
  public var tsc: UInt64 = 0

  /// DR0-DR3 breakpoint addresses, DR6 status, DR7 control (DR4/DR5 alias DR6/DR7).
  public var dr: InlineArray<4, UInt64> = .init(repeating: 0)
  public var dr6: UInt64 = 0xffff_0ff0
  public var dr7: UInt64 = 0x400

  public var fpu = FloatingPointState()

  /// Interrupts are held off for one instruction after STI (or MOV SS / POP SS).
  public var interruptShadow = false
  /// HLT executed and no interrupt has woken the processor yet.
  public var halted = false
  /// The interrupt shadow (above) was opened by MOV SS or POP SS, not STI: it also holds off
  /// NMIs and debug traps for one instruction (SDM Vol. 3, 6.8.3). Meaningful only while
  /// `interruptShadow` is set (so the step loop need not clear it).
  public var stackSegmentShadow = false
  /// An NMI was delivered and no IRET has executed since: further NMIs wait (SDM Vol. 3, 6.7.1).
  public var nmiBlocked = false

  public init() { refreshSegmentBounds() }

  private mutating func refreshSegmentBounds() {
    let protectedMode = cr0 & ControlBit.cr0PE != 0
    for index in 0..<6 { segmentBounds[index] = SegmentBounds(segments[index], protectedMode: protectedMode) }
    // CPL 3 as `X86Core.privilegeLevel` computes it.
    dataTagPrivilege = protectedMode && segments[Int(SegmentName.cs.rawValue)].dpl == 3 ? 3 : 1
  }

  // MARK: Named accessors

  public subscript(_ register: GPR) -> UInt64 {
    get { gpr[Int(register.rawValue)] }
    set { gpr[Int(register.rawValue)] = newValue }
  }

  public subscript(_ segment: SegmentName) -> SegmentRegister {
    get { segments[Int(segment.rawValue)] }
    set { segments[Int(segment.rawValue)] = newValue }
  }

  public var fsBase: UInt64 {
    get { segments[Int(SegmentName.fs.rawValue)].base }
    set { segments[Int(SegmentName.fs.rawValue)].base = newValue }
  }

  public var gsBase: UInt64 {
    get { segments[Int(SegmentName.gs.rawValue)].base }
    set { segments[Int(SegmentName.gs.rawValue)].base = newValue }
  }

  /// The architectural RFLAGS value (bit 1 always set).
  public var rflags: UInt64 {
    get {
      if lazy.op == .none { return flagBits | RFlagsBit.reserved1 }
      return (flagBits & ~RFlagsBit.status) | lazy.statusFlags | RFlagsBit.reserved1
    }
    set {
      flagBits = newValue | RFlagsBit.reserved1
      lazy.op = .none
    }
  }

  /// Current privilege level: CS.DPL in protected mode (SS.DPL equals it), 0 in real mode.
  public var cpl: UInt8 {
    cr0 & ControlBit.cr0PE == 0 ? 0 : segments[Int(SegmentName.cs.rawValue)].dpl
  }

  /// IA-32e mode is active (EFER.LMA).
  public var longModeActive: Bool { efer & ControlBit.eferLMA != 0 }

  /// The code size the decoder uses: 64-bit when LMA and CS.L, else CS.D selects 32 or 16.
  public var codeMode: CodeMode {
    let cs = segments[Int(SegmentName.cs.rawValue)]
    if longModeActive && cs.longMode { return .bits64 }
    return cs.defaultBig && cr0 & ControlBit.cr0PE != 0 ? .bits32 : .bits16
  }
}

/// The default operand and address size of the code being executed.
public enum CodeMode: UInt8, Sendable {
  case bits16 = 2
  case bits32 = 4
  case bits64 = 8
}
