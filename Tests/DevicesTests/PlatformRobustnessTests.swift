import Testing

@testable import Devices

/// Any sequence of guest accesses, however senseless, must leave every chip working:
/// Swift traps on arithmetic overflow and bad indexes, so a trap here is a bug a guest could
/// trigger. A fixed-seed generator keeps the run reproducible.
@Suite struct PlatformRobustnessTests {
  struct Generator {
    var state: UInt64
    mutating func next() -> UInt64 {
      // SplitMix64.
      state &+= 0x9e37_79b9_7f4a_7c15
      var z = state
      z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
      z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
      return z ^ (z >> 31)
    }
  }

  @Test(arguments: [1, 2, 3, 4])
  func randomAccessesNeverTrap(seed: UInt64) {
    let platform = PCPlatformInterrupts(cpuCount: 2, rtcStart: CivilTime(year: 2099, month: 12, day: 31, hour: 23))
    let bus = IOBus()
    try! platform.register(on: bus)
    let uart = Serial8250(output: { _ in })
    try! bus.register(uart, ports: 0x3f8...0x3ff)
    platform.attach(serial: uart, irq: 4)
    let ports: [UInt16] = [
      0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1, 0x40, 0x41, 0x42, 0x43, 0x61, 0x70, 0x71, 0x60, 0x64, 0x3f8, 0x3f9, 0x3fa,
      0x3fb, 0x3fc, 0x3fd,
    ]
    var random = Generator(state: seed)
    var now: UInt64 = 0
    var resets = 0
    for _ in 0..<20_000 {
      let r = random.next()
      let value = UInt32(truncatingIfNeeded: r >> 32)
      switch r % 8 {
      case 0, 1, 2:
        if bus.portWrite(ports[Int(r >> 8 & 0xffff) % ports.count], size: 1, value: value) == .reset { resets += 1 }
      case 3:
        _ = bus.portRead(ports[Int(r >> 8 & 0xffff) % ports.count], size: 1)
      case 4:
        let cpu = Int(r >> 20 & 1)
        let offset = UInt32(r >> 8 & 0xfff)
        if r >> 21 & 1 == 0 {
          platform.writeLocalAPIC(cpu: cpu, offset: offset, value: value)
        } else {
          _ = platform.readLocalAPIC(cpu: cpu, offset: offset)
        }
      case 5:
        let offset = [0x00, 0x10, 0x40, 0x20][Int(r >> 8 & 3)]
        _ = bus.mmioWrite(IOAPIC.defaultBase + UInt64(offset), size: 4, value: UInt64(value))
        _ = bus.mmioRead(IOAPIC.defaultBase + 0x10, size: 4)
      case 6:
        now += r >> 40  // up to about 16 ms
        platform.advance(to: now)
        if let deadline = platform.nextDeadline { #expect(deadline > now) }  // never one the engine cannot reach
      default:
        let cpu = Int(r >> 9 & 1)
        if platform.hasInterrupt(cpu: cpu) { #expect(platform.acknowledgeInterrupt(cpu: cpu) != nil) }
        platform.setISAInterrupt(Int(r >> 12 & 0xff) % 20 - 2, high: r >> 20 & 1 == 0)
        platform.ioapic.setLevel(pin: Int(r >> 24 & 0xff) % 30 - 3, high: r >> 30 & 1 == 0)
      }
    }
    // Still a working PIT afterwards: program channel 0 and see its count.
    _ = bus.portWrite(0x43, size: 1, value: 0x34)
    _ = bus.portWrite(0x40, size: 1, value: 0x00)
    _ = bus.portWrite(0x40, size: 1, value: 0x10)
    #expect(platform.pit.nextDeadline != nil)
    #expect(resets >= 0)
  }
}
