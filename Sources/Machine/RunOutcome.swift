import KVM

/// How a run of the machine ended.
public enum RunOutcome: Sendable, Equatable {
  /// The guest wrote `value` to the isa-debug-exit port.
  case debugExit(value: UInt32, status: Int32)
  /// A vCPU executed HLT with interrupts disabled and nothing else was running.
  case halted
  /// HLT with interrupts enabled on a machine with no interrupt source: it would sleep forever.
  case haltedForever(CPUState)
  /// Triple fault (or another shutdown the guest caused).
  case tripleFault(CPUState)
  /// KVM could not emulate an instruction or failed internally.
  case internalError(description: String, CPUState)
  /// VM entry was refused by the hardware.
  case entryFailed(reason: UInt64, CPUState)
  /// The --timeout elapsed first.
  case timedOut
  /// The guest asked to power off or reset.
  case powerOff
  case reset
  /// A Linux guest's kernel panicked: its `---[ end Kernel panic - not syncing: REASON ]---`
  /// line appeared on the serial console (KernelPanicWatch.swift). The panic text is on the
  /// console above it; the kernel would otherwise spin or reboot, depending on `panic=`.
  case kernelPanic(reason: String)

  /// The snapshot of the vCPU that crashed or hung the guest; nil for an orderly end.
  public var crashState: CPUState? {
    switch self {
    case .tripleFault(let state), .internalError(_, let state), .entryFailed(_, let state),
      .haltedForever(let state):
      return state
    case .debugExit, .halted, .timedOut, .powerOff, .reset, .kernelPanic:
      return nil
    }
  }
}

/// A snapshot of one vCPU for error reports.
public struct CPUState: Sendable, Equatable {
  public var vcpu: Int
  public var registers: Registers
  public var special: SpecialRegisters
  /// Why the registers above could not be read (they are then zero and not shown).
  public var unreadable: String?

  public init(vcpu: Int, registers: Registers, special: SpecialRegisters) {
    self.vcpu = vcpu
    self.registers = registers
    self.special = special
  }

  /// A multi-line register dump in the style of QEMU's `info registers`.
  public var dump: String {
    if let unreadable { return "vCPU \(vcpu): the registers could not be read: \(unreadable)" }
    let r = registers
    let s = special
    func h(_ value: UInt64) -> String {
      let digits = String(value, radix: 16)
      return String(repeating: "0", count: max(0, 16 - digits.count)) + digits
    }
    func seg(_ name: String, _ segment: Segment) -> String {
      "\(name) =\(String(segment.selector, radix: 16)) base=\(h(segment.base)) limit=\(String(segment.limit, radix: 16)) type=\(segment.type)"
        + (segment.longMode ? " L" : "") + (segment.defaultSize32 ? " D" : "")
    }
    return """
      vCPU \(vcpu):
      RAX=\(h(r.rax)) RBX=\(h(r.rbx)) RCX=\(h(r.rcx)) RDX=\(h(r.rdx))
      RSI=\(h(r.rsi)) RDI=\(h(r.rdi)) RBP=\(h(r.rbp)) RSP=\(h(r.rsp))
      R8 =\(h(r.r8)) R9 =\(h(r.r9)) R10=\(h(r.r10)) R11=\(h(r.r11))
      R12=\(h(r.r12)) R13=\(h(r.r13)) R14=\(h(r.r14)) R15=\(h(r.r15))
      RIP=\(h(r.rip)) RFLAGS=\(h(r.rflags))
      \(seg("CS", s.cs))
      \(seg("SS", s.ss))
      \(seg("DS", s.ds))
      CR0=\(h(s.cr0)) CR2=\(h(s.cr2)) CR3=\(h(s.cr3)) CR4=\(h(s.cr4)) EFER=\(h(s.efer))
      GDT=\(h(s.gdt.base)):\(String(s.gdt.limit, radix: 16)) IDT=\(h(s.idt.base)):\(String(s.idt.limit, radix: 16))
      """
  }
}
