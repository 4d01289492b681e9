/// One register as gdb sees it: its name, size, type and the target-description feature
/// it belongs to, and which machine register it shows.
public struct RegisterInfo: Sendable, Equatable {
  public var name: String
  public var bits: Int
  public var type: String
  public var feature: String
  /// The register's number in the machine image targets fill (`RegisterLayout.machine`: the
  /// x86-64 layout for x86, the AArch64 layout itself): a narrower layout shows the low
  /// `bits` of that register (eax is the low half of rax).
  public var machineNumber: Int
  /// A second name LLDB accepts for the register (target.xml's `altname`, which gdb
  /// ignores): LLDB's own x86-64 name for what gdb calls eflags is rflags.
  public var altName: String? = nil

  public var bytes: Int { bits / 8 }
}

/// The registers gdb is offered: their order (that of the `g` packet and of gdb's numbers for
/// `p`/`P`), sizes and target description. A `Session` is given one; targets always fill the
/// full x86-64 image (`RegisterLayout.x86_64`), and the session narrows it to its layout.
public struct RegisterLayout: Sendable {
  /// The target description's `<architecture>`: "i386:x86-64" or "i386".
  public let architecture: String
  public let registers: [RegisterInfo]
  /// Byte offset of each register in the `g` packet's binary image.
  public let offsets: [Int]
  public let totalBytes: Int
  /// The general registers (up to gs): what a `g` reply carries. The x87, SSE, segment-base
  /// and system registers follow only on request (`p`), so a stop costs the target one
  /// register read, not four.
  public let generalCount: Int
  /// Registers sent with every stop reply (frame pointer, stack pointer, instruction pointer,
  /// eflags): what gdb needs to show where it stopped, so it need not ask with `g` after each
  /// step.
  public let expedited: [Int]
  /// The target description gdb and LLDB read with `qXfer:features:read:target.xml`.
  public let targetDescription: String

  public var generalBytes: Int { offsets[generalCount] }

  /// The target triple LLDB is told in qHostInfo and qProcessInfo, matching the target
  /// description's architecture. The OS is "unknown": a VMM cannot tell what the guest runs.
  public var triple: String {
    switch architecture {
    case "i386": "i386-unknown-unknown"
    case "aarch64": "aarch64-unknown-unknown"
    default: "x86_64-unknown-unknown"
    }
  }
  /// Bytes in a pointer: the width of the instruction pointer the layout shows.
  public var pointerBytes: Int { architecture == "i386" ? 4 : 8 }

  /// The full image targets fill for this layout's machine, which the session narrows.
  public var machine: RegisterLayout { architecture == "aarch64" ? .aarch64 : .x86_64 }

  /// Whether a data watchpoint stops before the accessing instruction completes, the PC on it
  /// (AArch64's Watchpoint exception is a fault, as gdb expects there) or after it (x86's #DB
  /// is a trap, SDM vol. 3, 18.2.4).
  public var watchpointsStopBefore: Bool { architecture == "aarch64" }

  /// Whether every register is its machine register in place (the x86-64 layout), so a
  /// session passes the target's image through without copying.
  public let isMachineLayout: Bool

  public func number(of name: String) -> Int? { registers.firstIndex { $0.name == name } }

  init(architecture: String, registers: [RegisterInfo], generalCount: Int, expedited: [String]) {
    self.architecture = architecture
    self.registers = registers
    var offsets: [Int] = []
    var cursor = 0
    for register in registers {
      offsets.append(cursor)
      cursor += register.bytes
    }
    offsets.append(cursor)  // one past the last: generalBytes when all are general
    self.offsets = offsets
    totalBytes = cursor
    self.generalCount = generalCount
    self.expedited = expedited.map { name in registers.firstIndex { $0.name == name }! }
    isMachineLayout = registers.indices.allSatisfy { registers[$0].machineNumber == $0 }
    targetDescription = Self.describe(architecture, registers)
  }

  static let core = "org.gnu.gdb.i386.core"
  static let sse = "org.gnu.gdb.i386.sse"
  static let segments = "org.gnu.gdb.i386.segments"
  /// Not one of gdb's: the system registers a kernel debugger wants (QEMU offers the same set).
  static let system = "org.hyperstep.x86.sys"

  /// The 64-bit layout, gdb's amd64 order (features/i386/64bit-*.xml), and the machine image
  /// every target fills.
  // swift-format-ignore: AlwaysUseLowerCamelCase
  // The architecture's own name, as in `--gdb-arch x86-64`.
  public static let x86_64: RegisterLayout = {
    var list: [RegisterInfo] = []
    func add(_ name: String, _ bits: Int, _ type: String, _ feature: String) {
      list.append(RegisterInfo(name: name, bits: bits, type: type, feature: feature, machineNumber: list.count))
    }
    for name in ["rax", "rbx", "rcx", "rdx", "rsi", "rdi"] { add(name, 64, "int64", core) }
    add("rbp", 64, "data_ptr", core)
    add("rsp", 64, "data_ptr", core)
    for index in 8...15 { add("r\(index)", 64, "int64", core) }
    add("rip", 64, "code_ptr", core)
    add("eflags", 32, "i386_eflags", core)
    list[list.count - 1].altName = "rflags"
    for name in ["cs", "ss", "ds", "es", "fs", "gs"] { add(name, 32, "int32", core) }
    for index in 0...7 { add("st\(index)", 80, "i387_ext", core) }
    for name in ["fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop"] { add(name, 32, "int", core) }
    for index in 0...15 { add("xmm\(index)", 128, "vec128", sse) }
    add("mxcsr", 32, "i386_mxcsr", sse)
    add("fs_base", 64, "int", segments)
    add("gs_base", 64, "int", segments)
    add("k_gs_base", 64, "int", system)
    for name in ["cr0", "cr2", "cr3", "cr4", "cr8", "efer"] { add(name, 64, "int", system) }
    return RegisterLayout(
      architecture: "i386:x86-64", registers: list, generalCount: 24, expedited: ["rbp", "rsp", "rip", "eflags"])
  }()

  /// The 32-bit layout, gdb's i386 order (features/i386/32bit-core.xml, 32bit-sse.xml),
  /// each register the low part of its x86-64 namesake. The system feature keeps what a
  /// 32-bit kernel has: the FS and GS bases, CR0, CR2, CR3 and CR4 as 32 bits, and EFER (NXE
  /// for PAE, LME on the way to long mode); CR8 and KERNEL_GS_BASE exist in long mode only.
  /// The bases are not offered as gdb's own org.gnu.gdb.i386.segments feature: gdb 13 knows
  /// that feature for i386 only on GNU/Linux targets and otherwise fails an internal
  /// assertion (tdesc_use_registers) on connecting.
  public static let i386: RegisterLayout = {
    let machine = RegisterLayout.x86_64
    var list: [RegisterInfo] = []
    func add(_ name: String, from machineName: String, _ bits: Int, _ type: String, _ feature: String) {
      list.append(
        RegisterInfo(
          name: name, bits: bits, type: type, feature: feature, machineNumber: machine.number(of: machineName)!))
    }
    for name in ["ax", "cx", "dx", "bx"] { add("e" + name, from: "r" + name, 32, "int32", core) }
    for name in ["sp", "bp"] { add("e" + name, from: "r" + name, 32, "data_ptr", core) }
    for name in ["si", "di"] { add("e" + name, from: "r" + name, 32, "int32", core) }
    add("eip", from: "rip", 32, "code_ptr", core)
    add("eflags", from: "eflags", 32, "i386_eflags", core)
    for name in ["cs", "ss", "ds", "es", "fs", "gs"] { add(name, from: name, 32, "int32", core) }
    for index in 0...7 { add("st\(index)", from: "st\(index)", 80, "i387_ext", core) }
    for name in ["fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop"] {
      add(name, from: name, 32, "int", core)
    }
    for index in 0...7 { add("xmm\(index)", from: "xmm\(index)", 128, "vec128", sse) }
    add("mxcsr", from: "mxcsr", 32, "i386_mxcsr", sse)
    for name in ["fs_base", "gs_base", "cr0", "cr2", "cr3", "cr4"] { add(name, from: name, 32, "int", system) }
    add("efer", from: "efer", 64, "int", system)
    return RegisterLayout(
      architecture: "i386", registers: list, generalCount: 16, expedited: ["ebp", "esp", "eip", "eflags"])
  }()

  static let aarch64Core = "org.gnu.gdb.aarch64.core"
  static let aarch64FPU = "org.gnu.gdb.aarch64.fpu"
  /// Not one of gdb's: the EL1 system registers a kernel debugger wants.
  static let aarch64System = "org.hyperstep.aarch64.sys"

  /// AArch64, gdb's order (features/aarch64-core.xml, aarch64-fpu.xml), then the system
  /// registers: the machine image of the AArch64 engine.
  public static let aarch64: RegisterLayout = {
    var list: [RegisterInfo] = []
    func add(_ name: String, _ bits: Int, _ type: String, _ feature: String) {
      list.append(RegisterInfo(name: name, bits: bits, type: type, feature: feature, machineNumber: list.count))
    }
    for index in 0...30 { add("x\(index)", 64, "int", aarch64Core) }
    add("sp", 64, "data_ptr", aarch64Core)
    add("pc", 64, "code_ptr", aarch64Core)
    add("cpsr", 32, "cpsr_flags", aarch64Core)
    for index in 0...31 { add("v\(index)", 128, "aarch64v", aarch64FPU) }
    add("fpsr", 32, "int", aarch64FPU)
    add("fpcr", 32, "int", aarch64FPU)
    for name in aarch64SystemRegisters { add(name, 64, "int", aarch64System) }
    return RegisterLayout(
      architecture: "aarch64", registers: list, generalCount: 34, expedited: ["x29", "sp", "pc", "cpsr"])
  }()

  /// The system registers of the AArch64 layout, in order.
  public static let aarch64SystemRegisters = [
    "SCTLR_EL1", "TCR_EL1", "TTBR0_EL1", "TTBR1_EL1", "MAIR_EL1", "VBAR_EL1", "ESR_EL1", "FAR_EL1", "ELR_EL1",
    "SPSR_EL1", "SP_EL0", "SP_EL1", "MDSCR_EL1", "CurrentEL", "CONTEXTIDR_EL1", "TPIDR_EL1", "TPIDR_EL0",
    "CNTV_CTL_EL0", "CNTV_CVAL_EL0", "CNTP_CTL_EL0", "CNTP_CVAL_EL0",
  ]

  private static func describe(_ architecture: String, _ registers: [RegisterInfo]) -> String {
    var xml = """
      <?xml version="1.0"?>
      <!DOCTYPE target SYSTEM "gdb-target.dtd">
      <target version="1.0">
      <architecture>\(architecture)</architecture>

      """
    var current = ""
    for (number, register) in registers.enumerated() {
      if register.feature != current {
        if !current.isEmpty { xml += "</feature>\n" }
        current = register.feature
        xml += "<feature name=\"\(current)\">\n"
        xml += typesFor(current)
      }
      let group =
        register.feature == core || register.feature == segments || register.feature == aarch64Core
        ? "general" : (register.feature == sse || register.feature == aarch64FPU ? "vector" : "system")
      let altName = register.altName.map { " altname=\"\($0)\"" } ?? ""
      xml +=
        "  <reg name=\"\(register.name)\"\(altName) bitsize=\"\(register.bits)\" type=\"\(register.type)\" regnum=\"\(number)\" group=\"\(group)\"/>\n"
    }
    xml += "</feature>\n</target>\n"
    return xml
  }

  private static func typesFor(_ feature: String) -> String {
    switch feature {
    case core:
      return """
          <flags id="i386_eflags" size="4">
            <field name="CF" start="0" end="0"/><field name="" start="1" end="1"/>
            <field name="PF" start="2" end="2"/><field name="AF" start="4" end="4"/>
            <field name="ZF" start="6" end="6"/><field name="SF" start="7" end="7"/>
            <field name="TF" start="8" end="8"/><field name="IF" start="9" end="9"/>
            <field name="DF" start="10" end="10"/><field name="OF" start="11" end="11"/>
            <field name="NT" start="14" end="14"/><field name="RF" start="16" end="16"/>
            <field name="VM" start="17" end="17"/><field name="AC" start="18" end="18"/>
            <field name="VIF" start="19" end="19"/><field name="VIP" start="20" end="20"/>
            <field name="ID" start="21" end="21"/>
          </flags>

        """
    case sse:
      return """
          <vector id="v4f" type="ieee_single" count="4"/>
          <vector id="v2d" type="ieee_double" count="2"/>
          <vector id="v16i8" type="int8" count="16"/>
          <vector id="v8i16" type="int16" count="8"/>
          <vector id="v4i32" type="int32" count="4"/>
          <vector id="v2i64" type="int64" count="2"/>
          <union id="vec128">
            <field name="v4_float" type="v4f"/><field name="v2_double" type="v2d"/>
            <field name="v16_int8" type="v16i8"/><field name="v8_int16" type="v8i16"/>
            <field name="v4_int32" type="v4i32"/><field name="v2_int64" type="v2i64"/>
            <field name="uint128" type="uint128"/>
          </union>
          <flags id="i386_mxcsr" size="4">
            <field name="IE" start="0" end="0"/><field name="DE" start="1" end="1"/>
            <field name="ZE" start="2" end="2"/><field name="OE" start="3" end="3"/>
            <field name="UE" start="4" end="4"/><field name="PE" start="5" end="5"/>
            <field name="DAZ" start="6" end="6"/><field name="IM" start="7" end="7"/>
            <field name="DM" start="8" end="8"/><field name="ZM" start="9" end="9"/>
            <field name="OM" start="10" end="10"/><field name="UM" start="11" end="11"/>
            <field name="PM" start="12" end="12"/><field name="FZ" start="15" end="15"/>
          </flags>

        """
    case aarch64Core:
      return """
          <flags id="cpsr_flags" size="4">
            <field name="SP" start="0" end="0"/><field name="EL" start="2" end="3"/>
            <field name="nRW" start="4" end="4"/><field name="F" start="6" end="6"/>
            <field name="I" start="7" end="7"/><field name="A" start="8" end="8"/>
            <field name="D" start="9" end="9"/><field name="IL" start="20" end="20"/>
            <field name="SS" start="21" end="21"/><field name="V" start="28" end="28"/>
            <field name="C" start="29" end="29"/><field name="Z" start="30" end="30"/>
            <field name="N" start="31" end="31"/>
          </flags>

        """
    case aarch64FPU:
      return """
          <vector id="v2d" type="ieee_double" count="2"/>
          <vector id="v2u" type="uint64" count="2"/>
          <vector id="v2i" type="int64" count="2"/>
          <vector id="v4f" type="ieee_single" count="4"/>
          <vector id="v4u" type="uint32" count="4"/>
          <vector id="v4i" type="int32" count="4"/>
          <vector id="v8u" type="uint16" count="8"/>
          <vector id="v8i" type="int16" count="8"/>
          <vector id="v16u" type="uint8" count="16"/>
          <vector id="v16i" type="int8" count="16"/>
          <vector id="v1u" type="uint128" count="1"/>
          <vector id="v1i" type="int128" count="1"/>
          <union id="vnd"><field name="f" type="v2d"/><field name="u" type="v2u"/><field name="s" type="v2i"/></union>
          <union id="vns"><field name="f" type="v4f"/><field name="u" type="v4u"/><field name="s" type="v4i"/></union>
          <union id="vnh"><field name="u" type="v8u"/><field name="s" type="v8i"/></union>
          <union id="vnb"><field name="u" type="v16u"/><field name="s" type="v16i"/></union>
          <union id="vnq"><field name="u" type="v1u"/><field name="s" type="v1i"/></union>
          <union id="aarch64v">
            <field name="d" type="vnd"/><field name="s" type="vns"/><field name="h" type="vnh"/>
            <field name="b" type="vnb"/><field name="q" type="vnq"/>
          </union>

        """
    default:
      return ""
    }
  }
}
