/// Routes port-I/O and MMIO accesses to the device that claims the address.
///
/// Unclaimed writes are dropped and unclaimed reads return all-ones, as on a PC, so a
/// guest poking at hardware that is not there never stops the machine.
public final class IOBus {
  private struct PortMapping {
    let range: ClosedRange<UInt16>
    let device: any PortDevice
  }

  private struct MMIOMapping {
    let range: ClosedRange<UInt64>
    let device: any MMIODevice
  }

  private var ports: [PortMapping] = []
  private var mmio: [MMIOMapping] = []

  public init() {}

  public enum RegistrationError: Error, Equatable, CustomStringConvertible {
    case overlap(String)
    public var description: String {
      switch self {
      case .overlap(let what): "I/O ranges overlap: \(what)"
      }
    }
  }

  public func register(_ device: any PortDevice, ports range: ClosedRange<UInt16>) throws(RegistrationError) {
    if let clash = ports.first(where: { $0.range.overlaps(range) }) {
      throw .overlap("ports \(hex(range)) and \(hex(clash.range))")
    }
    ports.append(PortMapping(range: range, device: device))
  }

  public func register(_ device: any MMIODevice, addresses range: ClosedRange<UInt64>) throws(RegistrationError) {
    if let clash = mmio.first(where: { $0.range.overlaps(range) }) {
      throw .overlap("MMIO \(hex(range)) and \(hex(clash.range))")
    }
    mmio.append(MMIOMapping(range: range, device: device))
  }

  @inline(__always)
  public func portRead(_ port: UInt16, size: Int) -> UInt32 {
    for mapping in ports where mapping.range.contains(port) {
      return mapping.device.read(offset: port - mapping.range.lowerBound, size: size)
    }
    return UInt32(truncatingIfNeeded: floatingBus(size: size))
  }

  @inline(__always)
  public func portWrite(_ port: UInt16, size: Int, value: UInt32) -> DeviceAction {
    for mapping in ports where mapping.range.contains(port) {
      return mapping.device.write(offset: port - mapping.range.lowerBound, size: size, value: value)
    }
    return .none
  }

  public func mmioRead(_ address: UInt64, size: Int) -> UInt64 {
    for mapping in mmio where mapping.range.contains(address) {
      return mapping.device.read(offset: address - mapping.range.lowerBound, size: size)
    }
    return floatingBus(size: size)
  }

  public func mmioWrite(_ address: UInt64, size: Int, value: UInt64) -> DeviceAction {
    for mapping in mmio where mapping.range.contains(address) {
      return mapping.device.write(offset: address - mapping.range.lowerBound, size: size, value: value)
    }
    return .none
  }
}

private func hex<T: BinaryInteger>(_ range: ClosedRange<T>) -> String {
  "0x\(String(range.lowerBound, radix: 16))-0x\(String(range.upperBound, radix: 16))"
}
