import Devices
import GuestMemory

/// The ACPI tables Hyperstep gives a Linux guest: just enough for the kernel to find its
/// processors and interrupt controllers (MADT), power off and reset (FADT, DSDT's `\_S5`),
/// with no ACPI-only hardware beyond `ACPIPowerManagement`'s PM1a blocks and the reset
/// register. Layouts and field offsets from the ACPI specification 6.4, chapter 5.2.
///
/// They live in the BIOS area at 0xe0000 (reserved in the E820 map, so the kernel leaves
/// them alone), where the kernel's scan of 0xe0000-0xfffff also finds the RSDP; the zero
/// page's `acpi_rsdp_addr` points at it as well. The same tables serve both engines: KVM's
/// in-kernel irqchip and Hyperstep's own chips sit at the same addresses and pins (local APICs
/// at 0xfee00000 with IDs 0..N-1, the I/O APIC at 0xfec00000 with 24 pins, the PIT on pin 2).
enum ACPITables {
  static let base: UInt64 = 0xe_0000
  static let rsdp: UInt64 = base
  static let xsdt: UInt64 = base + 0x40
  static let fadt: UInt64 = base + 0x100
  static let facs: UInt64 = base + 0x240  // 64-byte aligned, as the FACS must be
  static let dsdt: UInt64 = base + 0x300
  static let madt: UInt64 = base + 0x400
  /// The zero page field the kernel reads the RSDP's address from (boot protocol 2.14).
  static let zeroPageRSDP = 0x070

  /// The SCI's ISA IRQ (and GSI), as on PC chipsets. Nothing raises it.
  static let sciInterrupt: UInt16 = 9

  static func write(into memory: GuestRAM, cpuCount: Int) throws(MemoryError) {
    let fadtBytes = fixedDescription()
    let madtBytes = interruptControllers(cpuCount: cpuCount)
    let dsdtBytes = table("DSDT", revision: 2, body: softOffPackage)
    try memory.write(fadtBytes, at: GuestAddress(fadt))
    try memory.write(firmwareControl(), at: GuestAddress(facs))
    try memory.write(dsdtBytes, at: GuestAddress(dsdt))
    try memory.write(madtBytes, at: GuestAddress(madt))
    try memory.write(table("XSDT", revision: 1, body: le(fadt, 8) + le(madt, 8)), at: GuestAddress(xsdt))
    try memory.write(rootPointer(), at: GuestAddress(rsdp))
  }

  // MARK: The tables

  /// RSDP (5.2.5.3), revision 2: the first 20 bytes checksummed alone, all 36 again.
  static func rootPointer() -> [UInt8] {
    var bytes = Array("RSD PTR ".utf8) + [0] + oemID + [2] + le(0, 4) + le(36, 4) + le(xsdt, 8) + [0, 0, 0, 0]
    bytes[8] = checksum(bytes[0..<20])
    bytes[32] = checksum(bytes[0..<36])
    return bytes
  }

  /// FADT (5.2.9), revision 6: full (not hardware-reduced) ACPI with PM1a event and control
  /// blocks and nothing else; the reset register at 0xcf9; a PC with legacy devices and an
  /// 8042 (IAPC_BOOT_ARCH); no C2/C3 (latencies above their limits). Each block is given in
  /// both its 32-bit and its extended (GAS) field, the same, as ACPICA checks they agree.
  static func fixedDescription() -> [UInt8] {
    var body = [UInt8](repeating: 0, count: 276 - 36)
    func put(_ value: UInt64, _ offset: Int, _ size: Int) {
      for index in 0..<size { body[offset - 36 + index] = UInt8(truncatingIfNeeded: value >> (8 * index)) }
    }
    func putAddress(_ offset: Int, port: UInt16, bits: UInt8, access: UInt8) {
      let gas = genericAddress(port: port, bits: bits, access: access)
      for (index, byte) in gas.enumerated() { body[offset - 36 + index] = byte }
    }
    let events = ACPIPowerManagement.eventBlock
    let control = ACPIPowerManagement.controlBlock
    put(facs, 36, 4)  // FIRMWARE_CTRL
    put(dsdt, 40, 4)
    put(UInt64(sciInterrupt), 46, 2)  // SCI_INT
    put(UInt64(events), 56, 4)  // PM1a_EVT_BLK
    put(UInt64(control), 64, 4)  // PM1a_CNT_BLK
    put(UInt64(ACPIPowerManagement.eventBlockLength), 88, 1)
    put(UInt64(ACPIPowerManagement.controlBlockLength), 89, 1)
    put(0x0fff, 96, 2)  // P_LVL2_LAT > 100: no C2
    put(0x0fff, 98, 2)  // P_LVL3_LAT > 1000: no C3
    put(UInt64(RTCCMOS.Index.century), 108, 1)  // CENTURY
    put(0x0003, 109, 2)  // IAPC_BOOT_ARCH: LEGACY_DEVICES | 8042
    // Flags: WBINVD, PROC_C1, PWR_BUTTON and SLP_BUTTON (no fixed-feature buttons), RESET_REG_SUP.
    put(1 << 0 | 1 << 2 | 1 << 4 | 1 << 5 | 1 << 10, 112, 4)
    putAddress(116, port: ResetControlRegister.port, bits: 8, access: 1)  // RESET_REG
    put(UInt64(ResetControlRegister.resetValue), 128, 1)
    put(0, 131, 1)  // FADT minor version 6.0
    put(facs, 132, 8)  // X_FIRMWARE_CTRL
    put(dsdt, 140, 8)  // X_DSDT
    putAddress(148, port: events, bits: 32, access: 2)  // X_PM1a_EVT_BLK
    putAddress(172, port: control, bits: 16, access: 2)  // X_PM1a_CNT_BLK
    return table("FACP", revision: 6, body: body)
  }

  /// FACS (5.2.10): required by a full-ACPI FADT; no waking vector, no global lock.
  static func firmwareControl() -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: 64)
    bytes.replaceSubrange(0..<4, with: Array("FACS".utf8))
    bytes.replaceSubrange(4..<8, with: le(64, 4))
    bytes[32] = 2  // version
    return bytes
  }

  /// DSDT body: one AML object, `Name (_S5, Package () { 5, 5, 0, 0 })`, whose first two
  /// elements are SLP_TYPa/SLP_TYPb for soft off (ACPI 7.4.2.6; AML encoding 20.2.5):
  /// NameOp, the name, PackageOp, PkgLength (this byte and what follows it), NumElements,
  /// two BytePrefix constants and two ZeroOps.
  static var softOffPackage: [UInt8] {
    let type = UInt8(ACPIPowerManagement.softOffType)
    let elements: [UInt8] = [0x0a, type, 0x0a, type, 0x00, 0x00]
    return [0x08] + Array("_S5_".utf8) + [0x12, UInt8(2 + elements.count), 4] + elements
  }

  /// MADT (5.2.12): the local APIC address with PCAT_COMPAT (an 8259 pair is present), a
  /// Processor Local APIC entry per vCPU (UID and APIC ID = its index), the I/O APIC with
  /// GSIs from 0, the ISA overrides every PC has (IRQ 0 on GSI 2; the SCI level-triggered,
  /// active high), and LINT1 as every processor's NMI input.
  static func interruptControllers(cpuCount: Int) -> [UInt8] {
    var body = le(LocalAPIC.defaultBase, 4) + le(1, 4)
    for cpu in 0..<cpuCount {
      body += [0, 8, UInt8(cpu), UInt8(cpu)] + le(1, 4)  // enabled
    }
    body += [1, 12, 0, 0] + le(IOAPIC.defaultBase, 4) + le(0, 4)
    body += [2, 10, 0, 0] + le(2, 4) + le(0, 2)  // IRQ 0 -> GSI 2, bus-conforming
    body += [2, 10, 0, UInt8(sciInterrupt)] + le(UInt64(sciInterrupt), 4) + le(0x000d, 2)  // high, level
    body += [4, 6, 0xff] + le(0, 2) + [1]  // all processors: NMI on LINT1
    return table("APIC", revision: 4, body: body)
  }

  // MARK: Encoding

  static let oemID = Array("HYPSTP".utf8)

  /// A system description table: the 36-byte header (5.2.6) and `body`, checksummed.
  static func table(_ signature: String, revision: UInt8, body: [UInt8]) -> [UInt8] {
    var bytes = Array(signature.utf8) + le(UInt64(36 + body.count), 4) + [revision, 0] + oemID
    bytes += Array("HYPERSTP".utf8) + le(1, 4) + Array("HSTP".utf8) + le(1, 4)
    bytes += body
    bytes[9] = checksum(bytes[...])
    return bytes
  }

  /// A Generic Address Structure (5.2.3.2) for an I/O port.
  static func genericAddress(port: UInt16, bits: UInt8, access: UInt8) -> [UInt8] {
    [1, bits, 0, access] + le(UInt64(port), 8)
  }

  static func le(_ value: UInt64, _ size: Int) -> [UInt8] {
    (0..<size).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
  }

  /// The byte that makes `bytes` sum to 0 modulo 256 (the checksum byte itself counted as 0).
  static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt8 {
    0 &- bytes.reduce(0, &+)
  }
}
