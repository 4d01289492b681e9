import CHostCPU

/// Where the oracle puts things in the process, the one place Swift code reads it from (the
/// values are CHostCPU.h's). An interpreter that is compared with the oracle maps the same:
/// the instruction at `codeEntry` in an otherwise-INT3 code page, the data window at
/// `dataBase`, and nothing else in the sandbox.
///
/// ```
/// 0x0FFF_0000  control area (64 KiB, the trampoline's own; not for instructions)
/// 0x1000_0000  sandbox start: 16 MiB, no access except the two pieces below
/// 0x1080_0000  code page (4 KiB, read+execute, INT3-filled)
/// 0x1080_0800    instruction (1-15 bytes), then the 7-byte exit stub
/// 0x108F_F000  guard page (no access)
/// 0x1090_0000  data window (8 KiB, read+write)
/// 0x1090_2000  guard page (no access)
/// 0x1100_0000  sandbox end
/// ```
public enum NativeLayout {
  public static let sandboxBase = UInt64(HOSTCPU_SANDBOX_BASE)
  public static let sandboxSize = UInt64(HOSTCPU_SANDBOX_SIZE)
  public static let codePage = UInt64(HOSTCPU_CODE_PAGE)
  public static let codePageSize = UInt64(HOSTCPU_CODE_PAGE_SIZE)
  /// The instruction's address: RIP before it runs, and the base of RIP-relative operands.
  public static let codeEntry = UInt64(HOSTCPU_CODE_ENTRY)
  /// The exit stub's length: addresses in `codeEntry + length + 1 ..< codeEntry + length +
  /// exitStubLength` are inside the stub and must not be branch targets.
  public static let exitStubLength = UInt64(HOSTCPU_EXIT_STUB_LENGTH)
  public static let maxInstructionLength = Int(HOSTCPU_MAX_INSTRUCTION_LENGTH)
  public static let dataBase = UInt64(HOSTCPU_DATA_BASE)
  public static let dataSize = Int(HOSTCPU_DATA_SIZE)
  public static var dataEnd: UInt64 { dataBase + UInt64(dataSize) }
  /// RFLAGS bits a starting state may set and a result reports: CF PF AF ZF SF DF OF AC.
  public static let rflagsMask = UInt64(HOSTCPU_RFLAGS_MASK)

  public static func isInSandbox(_ address: UInt64) -> Bool {
    address >= sandboxBase && address - sandboxBase < sandboxSize
  }
  public static func isInDataWindow(_ address: UInt64) -> Bool {
    address >= dataBase && address - dataBase < UInt64(dataSize)
  }
  public static func isInCodePage(_ address: UInt64) -> Bool {
    address >= codePage && address - codePage < codePageSize
  }
}
