/// A synchronous exception an instruction raises, as ESR_EL1 and FAR_EL1 will describe it
/// (ARM ARM D17.2.37, "ESR_EL1": EC in bits 31-26, IL in bit 25, the ISS below).
public struct A64Exception: Error, Sendable, Equatable {
  /// The whole ESR value: EC << 26 | IL << 25 | ISS.
  public var syndrome: UInt32
  /// What FAR_EL1 receives, for the classes that set it (aborts, PC alignment, watchpoints).
  public var faultAddress: UInt64?

  public init(syndrome: UInt32, faultAddress: UInt64? = nil) {
    self.syndrome = syndrome
    self.faultAddress = faultAddress
  }

  public var exceptionClass: UInt8 { UInt8(syndrome >> 26) }

  /// Exception classes (D17.2.37, table "ESR_ELx.EC").
  public enum Class: UInt32, Sendable {
    case unknown = 0x00
    case floatingPointAccess = 0x07
    case illegalExecutionState = 0x0e
    case supervisorCall = 0x15
    case hypervisorCall = 0x16
    case secureMonitorCall = 0x17
    case systemTrap = 0x18
    case instructionAbortLower = 0x20
    case instructionAbortSame = 0x21
    case pcAlignment = 0x22
    case dataAbortLower = 0x24
    case dataAbortSame = 0x25
    case spAlignment = 0x26
    case breakpointLower = 0x30
    case breakpointSame = 0x31
    case softwareStepLower = 0x32
    case softwareStepSame = 0x33
    case watchpointLower = 0x34
    case watchpointSame = 0x35
    case breakpointInstruction = 0x3c
  }

  /// IL = 1: every A64 instruction is 32 bits long.
  static func make(_ ec: Class, iss: UInt32 = 0, address: UInt64? = nil) -> A64Exception {
    A64Exception(syndrome: ec.rawValue << 26 | 1 << 25 | iss & 0x1ff_ffff, faultAddress: address)
  }

  /// UNDEFINED: an unallocated or unimplemented encoding, or an access the current EL may not make.
  public static let undefined = make(.unknown)
  public static func supervisorCall(_ imm: UInt16) -> A64Exception { make(.supervisorCall, iss: UInt32(imm)) }
  public static func breakpointInstruction(_ imm: UInt16) -> A64Exception {
    make(.breakpointInstruction, iss: UInt32(imm))
  }
  public static func pcAlignment(_ pc: UInt64) -> A64Exception { make(.pcAlignment, address: pc) }
  public static let spAlignment = make(.spAlignment)
  /// An MSR, MRS or system instruction at EL0 that SCTLR_EL1 traps (UMA, UCT, DZE, UCI):
  /// the ISS describes the instruction (D17.2.37, EC 0x18), taken from its encoding.
  public static func systemTrap(_ word: UInt32) -> A64Exception {
    let op0 = (word >> 19) & 3
    let op1 = (word >> 16) & 7
    let crn = (word >> 12) & 15
    let crm = (word >> 8) & 15
    let op2 = (word >> 5) & 7
    let rt = word & 31
    let read = (word >> 21) & 1
    return make(.systemTrap, iss: op0 << 20 | op2 << 17 | op1 << 14 | crn << 10 | rt << 5 | crm << 1 | read)
  }
  public static let illegalExecutionState = make(.illegalExecutionState)
  /// An FP/SIMD instruction trapped by CPACR_EL1.FPEN; for exceptions from AArch64 the
  /// ISS's CV is 1 and COND 0b1110 (D17.2.37, EC 0x07).
  public static let floatingPointAccess = make(.floatingPointAccess, iss: 1 << 24 | 0xe << 20)

  /// Fault status codes (DFSC/IFSC) this model raises (D17.2.37, ISS for data aborts).
  public enum FaultStatus: UInt32, Sendable {
    case addressSize = 0b000000
    case translation = 0b000100
    case accessFlag = 0b001000
    case permission = 0b001100
    case synchronousExternal = 0b010000
    case alignment = 0b100001

    /// The code for a fault at a translation level (0-3) where the code carries the level.
    func at(level: Int) -> UInt32 {
      switch self {
      case .addressSize, .translation, .accessFlag, .permission: rawValue | UInt32(level & 3)
      default: rawValue
      }
    }
  }

  /// A data abort: FAR is the faulting address, WnR says whether it was a write. The ISS's
  /// ISV is 0, as for every stage 1 abort taken to EL1 in QEMU and in the ARM ARM's
  /// pseudocode for aborts not taken to EL2.
  public static func dataAbort(
    _ address: UInt64, _ status: FaultStatus, level: Int = 0, write: Bool, fromLowerLevel: Bool
  ) -> A64Exception {
    make(
      fromLowerLevel ? .dataAbortLower : .dataAbortSame, iss: (write ? 1 << 6 : 0) | status.at(level: level),
      address: address)
  }

  public static func instructionAbort(_ address: UInt64, _ status: FaultStatus, level: Int = 0, fromLowerLevel: Bool)
    -> A64Exception
  {
    make(
      fromLowerLevel ? .instructionAbortLower : .instructionAbortSame, iss: status.at(level: level), address: address)
  }
}

/// What one `step()` of an AArch64 CPU did.
public enum A64StepResult: Sendable, Equatable {
  case retired
  /// WFI, or WFE with no event: the CPU waits for an interrupt (or event).
  case waiting
  /// The instruction raised this exception; with `A64CPU.deliversExceptions` off it is
  /// returned undelivered, the PC still at the instruction.
  case exception(A64Exception)
  /// With `deliversExceptions`: the exception was taken to EL1; the PC is at its vector.
  case delivered(A64Exception)
  /// The instruction retired and a device or a call asked the run to stop.
  case ioStop
  /// A host breakpoint is on the instruction at the PC; nothing ran.
  case hostBreakpoint
  /// The instruction at the PC was about to access a host-watched range at `address`;
  /// nothing of it ran (AArch64 reports a watchpoint with the PC on the accessing instruction).
  case hostWatch(address: UInt64, write: Bool)
  /// The PC lies in a host watch of instruction fetches; nothing ran.
  case hostFetchWatch(address: UInt64)
  /// The instruction at the PC, an MSR, was about to write `value` to a host-watched system
  /// register; nothing of it ran.
  case hostSystemRegisterWrite(SystemRegisterName, value: UInt64)
}

/// MMIO, hypervisor calls and semihosting as the interpreter sees them; the platform
/// (PL011, GIC, PSCI, the semihosting exit) implements it.
public protocol A64Bus: AnyObject {
  /// A read from a physical address outside RAM; nil when nothing answers there (the
  /// access then takes a synchronous external abort).
  func mmioRead(_ address: UInt64, size: Int) -> UInt64?
  func mmioWrite(_ address: UInt64, size: Int, value: UInt64) -> A64BusWrite
  /// HVC or SMC #imm (EL2 and EL3 are not modelled: the platform's firmware answers, as
  /// PSCI). `.undefined` makes the instruction UNDEFINED.
  func call(_ kind: ExceptionGeneration, imm: UInt16, state: inout A64State) -> A64CallVerdict
  /// `hlt #0xf000`, the A64 semihosting trap (Arm's "Semihosting for AArch32 and AArch64").
  func semihosting(state: inout A64State) -> A64CallVerdict
}

public enum A64BusWrite: Sendable {
  case done
  /// Done; stop the run after this instruction.
  case stop
  /// Nothing answers at this address.
  case unmapped
}

public enum A64CallVerdict: Sendable {
  case handled
  /// Handled; stop the run after this instruction (a power-off, an exit).
  case stop
  case undefined
}

/// A bus with no devices: every MMIO access aborts, calls are UNDEFINED.
public final class A64NoDevices: A64Bus {
  public init() {}
  public func mmioRead(_ address: UInt64, size: Int) -> UInt64? { nil }
  public func mmioWrite(_ address: UInt64, size: Int, value: UInt64) -> A64BusWrite { .unmapped }
  public func call(_ kind: ExceptionGeneration, imm: UInt16, state: inout A64State) -> A64CallVerdict { .undefined }
  public func semihosting(state: inout A64State) -> A64CallVerdict { .undefined }
}

/// How `A64CPU.stepPlainly` ended.
public enum A64PlainRunEnd: Sendable, Equatable {
  /// `body` answered false after a plain step.
  case body
  /// A plain step touched a device or reached the timer deadline: sample the lines again.
  case refresh
  /// A step did something else; `body` was not called for it.
  case other(A64StepResult)
}
