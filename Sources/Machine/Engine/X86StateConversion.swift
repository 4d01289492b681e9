import KVM
import X86

/// The interpreter's `X86State` seen as the register values the rest of Hyperstep uses
/// (`Registers`, `SpecialRegisters`, `FPURegisters`, `DebugRegisters`), field by field, in
/// both directions: what one engine's state reads, the other's writes back unchanged.
extension X86State {
  public var registers: Registers {
    var r = Registers()
    r.rax = self[.rax]
    r.rcx = self[.rcx]
    r.rdx = self[.rdx]
    r.rbx = self[.rbx]
    r.rsp = self[.rsp]
    r.rbp = self[.rbp]
    r.rsi = self[.rsi]
    r.rdi = self[.rdi]
    r.r8 = self[.r8]
    r.r9 = self[.r9]
    r.r10 = self[.r10]
    r.r11 = self[.r11]
    r.r12 = self[.r12]
    r.r13 = self[.r13]
    r.r14 = self[.r14]
    r.r15 = self[.r15]
    r.rip = rip
    r.rflags = rflags
    return r
  }

  mutating func apply(_ r: Registers) {
    self[.rax] = r.rax
    self[.rcx] = r.rcx
    self[.rdx] = r.rdx
    self[.rbx] = r.rbx
    self[.rsp] = r.rsp
    self[.rbp] = r.rbp
    self[.rsi] = r.rsi
    self[.rdi] = r.rdi
    self[.r8] = r.r8
    self[.r9] = r.r9
    self[.r10] = r.r10
    self[.r11] = r.r11
    self[.r12] = r.r12
    self[.r13] = r.r13
    self[.r14] = r.r14
    self[.r15] = r.r15
    rip = r.rip
    rflags = r.rflags
  }

  public var specialRegisters: SpecialRegisters {
    var s = SpecialRegisters()
    s.es = Segment(self[.es])
    s.cs = Segment(self[.cs])
    s.ss = Segment(self[.ss])
    s.ds = Segment(self[.ds])
    s.fs = Segment(self[.fs])
    s.gs = Segment(self[.gs])
    s.ldt = Segment(ldtr)
    s.tr = Segment(tr)
    s.gdt = DescriptorTable(base: gdtr.base, limit: gdtr.limit)
    s.idt = DescriptorTable(base: idtr.base, limit: idtr.limit)
    s.cr0 = cr0
    s.cr2 = cr2
    s.cr3 = cr3
    s.cr4 = cr4
    s.cr8 = cr8
    s.efer = efer
    s.apicBase = msr.apicBase
    return s
  }

  mutating func apply(_ s: SpecialRegisters) {
    self[.es] = SegmentRegister(s.es)
    self[.cs] = SegmentRegister(s.cs)
    self[.ss] = SegmentRegister(s.ss)
    self[.ds] = SegmentRegister(s.ds)
    self[.fs] = SegmentRegister(s.fs)
    self[.gs] = SegmentRegister(s.gs)
    ldtr = SegmentRegister(s.ldt)
    tr = SegmentRegister(s.tr)
    gdtr = DescriptorTableRegister(base: s.gdt.base, limit: s.gdt.limit)
    idtr = DescriptorTableRegister(base: s.idt.base, limit: s.idt.limit)
    cr0 = s.cr0
    cr2 = s.cr2
    cr3 = s.cr3
    cr4 = s.cr4
    cr8 = s.cr8
    efer = s.efer
    // KVM reports 0 for the APIC base of a VM without an in-kernel APIC: keep the reset value then.
    if s.apicBase != 0 { msr.apicBase = s.apicBase }
  }

  public var fpuRegisters: FPURegisters {
    var f = FPURegisters()
    for index in 0..<8 {
      let register = fpu.st[index]
      f.st[index] =
        (0..<8).map { UInt8(truncatingIfNeeded: register.significand >> (8 * $0)) }
        + [UInt8(truncatingIfNeeded: register.signExponent), UInt8(truncatingIfNeeded: register.signExponent >> 8)]
    }
    for index in 0..<16 {
      let value = fpu.xmm[index]
      f.xmm[index] = (0..<16).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
    }
    f.controlWord = fpu.fcw
    f.statusWord = fpu.fsw
    f.abridgedTag = fpu.ftw
    f.lastOpcode = fpu.lastOpcode
    f.lastInstructionPointer = fpu.lastInstructionPointer
    f.lastDataPointer = fpu.lastDataPointer
    f.mxcsr = fpu.mxcsr
    return f
  }

  mutating func apply(_ f: FPURegisters) {
    for index in 0..<8 where f.st[index].count == 10 {
      let bytes = f.st[index]
      let significand = (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[$1]) << (8 * $1) }
      fpu.st[index] = X87Register(significand: significand, signExponent: UInt16(bytes[8]) | UInt16(bytes[9]) << 8)
    }
    for index in 0..<16 where f.xmm[index].count == 16 {
      let bytes = f.xmm[index]
      fpu.xmm[index] = (0..<16).reduce(UInt128(0)) { $0 | UInt128(bytes[$1]) << (8 * $1) }
    }
    fpu.fcw = f.controlWord
    fpu.fsw = f.statusWord
    fpu.ftw = f.abridgedTag
    fpu.lastOpcode = f.lastOpcode
    fpu.lastInstructionPointer = f.lastInstructionPointer
    fpu.lastDataPointer = f.lastDataPointer
    fpu.mxcsr = f.mxcsr
  }

  public var debugRegisters: DebugRegisters {
    DebugRegisters(address: (dr[0], dr[1], dr[2], dr[3]), dr6: dr6, dr7: dr7)
  }

  mutating func apply(_ d: DebugRegisters) {
    dr[0] = d.address.0
    dr[1] = d.address.1
    dr[2] = d.address.2
    dr[3] = d.address.3
    dr6 = d.dr6
    dr7 = d.dr7
  }

  /// The MSRs the interpreter's state holds, by architectural number; nil for any other.
  func modelSpecificRegister(_ index: UInt32) -> UInt64? {
    switch index {
    case MSRIndex.tsc: tsc
    case MSRIndex.apicBase: msr.apicBase
    case MSRIndex.sysenterCS: msr.sysenterCS
    case MSRIndex.sysenterESP: msr.sysenterESP
    case MSRIndex.sysenterEIP: msr.sysenterEIP
    case MSRIndex.miscEnable: msr.miscEnable
    case MSRIndex.pat: msr.pat
    case MSRIndex.efer: efer
    case MSRIndex.star: msr.star
    case MSRIndex.lstar: msr.lstar
    case MSRIndex.cstar: msr.cstar
    case MSRIndex.sfmask: msr.sfmask
    case MSRIndex.fsBase: fsBase
    case MSRIndex.gsBase: gsBase
    case MSRIndex.kernelGSBase: msr.kernelGSBase
    case MSRIndex.tscAux: msr.tscAux
    default: nil
    }
  }

  /// Sets one MSR the state holds; false for any other (nothing changes then).
  mutating func setModelSpecificRegister(_ index: UInt32, _ value: UInt64) -> Bool {
    switch index {
    case MSRIndex.tsc: tsc = value
    case MSRIndex.apicBase: msr.apicBase = value
    case MSRIndex.sysenterCS: msr.sysenterCS = value
    case MSRIndex.sysenterESP: msr.sysenterESP = value
    case MSRIndex.sysenterEIP: msr.sysenterEIP = value
    case MSRIndex.miscEnable: msr.miscEnable = value
    case MSRIndex.pat: msr.pat = value
    case MSRIndex.efer: efer = value
    case MSRIndex.star: msr.star = value
    case MSRIndex.lstar: msr.lstar = value
    case MSRIndex.cstar: msr.cstar = value
    case MSRIndex.sfmask: msr.sfmask = value
    case MSRIndex.fsBase: fsBase = value
    case MSRIndex.gsBase: gsBase = value
    case MSRIndex.kernelGSBase: msr.kernelGSBase = value
    case MSRIndex.tscAux: msr.tscAux = value
    default: return false
    }
    return true
  }
}

extension Segment {
  init(_ s: SegmentRegister) {
    self.init(
      base: s.base, limit: s.limit, selector: s.selector, type: s.type, present: s.present, privilegeLevel: s.dpl,
      defaultSize32: s.defaultBig, isCodeOrData: s.isCodeOrData, longMode: s.longMode, granularity: s.granularity,
      available: s.available, unusable: s.unusable)
  }
}

extension SegmentRegister {
  init(_ s: Segment) {
    self.init(
      selector: s.selector, base: s.base, limit: s.limit, type: s.type, isCodeOrData: s.isCodeOrData,
      dpl: s.privilegeLevel, present: s.present, longMode: s.longMode, defaultBig: s.defaultSize32,
      granularity: s.granularity, available: s.available, unusable: s.unusable)
  }
}
