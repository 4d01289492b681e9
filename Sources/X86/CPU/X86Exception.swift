/// An exception an instruction raised (or an interrupt to deliver): the step's result, and
/// what delivery through the IVT/IDT (InterruptDelivery.swift) works from.
public struct X86Exception: Error, Sendable, Equatable, CustomStringConvertible {
  public enum Kind: UInt8, Sendable {
    /// RIP stays at the faulting instruction, whose effects are undone (SDM Vol. 3, 6.5).
    case fault
    /// RIP is past the instruction, which completed (INT1, INT3 and #DB traps).
    case trap
    /// INT n: like a trap, but delivery checks the gate's DPL against CPL.
    case softwareInterrupt
    /// A hardware interrupt or NMI (`X86CPU.deliverExternalInterrupt`, `deliverNMI`): no DPL
    /// check, EXT set in error codes its delivery raises.
    case externalInterrupt
  }

  public var vector: UInt8
  /// Pushed by delivery for #DF, #TS, #NP, #SS, #GP, #PF, #AC (SDM Vol. 3, table 6-1); nil otherwise.
  public var errorCode: UInt32?
  public var kind: Kind

  public init(vector: UInt8, errorCode: UInt32? = nil, kind: Kind = .fault) {
    self.vector = vector
    self.errorCode = errorCode
    self.kind = kind
  }

  public enum Vector {
    public static let divideError: UInt8 = 0
    public static let debug: UInt8 = 1
    public static let nmi: UInt8 = 2
    public static let breakpoint: UInt8 = 3
    public static let overflow: UInt8 = 4
    public static let boundRange: UInt8 = 5
    public static let invalidOpcode: UInt8 = 6
    public static let doubleFault: UInt8 = 8
    public static let invalidTSS: UInt8 = 10
    public static let segmentNotPresent: UInt8 = 11
    public static let stackFault: UInt8 = 12
    public static let generalProtection: UInt8 = 13
    public static let pageFault: UInt8 = 14
    public static let alignmentCheck: UInt8 = 17
  }

  public static let divideError = X86Exception(vector: Vector.divideError)
  public static let invalidOpcode = X86Exception(vector: Vector.invalidOpcode)
  public static func generalProtection(_ code: UInt32 = 0) -> X86Exception {
    X86Exception(vector: Vector.generalProtection, errorCode: code)
  }
  public static func stackFault(_ code: UInt32 = 0) -> X86Exception {
    X86Exception(vector: Vector.stackFault, errorCode: code)
  }
  public static func pageFault(_ code: UInt32) -> X86Exception {
    X86Exception(vector: Vector.pageFault, errorCode: code)
  }
  public static func invalidTSS(_ code: UInt32) -> X86Exception {
    X86Exception(vector: Vector.invalidTSS, errorCode: code)
  }
  public static func segmentNotPresent(_ code: UInt32) -> X86Exception {
    X86Exception(vector: Vector.segmentNotPresent, errorCode: code)
  }

  public var description: String {
    let names: [UInt8: String] = [0: "#DE", 1: "#DB", 3: "#BP", 6: "#UD", 12: "#SS", 13: "#GP", 14: "#PF"]
    let name = names[vector] ?? "vector \(vector)"
    return errorCode.map { "\(name)(0x\(String($0, radix: 16)))" } ?? name
  }
}

/// Page-fault error-code bits (SDM Vol. 3, 4.7).
public enum PageFaultCode {
  public static let present: UInt32 = 1 << 0
  public static let write: UInt32 = 1 << 1
  public static let user: UInt32 = 1 << 2
  public static let reservedBit: UInt32 = 1 << 3
  public static let instructionFetch: UInt32 = 1 << 4
}
