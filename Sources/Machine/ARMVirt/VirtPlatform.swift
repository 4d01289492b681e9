import AArch64
import Devices
import GuestMemory

/// QEMU virt's devices and firmware services for the AArch64 engine: the PL011, the GICv2,
/// PSCI over HVC (and SMC) and semihosting, shared by every vCPU. `VirtCPUBus` is one
/// vCPU's view (the GIC's CPU interface and SGI registers are banked by CPU).
final class VirtPlatform {
  let ram: GuestRAM
  let uart: PL011
  let gic: GICv2
  let console: ConsoleSink
  /// Set when the guest ends the run (PSCI SYSTEM_OFF/RESET, semihosting SYS_EXIT).
  var ending: VirtOutcome?
  /// PSCI CPU_ON requests not yet carried out: CPU index, entry point, context ID.
  var pendingPowerOn: [(cpu: Int, entry: UInt64, context: UInt64)] = []
  /// Which CPUs are on (PSCI AFFINITY_INFO); the machine keeps it current.
  var poweredOn: [Bool]
  /// A guest request (`HVC #guestRequestImmediate`) waiting to be reported: W0's value.
  var guestRequest: UInt32?

  /// `hvc #0x4853` ("HS") is the guest's request to Hyperstep, with the value in W0: 1 starts
  /// and 0 stops tracing (`hyperstep trace --from request`), as the x86 control port's writes do.
  public static let guestRequestImmediate: UInt16 = 0x4853

  init(ram: GuestRAM, cpuCount: Int, console: ConsoleSink) {
    self.ram = ram
    self.console = console
    uart = PL011(output: { console.write($0) })
    gic = GICv2(cpuCount: cpuCount)
    poweredOn = Array(repeating: false, count: cpuCount)
    poweredOn[0] = true
  }

  /// QEMU virt's memory map (hw/arm/virt.c's base_memmap), as far as Hyperstep models it.
  static let ramStart: UInt64 = 0x4000_0000
  static let uartRange = PL011.virtBase..<(PL011.virtBase + 0x1000)
  static let distributorRange = GICv2.virtDistributor..<(GICv2.virtDistributor + 0x1_0000)
  static let cpuInterfaceRange = GICv2.virtCPUInterface..<(GICv2.virtCPUInterface + 0x1_0000)

  func mmioRead(_ address: UInt64, size: Int, cpu: Int) -> UInt64? {
    if Self.uartRange.contains(address) { return uart.read(offset: address - PL011.virtBase, size: size) }
    if Self.distributorRange.contains(address) {
      return gic.readDistributor(cpu: cpu, offset: address - GICv2.virtDistributor, size: size)
    }
    if Self.cpuInterfaceRange.contains(address) {
      return gic.readCPUInterface(cpu: cpu, offset: address - GICv2.virtCPUInterface, size: size)
    }
    return nil
  }

  func mmioWrite(_ address: UInt64, size: Int, value: UInt64, cpu: Int) -> A64BusWrite {
    if Self.uartRange.contains(address) {
      _ = uart.write(offset: address - PL011.virtBase, size: size, value: value)
      return .done
    }
    if Self.distributorRange.contains(address) {
      gic.writeDistributor(cpu: cpu, offset: address - GICv2.virtDistributor, size: size, value: value)
      return .done
    }
    if Self.cpuInterfaceRange.contains(address) {
      gic.writeCPUInterface(cpu: cpu, offset: address - GICv2.virtCPUInterface, size: size, value: value)
      return .done
    }
    return .unmapped
  }

  // MARK: PSCI (Arm DEN 0022, "Arm Power State Coordination Interface", 5.1)

  enum PSCIFunction: UInt32 {
    case version = 0x8400_0000
    case cpuSuspend32 = 0x8400_0001
    case cpuOff = 0x8400_0002
    case cpuOn32 = 0x8400_0003
    case affinityInfo32 = 0x8400_0004
    case migrateInfoType = 0x8400_0006
    case systemOff = 0x8400_0008
    case systemReset = 0x8400_0009
    case features = 0x8400_000a
    case cpuSuspend64 = 0xc400_0001
    case cpuOn64 = 0xc400_0003
    case affinityInfo64 = 0xc400_0004
  }

  static let psciSuccess: Int64 = 0
  static let psciNotSupported: Int64 = -1
  static let psciInvalidParameters: Int64 = -2
  static let psciAlreadyOn: Int64 = -4

  /// An HVC or SMC #0 with a PSCI function ID in W0; the result goes to X0.
  func psci(cpu: Int, state: inout A64State) -> A64CallVerdict {
    let id = UInt32(truncatingIfNeeded: state.x[0])
    var result = Self.psciNotSupported
    var verdict = A64CallVerdict.handled
    switch PSCIFunction(rawValue: id) {
    case .version: result = 0x0001_0000  // PSCI 1.0
    case .cpuSuspend32, .cpuSuspend64:
      // A standby that returns at once is a valid CPU_SUSPEND (5.4.2: it may return early).
      result = Self.psciSuccess
    case .cpuOff:
      poweredOn[cpu] = false
      verdict = .stop
      result = Self.psciSuccess
    case .cpuOn32, .cpuOn64:
      let target = Int(state.x[1] & 0xff)
      if state.x[1] & ~0xff != 0 || target >= poweredOn.count {
        result = Self.psciInvalidParameters
      } else if poweredOn[target] || pendingPowerOn.contains(where: { $0.cpu == target }) {
        result = Self.psciAlreadyOn
      } else {
        pendingPowerOn.append((target, state.x[2], state.x[3]))
        result = Self.psciSuccess
        verdict = .stop  // the machine brings the CPU up before running on
      }
    case .affinityInfo32, .affinityInfo64:
      let target = Int(state.x[1] & 0xff)
      if state.x[2] != 0 || target >= poweredOn.count {
        result = Self.psciInvalidParameters
      } else {
        result = poweredOn[target] ? 0 : 1
      }
    case .migrateInfoType: result = 2  // no Trusted OS to migrate
    case .systemOff:
      ending = .powerOff
      verdict = .stop
    case .systemReset:
      ending = .reset
      verdict = .stop
    case .features:
      let asked = UInt32(truncatingIfNeeded: state.x[1])
      result = PSCIFunction(rawValue: asked) == nil ? Self.psciNotSupported : 0
    case nil:
      break
    }
    // SMC32 functions (bit 30 clear) return a 32-bit value in W0 (SMCCC 2.6).
    let value = UInt64(bitPattern: result)
    state.x[0] = id & 0x4000_0000 != 0 ? value : value & 0xffff_ffff
    return verdict
  }

  // MARK: Semihosting (Arm "Semihosting for AArch32 and AArch64", 2023Q3, chapter 6)

  /// ADP_Stopped_ApplicationExit: SYS_EXIT's reason for a program's own exit.
  static let applicationExit: UInt64 = 0x20026

  func semihosting(state: inout A64State) -> A64CallVerdict {
    let operation = state.x[0] & 0xffff_ffff
    let parameter = state.x[1]
    switch operation {
    case 0x03:  // SYS_WRITEC: the byte at the address in X1
      if let byte = try? ram.load(UInt8.self, at: GuestAddress(parameter)) { console.write(byte) }
    case 0x04:  // SYS_WRITE0: the NUL-terminated string at X1
      var address = parameter
      while let byte = try? ram.load(UInt8.self, at: GuestAddress(address)), byte != 0 {
        console.write(byte)
        address &+= 1
      }
    case 0x18, 0x20:  // SYS_EXIT, SYS_EXIT_EXTENDED: X1 points to (reason, subcode)
      guard let reason = try? ram.load(UInt64.self, at: GuestAddress(parameter)),
        let code = try? ram.load(UInt64.self, at: GuestAddress(parameter &+ 8))
      else { return .undefined }
      ending = .exit(reason == Self.applicationExit ? code : 1, reason: reason)
      return .stop
    default:
      state.x[0] = UInt64.max  // -1: not supported
    }
    return .handled
  }
}

/// One vCPU's view of the platform.
final class VirtCPUBus: A64Bus {
  unowned let platform: VirtPlatform
  let cpu: Int

  init(platform: VirtPlatform, cpu: Int) {
    self.platform = platform
    self.cpu = cpu
  }

  func mmioRead(_ address: UInt64, size: Int) -> UInt64? { platform.mmioRead(address, size: size, cpu: cpu) }
  func mmioWrite(_ address: UInt64, size: Int, value: UInt64) -> A64BusWrite {
    platform.mmioWrite(address, size: size, value: value, cpu: cpu)
  }
  func call(_ kind: ExceptionGeneration, imm: UInt16, state: inout A64State) -> A64CallVerdict {
    if kind == .hvc && imm == VirtPlatform.guestRequestImmediate {
      platform.guestRequest = UInt32(truncatingIfNeeded: state.x[0])
      return .stop
    }
    return imm == 0 ? platform.psci(cpu: cpu, state: &state) : .undefined
  }
  func semihosting(state: inout A64State) -> A64CallVerdict { platform.semihosting(state: &state) }
}

/// How an AArch64 run ended.
public enum VirtOutcome: Sendable, Equatable {
  /// Semihosting SYS_EXIT: the exit code (1 for any reason but ApplicationExit) and reason.
  case exit(UInt64, reason: UInt64)
  /// PSCI SYSTEM_OFF.
  case powerOff
  /// PSCI SYSTEM_RESET.
  case reset
  /// Every CPU waits in WFI/WFE and no timer or device will wake one.
  case waitingForever(pc: UInt64)
  case timedOut
}

extension VirtOutcome {
  /// The same end in the words of an x86 run (trace lines, the event API's `.shutdown`): a
  /// semihosting exit is the debug-exit device's, SYSTEM_OFF a power-off.
  public var runOutcome: RunOutcome {
    switch self {
    case .exit(let code, _):
      .debugExit(value: UInt32(truncatingIfNeeded: code), status: Int32(truncatingIfNeeded: code & 0xff))
    case .powerOff: .powerOff
    case .reset: .reset
    case .waitingForever: .halted
    case .timedOut: .timedOut
    }
  }
}
