/// One register as gdb sees it: its name, size, type and the target-description feature
/// it belongs to. The order of `X86_64.registers` is the order of the `g` packet and of
/// gdb's register numbers for `p`/`P`.
public struct RegisterInfo: Sendable, Equatable {
  public var name: String
  public var bits: Int
  public var type: String
  public var feature: String

  public var bytes: Int { bits / 8 }
}

public enum X86_64 {
  static let core = "org.gnu.gdb.i386.core"
  static let sse = "org.gnu.gdb.i386.sse"
  static let segments = "org.gnu.gdb.i386.segments"
  /// Not one of gdb's: the system registers a kernel debugger wants (QEMU offers the same set).
  static let system = "org.hyperstep.x86.sys"

  public static let registers: [RegisterInfo] = {
    var list: [RegisterInfo] = []
    func add(_ name: String, _ bits: Int, _ type: String, _ feature: String) {
      list.append(RegisterInfo(name: name, bits: bits, type: type, feature: feature))
    }
    for name in ["rax", "rbx", "rcx", "rdx", "rsi", "rdi"] { add(name, 64, "int64", core) }
    add("rbp", 64, "data_ptr", core)
    add("rsp", 64, "data_ptr", core)
    for index in 8...15 { add("r\(index)", 64, "int64", core) }
    add("rip", 64, "code_ptr", core)
    add("eflags", 32, "i386_eflags", core)
    for name in ["cs", "ss", "ds", "es", "fs", "gs"] { add(name, 32, "int32", core) }
    for index in 0...7 { add("st\(index)", 80, "i387_ext", core) }
    for name in ["fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop"] { add(name, 32, "int", core) }
    for index in 0...15 { add("xmm\(index)", 128, "vec128", sse) }
    add("mxcsr", 32, "i386_mxcsr", sse)
    add("fs_base", 64, "int", segments)
    add("gs_base", 64, "int", segments)
    add("k_gs_base", 64, "int", system)
    for name in ["cr0", "cr2", "cr3", "cr4", "cr8", "efer"] { add(name, 64, "int", system) }
    return list
  }()

  /// Byte offset of each register in the `g` packet's binary image.
  public static let offsets: [Int] = {
    var offsets: [Int] = []
    var cursor = 0
    for register in registers {
      offsets.append(cursor)
      cursor += register.bytes
    }
    return offsets
  }()

  public static let totalBytes = registers.reduce(0) { $0 + $1.bytes }

  /// rax..gs: what a `g` reply carries. The x87, SSE, segment-base and system registers
  /// follow only on request (`p`), so a stop costs the target one register read, not four.
  public static let generalCount = 24
  public static var generalBytes: Int { offsets[generalCount] }

  public static func number(of name: String) -> Int? { registers.firstIndex { $0.name == name } }

  /// The target description gdb and LLDB read with `qXfer:features:read:target.xml`.
  public static let targetDescription: String = {
    var xml = """
      <?xml version="1.0"?>
      <!DOCTYPE target SYSTEM "gdb-target.dtd">
      <target version="1.0">
      <architecture>i386:x86-64</architecture>

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
        register.feature == core || register.feature == segments
        ? "general" : (register.feature == sse ? "vector" : "system")
      xml +=
        "  <reg name=\"\(register.name)\" bitsize=\"\(register.bits)\" type=\"\(register.type)\" regnum=\"\(number)\" group=\"\(group)\"/>\n"
    }
    xml += "</feature>\n</target>\n"
    return xml
  }()

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
    default:
      return ""
    }
  }
}
