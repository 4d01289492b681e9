import GuestMemory
import KVM

/// Puts a vCPU into the processor state a kernel expects at its entry point.
enum BootState {
  static func apply(_ entry: EntryMode, multibootInfo: UInt64?, linux: Bool = false, to vcpu: any VirtualCPU, memory: GuestRAM)
    throws
  {
    var special = try vcpu.specialRegisters()
    var registers = Registers()
    registers.rflags = 0x2  // interrupts off, as every boot protocol here specifies

    switch entry {
    case .real(let segment, let offset):
      special.cs = Descriptors.realMode(segment: segment, code: true)
      let data = Descriptors.realMode(segment: 0, code: false)
      special.ds = data
      special.es = data
      special.fs = data
      special.gs = data
      special.ss = data
      registers.rip = UInt64(offset)
      registers.rsp = 0x7c00  // below a boot sector, where a BIOS leaves it

    case .protected32(let address), .long64(let address):
      special.gdt = DescriptorTable(base: BootLayout.gdt, limit: Descriptors.gdtLimit)
      special.idt = DescriptorTable(base: 0, limit: 0)
      let data = Descriptors.data()
      special.ds = data
      special.es = data
      special.fs = data
      special.gs = data
      special.ss = data
      special.tr = Descriptors.taskRegister()
      special.cr0 = ControlBits.cr0ProtectionEnable | ControlBits.cr0ExtensionType
      registers.rip = address
      registers.rsp = BootLayout.stackTop
      if linux {
        // The 64-bit boot protocol: __BOOT_CS/__BOOT_DS and the zero page in RSI.
        var data = Descriptors.data()
        data.selector = Descriptors.linuxDataSelector
        special.ds = data
        special.es = data
        special.fs = data
        special.gs = data
        special.ss = data
        registers.rsi = BootLayout.zeroPage
      }
      if case .long64 = entry {
        special.cs = Descriptors.code64()
        if linux { special.cs.selector = Descriptors.linuxCodeSelector }
        special.cr3 = try PageTables.writeIdentityMap(into: memory, at: BootLayout.pageTables)
        special.cr4 = ControlBits.cr4PAE
        special.cr0 |=
          ControlBits.cr0Paging | ControlBits.cr0WriteProtect | ControlBits.cr0MonitorCoprocessor
          | ControlBits.cr0NumericError
        special.efer = ControlBits.eferLongModeEnable | ControlBits.eferLongModeActive
      } else {
        special.cs = Descriptors.code32()
      }
      if let info = multibootInfo {
        registers.rax = UInt64(MultibootHeader.bootloaderMagic)
        registers.rbx = info
      }
    }
    try vcpu.setSpecialRegisters(special)
    try vcpu.setRegisters(registers)
  }
}
