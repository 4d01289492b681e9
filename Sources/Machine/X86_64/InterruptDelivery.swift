import GuestMemory
import KVM

/// Delivers an interrupt or exception through the guest's IDT in user space, as the CPU
/// would: gate lookup, privilege and stack switch (TSS RSPn / IST), frame push, flag
/// updates, new CS:RIP.
///
/// Needed because KVM on some hosts (PVM, or SVM without next-RIP support) cannot deliver
/// INT n / INT3 / INTO outside real mode and reports an emulation failure instead; and
/// because a debugger that delivers the event itself knows exactly where the handler
/// starts, so the stop can be there.
public enum InterruptDelivery {
  public struct Failure: Error, Equatable, CustomStringConvertible {
    public let reason: String
    public var description: String { reason }
  }

  /// What was pushed, for callers that patch or check the frame.
  public struct Frame: Equatable, Sendable {
    /// Linear address of the pushed instruction pointer (the frame's lowest slot).
    public var address: UInt64
    /// Linear address of the pushed flags.
    public var flagsAddress: UInt64
    public var handler: UInt64
  }

  /// - Parameters:
  ///   - returnAddress: the RIP to push (the next instruction for INT n, the faulting one for faults).
  ///   - flags: the RFLAGS the guest should see pushed (its own TF, not the host's).
  ///   - software: INT n / INT3 / INTO, which must pass the gate's DPL check.
  public static func deliver(
    vector: UInt8, returnAddress: UInt64, flags: UInt64, software: Bool, registers: inout Registers,
    special: inout SpecialRegisters, memory: GuestRAM
  ) throws -> Frame {
    let walker = PageWalker(
      memory: memory, mode: PagingMode(cr0: special.cr0, cr3: special.cr3, cr4: special.cr4, efer: special.efer))
    if special.cr0 & 1 == 0 {
      return try deliverReal(vector, returnAddress, flags, &registers, &special, walker)
    }
    let long = special.efer & (1 << 10) != 0
    let gateSize: UInt64 = long ? 16 : 8
    guard UInt64(vector) * gateSize + gateSize - 1 <= UInt64(special.idt.limit) else {
      throw Failure(reason: "vector \(vector) is beyond the IDT limit 0x\(String(special.idt.limit, radix: 16))")
    }
    let gate = try walker.read(linear: special.idt.base + UInt64(vector) * gateSize, count: Int(gateSize))
    func u16(_ offset: Int) -> UInt64 { UInt64(gate[offset]) | UInt64(gate[offset + 1]) << 8 }
    func u32(_ offset: Int) -> UInt64 { u16(offset) | u16(offset + 2) << 16 }
    let attributes = gate[5]
    let type = attributes & 0xf
    let gateDPL = (attributes >> 5) & 3
    guard attributes & 0x80 != 0 else { throw Failure(reason: "IDT gate \(vector) is not present") }
    let cpl = UInt8(special.cs.selector & 3)
    if software && gateDPL < cpl {
      throw Failure(reason: "INT \(vector) from ring \(cpl) through a DPL \(gateDPL) gate (#GP)")
    }
    let is32BitGate = type == 0xe || type == 0xf
    guard is32BitGate else {
      throw Failure(
        reason:
          "IDT gate \(vector) has type 0x\(String(type, radix: 16)); only 32/64-bit interrupt and trap gates are delivered"
      )
    }
    let isInterruptGate = type == 0xe
    var handler = u16(0) | u16(6) << 16
    if long { handler |= u32(8) << 32 }
    let selector = UInt16(u16(2))
    var codeSegment = try descriptor(selector, special: special, walker: walker)
    let newCPL = codeSegment.privilegeLevel
    codeSegment.selector = (selector & ~3) | UInt16(newCPL)

    let width: UInt64 = long ? 8 : 4
    var newSS = special.ss
    var stackPointer = registers.rsp
    let ist = long ? Int(gate[4] & 7) : 0
    let switchStack = newCPL < cpl || ist != 0
    if switchStack {
      let tss = special.tr.base
      if long {
        let slot = ist != 0 ? 0x24 + 8 * UInt64(ist - 1) : 4 + 8 * UInt64(newCPL)
        stackPointer = try readUInt64(walker, tss + slot)
        if newCPL < cpl {
          newSS = Segment(
            base: 0, limit: 0xffff_ffff, selector: UInt16(newCPL), type: 3, privilegeLevel: newCPL,
            defaultSize32: true, granularity: true)
        }
      } else {
        stackPointer = try readUInt64(walker, tss + 4 + 8 * UInt64(newCPL)) & 0xffff_ffff
        let ssSelector = UInt16(try readUInt64(walker, tss + 8 + 8 * UInt64(newCPL)) & 0xffff)
        newSS = try descriptor(ssSelector, special: special, walker: walker)
        newSS.selector = ssSelector
      }
    }
    if long { stackPointer &= ~0xf }

    var slots: [UInt64] = []
    if long || switchStack { slots += [UInt64(special.ss.selector), registers.rsp] }
    slots += [flags & ~RFlags.resume, UInt64(special.cs.selector), returnAddress]
    let frameSize = UInt64(slots.count) * width
    let frameBase = (long ? 0 : newSS.base) + ((stackPointer &- frameSize) & (long ? .max : 0xffff_ffff))
    var bytes: [UInt8] = []
    for value in slots.reversed() {  // lowest address first: RIP, CS, RFLAGS, [RSP, SS]
      for index in 0..<Int(width) { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(index)))) }
    }
    try walker.write(bytes, linear: frameBase)

    registers.rsp = stackPointer &- frameSize
    if !long { registers.rsp &= 0xffff_ffff }
    var newFlags = flags & ~(RFlags.trap | RFlags.nestedTask | RFlags.resume | RFlags.virtual8086)
    if isInterruptGate { newFlags &= ~RFlags.interruptEnable }
    registers.rflags = newFlags
    registers.rip = long ? handler : handler & 0xffff_ffff
    special.cs = codeSegment
    special.ss = newSS
    return Frame(address: frameBase, flagsAddress: frameBase + 2 * width, handler: codeSegment.base + registers.rip)
  }

  private static func deliverReal(
    _ vector: UInt8, _ returnAddress: UInt64, _ flags: UInt64, _ registers: inout Registers,
    _ special: inout SpecialRegisters, _ walker: PageWalker
  ) throws -> Frame {
    let entry = try walker.read(linear: special.idt.base + UInt64(vector) * 4, count: 4)
    let offset = UInt64(entry[0]) | UInt64(entry[1]) << 8
    let segment = UInt16(entry[2]) | UInt16(entry[3]) << 8
    let values = [returnAddress & 0xffff, UInt64(special.cs.selector), flags & 0xffff]  // lowest address first
    let sp = (registers.rsp &- 6) & 0xffff
    let base = special.ss.base + sp
    try walker.write(values.flatMap { [UInt8($0 & 0xff), UInt8($0 >> 8)] }, linear: base)
    registers.rsp = sp
    registers.rflags = flags & ~(RFlags.interruptEnable | RFlags.trap | RFlags.alignmentCheck)
    registers.rip = offset
    special.cs.selector = segment
    special.cs.base = UInt64(segment) << 4
    return Frame(address: base, flagsAddress: base + 4, handler: special.cs.base + offset)
  }

  /// The hidden-cache form of a GDT (or LDT) descriptor.
  public static func descriptor(_ selector: UInt16, special: SpecialRegisters, walker: PageWalker) throws -> Segment {
    let table = selector & 4 != 0 ? special.ldt : Segment(base: special.gdt.base, limit: UInt32(special.gdt.limit))
    let index = UInt64(selector & ~7)
    guard index != 0 || selector & 4 != 0, index + 7 <= UInt64(table.limit) else {
      throw Failure(reason: "selector 0x\(String(selector, radix: 16)) is outside its descriptor table")
    }
    let raw = try readUInt64(walker, table.base + index)
    let limit = UInt32((raw & 0xffff) | ((raw >> 32) & 0xf_0000))
    let granular = raw & (1 << 55) != 0
    return Segment(
      base: ((raw >> 16) & 0xff_ffff) | ((raw >> 32) & 0xff00_0000), limit: granular ? (limit << 12) | 0xfff : limit,
      selector: selector, type: UInt8((raw >> 40) & 0xf), present: raw & (1 << 47) != 0,
      privilegeLevel: UInt8((raw >> 45) & 3), defaultSize32: raw & (1 << 54) != 0, isCodeOrData: raw & (1 << 44) != 0,
      longMode: raw & (1 << 53) != 0, granularity: granular, available: raw & (1 << 52) != 0)
  }

  static func readUInt64(_ walker: PageWalker, _ linear: UInt64) throws -> UInt64 {
    try walker.read(linear: linear, count: 8).enumerated().reduce(0) {
      $0 | UInt64($1.element) << (8 * UInt64($1.offset))
    }
  }
}
