import GuestMemory
import KVM

/// IRET carried out in user space: some hosts emulate IRET for the guest and lose the
/// single-step trap after it (PVM does), so the stepper retires IRET itself.
extension InterruptDelivery {
  /// Pops the frame and loads RIP, CS, RFLAGS (and RSP, SS where the mode says so).
  /// Returns the flags loaded, so the caller knows the guest's new TF.
  public static func interruptReturn(
    operandBytes width: Int, registers: inout Registers, special: inout SpecialRegisters, memory: GuestRAM
  ) throws -> UInt64 {
    let walker = PageWalker(
      memory: memory, mode: PagingMode(cr0: special.cr0, cr3: special.cr3, cr4: special.cr4, efer: special.efer))
    let w = UInt64(width)
    let long = special.efer & (1 << 10) != 0 && special.cs.longMode
    let stackMask: UInt64 = long ? .max : (special.ss.defaultSize32 ? 0xffff_ffff : 0xffff)
    func pop(_ index: UInt64) throws -> UInt64 {
      let address = special.ss.base &+ ((registers.rsp &+ index * w) & stackMask)
      let bytes = try walker.read(linear: address, count: width)
      return bytes.enumerated().reduce(0) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
    }
    let newIP = try pop(0)
    let newCS = UInt16(try pop(1) & 0xffff)
    let poppedFlags = try pop(2)

    if special.cr0 & 1 == 0 {  // real mode
      registers.rip = newIP & 0xffff
      special.cs.selector = newCS
      special.cs.base = UInt64(newCS) << 4
      registers.rflags = (registers.rflags & ~0xffff) | (poppedFlags & 0xffff) | 0x2
      registers.rsp = (registers.rsp & ~0xffff) | ((registers.rsp &+ 3 * w) & 0xffff)
      return registers.rflags
    }
    guard poppedFlags & RFlags.nestedTask == 0 || long else {
      throw Failure(reason: "IRET with NT set (task return) is not supported")
    }
    guard poppedFlags & RFlags.virtual8086 == 0 else {
      throw Failure(reason: "IRET to virtual-8086 mode is not supported")
    }
    let cpl = UInt64(special.cs.selector & 3)
    let newCPL = UInt64(newCS & 3)
    var codeSegment = try descriptor(newCS, special: special, walker: walker)
    codeSegment.selector = newCS

    // Which flags IRET may change depends on the privilege it runs at.
    var changeable: UInt64 = 0x3f_7fd5 & ~RFlags.virtual8086  // CF PF AF ZF SF TF DF OF NT RF AC ID, and IF/IOPL below
    changeable &= ~(RFlags.interruptEnable | RFlags.ioPrivilegeLevel)
    if cpl == 0 { changeable |= RFlags.ioPrivilegeLevel }
    let iopl = (registers.rflags >> 12) & 3
    if cpl <= iopl { changeable |= RFlags.interruptEnable }
    if width == 2 { changeable &= 0xffff }
    registers.rflags = (registers.rflags & ~changeable) | (poppedFlags & changeable) | 0x2

    if long || newCPL > cpl {
      let newSP = try pop(3)
      let newSS = UInt16(try pop(4) & 0xffff)
      if newSS & ~3 == 0 {
        special.ss = Segment(
          base: 0, limit: 0xffff_ffff, selector: newSS, type: 3, privilegeLevel: UInt8(newCPL),
          defaultSize32: true, granularity: true)
      } else {
        special.ss = try descriptor(newSS, special: special, walker: walker)
        special.ss.selector = newSS
      }
      registers.rsp = newSP
    } else {
      registers.rsp = (registers.rsp &+ 3 * w) & (special.ss.defaultSize32 ? 0xffff_ffff : 0xffff)
    }
    special.cs = codeSegment
    registers.rip = codeSegment.longMode ? newIP : newIP & 0xffff_ffff
    return registers.rflags
  }
}
