/// Architectural state the oracle takes and reports: the user-visible integer state of one
/// x86-64 thread plus the data window's bytes.
public struct NativeState: Equatable, Sendable {
  /// The sixteen GPRs in encoding order: rax rcx rdx rbx rsp rbp rsi rdi r8 ... r15.
  public var gprs: [UInt64]
  /// Before a run: where the instruction is (always `NativeLayout.codeEntry`). After: the
  /// next instruction's address, or the faulting instruction's for a fault.
  public var rip: UInt64
  /// Only the bits of `NativeLayout.rflagsMask`.
  public var rflags: UInt64
  /// `NativeLayout.dataSize` bytes, the window at `NativeLayout.dataBase`.
  public var dataWindow: [UInt8]
  /// The x87/SSE state as a 512-byte FXSAVE64 image (SDM Vol. 1, 10.5.1): FCW at 0, FSW at
  /// 2, the abridged tag word at 4, MXCSR at 24, ST0-ST7 from 32 (16 bytes each), XMM0-15
  /// from 160. After a run, bytes the hardware does not define (FIP/FDP/FOP without a
  /// pending exception on AMD, 464-511) are not meaningful.
  public var fxsave: [UInt8]

  /// FNINIT's x87 state, MXCSR's reset value 1F80h, every XMM register zero.
  public static let initialFXSAVE: [UInt8] = {
    var image = [UInt8](repeating: 0, count: 512)
    image[0] = 0x7f
    image[1] = 0x03
    image[24] = 0x80
    image[25] = 0x1f
    return image
  }()

  public init(
    gprs: [UInt64] = Array(repeating: 0, count: 16), rip: UInt64 = NativeLayout.codeEntry, rflags: UInt64 = 0,
    dataWindow: [UInt8] = Array(repeating: 0, count: NativeLayout.dataSize), fxsave: [UInt8] = NativeState.initialFXSAVE
  ) {
    self.gprs = gprs
    self.rip = rip
    self.rflags = rflags
    self.dataWindow = dataWindow
    self.fxsave = fxsave
  }

  /// MXCSR in the FXSAVE image.
  public var mxcsr: UInt32 {
    get { (0..<4).reduce(UInt32(0)) { $0 | UInt32(fxsave[24 + $1]) << (8 * UInt32($1)) } }
    set { for i in 0..<4 { fxsave[24 + i] = UInt8(truncatingIfNeeded: newValue >> (8 * UInt32(i))) } }
  }

  /// XMM register `index` in the FXSAVE image.
  public func xmm(_ index: Int) -> UInt128 {
    (0..<16).reduce(UInt128(0)) { $0 | UInt128(fxsave[160 + 16 * index + $1]) << (8 * $1) }
  }

  public mutating func setXMM(_ index: Int, _ value: UInt128) {
    for i in 0..<16 { fxsave[160 + 16 * index + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
  }

  /// Register numbers in encoding order, for readable indexing (`state.gprs[GPR.rsp]`).
  public enum GPR {
    public static let rax = 0, rcx = 1, rdx = 2, rbx = 3, rsp = 4, rbp = 5, rsi = 6, rdi = 7
    public static let r8 = 8, r9 = 9, r10 = 10, r11 = 11, r12 = 12, r13 = 13, r14 = 14, r15 = 15
    public static let names = [
      "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
    ]
  }

  /// Reads `count` (1-8) little-endian bytes at `address` in the data window.
  public func load(_ address: UInt64, count: Int = 8) -> UInt64? {
    guard NativeLayout.isInDataWindow(address), NativeLayout.isInDataWindow(address + UInt64(count) - 1) else {
      return nil
    }
    let offset = Int(address - NativeLayout.dataBase)
    var value: UInt64 = 0
    for i in (0..<count).reversed() { value = value << 8 | UInt64(dataWindow[offset + i]) }
    return value
  }

  /// Writes `count` (1-8) little-endian bytes at `address`; false when outside the window.
  @discardableResult
  public mutating func store(_ value: UInt64, at address: UInt64, count: Int = 8) -> Bool {
    guard NativeLayout.isInDataWindow(address), NativeLayout.isInDataWindow(address + UInt64(count) - 1) else {
      return false
    }
    let offset = Int(address - NativeLayout.dataBase)
    for i in 0..<count { dataWindow[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
    return true
  }
}

/// An x86 exception the instruction raised, as the kernel saw it.
public struct NativeException: Equatable, Sendable {
  /// The vector: 0 #DE, 1 #DB, 3 #BP, 6 #UD, 12 #SS, 13 #GP, 14 #PF, 17 #AC ...
  public var vector: UInt8
  /// The error code the CPU pushed (0 for vectors without one).
  public var errorCode: UInt64
  /// CR2 for a page fault; nil for every other vector.
  public var faultAddress: UInt64?
  /// The signal that carried it (SIGSEGV, SIGFPE ...), for diagnostics.
  public var signal: Int32

  public init(vector: UInt8, errorCode: UInt64 = 0, faultAddress: UInt64? = nil, signal: Int32 = 0) {
    self.vector = vector
    self.errorCode = errorCode
    self.faultAddress = faultAddress
    self.signal = signal
  }

  public static let mnemonics: [UInt8: String] = [
    0: "#DE", 1: "#DB", 3: "#BP", 4: "#OF", 5: "#BR", 6: "#UD", 7: "#NM", 8: "#DF", 10: "#TS", 11: "#NP", 12: "#SS",
    13: "#GP", 14: "#PF", 16: "#MF", 17: "#AC", 18: "#MC", 19: "#XM", 21: "#CP",
  ]
  public var mnemonic: String { Self.mnemonics[vector] ?? "vector \(vector)" }
}

/// How the instruction's run ended.
public enum NativeEnd: Equatable, Sendable {
  /// Fell through to the next instruction (`rip` = entry + length).
  case fellThrough
  /// Transferred control to an INT3 of the code page (`rip` = that address).
  case branchedInCodePage
  /// Transferred control outside the code page: the instruction retired and fetching at the
  /// new `rip` faulted (#PF with the fetch bit), which is the layout's doing, not the
  /// instruction's.
  case branchedOutOfCodePage
  /// Raised an exception; `state` is the state the handler would see.
  case exception
  /// Still running after the watchdog's interval (a branch to itself, say): stopped there.
  case timedOut
}

/// What running one instruction did.
public struct NativeOutcome: Equatable, Sendable {
  /// The state after the instruction (registers as the exception's handler would see them
  /// when it raised one), with the data window as it was left.
  public var state: NativeState
  public var end: NativeEnd
  /// Set when `end == .exception`.
  public var exception: NativeException?

  public init(state: NativeState, end: NativeEnd, exception: NativeException? = nil) {
    self.state = state
    self.end = end
    self.exception = exception
  }

  /// True when the instruction completed (whatever it did to RIP).
  public var retired: Bool {
    switch end {
    case .fellThrough, .branchedInCodePage, .branchedOutOfCodePage: true
    case .exception, .timedOut: false
    }
  }
}
