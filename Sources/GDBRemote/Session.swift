/// The GDB remote protocol's conversation: parses each packet, asks the target, and formats
/// the reply. Transport-free: the server feeds it payloads and sends what it returns.
///
/// Registers go to gdb in the session's `layout`, narrowed from the full image the target
/// fills (`RegisterLayout.machine`: x86-64 for x86, AArch64 for AArch64). A write through a narrower layout (i386) replaces the low bits of each
/// register it carries and keeps the rest: setting eip leaves the top half of rip alone, as
/// a 32-bit view of a machine that may be in long mode must.
public final class Session {
  public let target: any DebugTarget
  public let layout: RegisterLayout
  public let maximumPacket: Int
  /// Acks are off once the client sent QStartNoAckMode.
  public private(set) var noAck = false
  /// LLDB's extensions (docs/lldb-gdb-remote.txt in LLVM), each on once the client asks:
  /// error replies that carry their reason as hex text (`E16;...`, QEnableErrorStrings), and
  /// the live thread list in every stop reply (`threads:1,2;`, QListThreadsInStopReply).
  public private(set) var errorStrings = false
  public private(set) var threadsInStopReply = false
  /// Told why the target refused a breakpoint or watchpoint (`Z`), with the packet: neither
  /// gdb 13 nor LLDB 16 shows the reason an error reply carries, so the server prints it.
  public var refusalHandler: ((String) -> Void)?
  /// The session is over: detached or killed.
  public private(set) var finished = false
  public private(set) var killed = false
  private var generalThread: Int
  private var continueThread: Int
  private var lastStop: StopEvent
  /// The target's registers in the machine layout (`RegisterLayout.machine`).
  private var registerImage: [UInt8]
  private let machine: RegisterLayout

  public init(target: any DebugTarget, layout: RegisterLayout = .x86_64, maximumPacket: Int = 16384) {
    self.target = target
    self.layout = layout
    self.maximumPacket = maximumPacket
    let first = target.threads.first ?? 1
    generalThread = first
    continueThread = first
    lastStop = .interrupted(thread: first)
    machine = layout.machine
    registerImage = [UInt8](repeating: 0, count: layout.machine.totalBytes)
  }

  /// Console output (`O` packets) a command produced, sent before its reply.
  private var consoleOutput: [[UInt8]] = []
  /// Bytes of text per console packet: twice that in hex stays well inside any PacketSize.
  static let consoleChunk = 1024

  /// Every packet to send for one received packet, in order: console output, then the reply
  /// (none at all for a packet that wants no reply).
  public func replies(to payload: [UInt8]) -> [[UInt8]] {
    let reply = handle(payload)
    defer { consoleOutput = [] }
    return consoleOutput + (reply.map { [$0] } ?? [])
  }

  /// The reply to one packet (nil: send nothing); console output it produced waits in
  /// `replies(to:)`, the method a server calls.
  public func handle(_ payload: [UInt8]) -> [UInt8]? {
    consoleOutput = []
    guard var first = payload.first else { return [] }
    var payload = payload
    // The thread a register packet names in LLDB's suffix, else the Hg thread.
    var registerThread = generalThread
    if [UInt8(ascii: "g"), UInt8(ascii: "G"), UInt8(ascii: "p"), UInt8(ascii: "P")].contains(first),
      payload.contains(UInt8(ascii: ";"))
    {
      guard let (body, thread) = splitThreadSuffix(payload) else { return error(1, "malformed thread suffix") }
      payload = body
      registerThread = thread
      first = payload[0]
    }
    let text = String(decoding: payload, as: UTF8.self)
    do {
      switch first {
      case UInt8(ascii: "?"): return stopReply(lastStop)
      case UInt8(ascii: "q"): return try query(text)
      case UInt8(ascii: "Q"):
        switch text {
        case "QStartNoAckMode": noAck = true
        case "QEnableErrorStrings": errorStrings = true
        case "QThreadSuffixSupported": break  // suffixes are always understood
        case "QListThreadsInStopReply": threadsInStopReply = true
        default: return []
        }
        return ok
      case UInt8(ascii: "H"): return try setThread(text)
      case UInt8(ascii: "T"):
        guard let thread = Int(text.dropFirst(), radix: 16), target.threads.contains(thread) else { return error(1) }
        return ok
      case UInt8(ascii: "g"):
        guard payload.count == 1 else { return error(1) }
        try target.readRegisters(thread: registerThread, into: &registerImage, full: false)
        if layout.isMachineLayout { return hexEncoded(registerImage[..<layout.generalBytes]) }
        var reply: [UInt8] = []
        reply.reserveCapacity(layout.generalBytes * 2)
        for number in 0..<layout.generalCount { reply += hexEncoded(machineBytes(of: number)) }
        return reply
      case UInt8(ascii: "G"):
        guard let bytes = hexDecoded(payload.dropFirst()),
          bytes.count == layout.totalBytes || bytes.count == layout.generalBytes
        else { return error(1) }
        if layout.isMachineLayout && bytes.count == layout.totalBytes {
          try target.writeRegisters(thread: registerThread, bytes)
          return ok
        }
        // Registers the packet does not carry, and the bits a narrower layout does not show,
        // stay as they are.
        try target.readRegisters(thread: registerThread, into: &registerImage, full: true)
        for number in layout.registers.indices where layout.offsets[number + 1] <= bytes.count {
          let offset = layout.offsets[number]
          store(bytes[offset..<offset + layout.registers[number].bytes], as: number)
        }
        try target.writeRegisters(thread: registerThread, registerImage)
        return ok
      case UInt8(ascii: "p"): return try readRegister(text, thread: registerThread)
      case UInt8(ascii: "P"): return try writeRegister(text, thread: registerThread)
      // LLDB's binary read `x` is left unknown on purpose (LLDB then uses `m`): its reply has no
      // prefix in LLDB 16, so memory that holds "OK" or "E01" would read as a status.
      case UInt8(ascii: "m"): return try readMemory(text)
      case UInt8(ascii: "M"): return try writeMemoryHex(text)
      case UInt8(ascii: "X"): return try writeMemoryBinary(payload)
      case UInt8(ascii: "Z"), UInt8(ascii: "z"): return try breakpoint(text, insert: first == UInt8(ascii: "Z"))
      case UInt8(ascii: "s"): return try run(step: true, thread: continueThread)
      case UInt8(ascii: "c"): return try run(step: false, thread: continueThread)
      case UInt8(ascii: "v"): return try verbose(text)
      case UInt8(ascii: "D"):
        target.detach()
        finished = true
        return ok
      case UInt8(ascii: "k"):
        target.kill()
        finished = true
        killed = true
        // gdb expects no reply to `k` (it sends vKill when it can); LLDB waits for the
        // process's end and takes X09 as "killed", as lldb-server answers.
        return Array("X09".utf8)
      default:
        return []
      }
    } catch let failure as TargetError {
      if first == UInt8(ascii: "Z") { refusalHandler?("\(text): \(failure.description)") }
      return error(failure.code, failure.description)
    } catch {
      return self.error(1, "\(error)")
    }
  }

  /// Splits LLDB's `;thread:ID;` suffix off a register packet (QThreadSuffixSupported):
  /// nil when the suffix is malformed or names no thread of the target.
  private func splitThreadSuffix(_ payload: [UInt8]) -> ([UInt8], Int)? {
    guard let semicolon = payload.firstIndex(of: UInt8(ascii: ";")), semicolon > 0 else { return nil }
    let suffix = String(decoding: payload[(semicolon + 1)...], as: UTF8.self)
    guard suffix.hasPrefix("thread:"), suffix.hasSuffix(";") else { return nil }
    let id = suffix.dropFirst("thread:".count).dropLast()
    guard let thread = Int(id, radix: 16), target.threads.contains(thread) else { return nil }
    return (Array(payload[..<semicolon]), thread)
  }

  // MARK: Queries

  private func query(_ text: String) throws -> [UInt8] {
    if text.hasPrefix("qSupported") {
      return Array(
        "PacketSize=\(String(maximumPacket, radix: 16));qXfer:features:read+;QStartNoAckMode+;swbreak+;hwbreak+;vContSupported+"
          .utf8)
    }
    if text.hasPrefix("qXfer:features:read:") {
      let parts = text.dropFirst("qXfer:features:read:".count).split(separator: ":")
      guard parts.count == 2, parts[0] == "target.xml" else { return Array("E00".utf8) }
      let range = parts[1].split(separator: ",")
      guard range.count == 2, let offset = Int(range[0], radix: 16), let length = Int(range[1], radix: 16) else {
        return error(1)
      }
      let document = Array(layout.targetDescription.utf8)
      guard offset <= document.count else { return error(1) }
      let end = min(document.count, offset + min(length, maximumPacket - 8))
      return [end == document.count ? UInt8(ascii: "l") : UInt8(ascii: "m")] + document[offset..<end]
    }
    if text.hasPrefix("qMemoryRegionInfo:") {
      // lldb-gdb-remote.txt: start and size in hex, and permissions only where mapped.
      guard let address = UInt64(text.dropFirst("qMemoryRegionInfo:".count), radix: 16) else { return error(1) }
      let region = try target.memoryRegion(thread: generalThread, address: address)
      let permissions = region.permissions.isEmpty ? "" : "permissions:\(region.permissions);"
      return Array(
        "start:\(String(region.start, radix: 16));size:\(String(region.size, radix: 16));\(permissions)".utf8)
    }
    if text == "qWatchpointSupportInfo:" || text == "qWatchpointSupportInfo" {
      // No fixed number of slots (the interpreter watches any number): nothing to tell.
      guard let slots = target.watchpointSlots else { return [] }
      return Array("num:\(slots);".utf8)
    }
    switch text {
    case "qHostInfo":
      // x86 reports a watchpoint after the accessing instruction (a trap, SDM vol. 3,
      // 18.2.4), and so does Hyperstep on either x86 engine: LLDB must not step over it
      // again. AArch64 stops before it, the PC on it (a Watchpoint exception is a fault).
      let when = layout.watchpointsStopBefore ? "before" : "after"
      return Array((machineDescription + "watchpoint_exceptions_received:\(when);").utf8)
    case "qProcessInfo": return Array(("pid:1;" + machineDescription).utf8)
    case "qMemoryRegionInfo": return ok  // "supported?", as lldb-server answers it
    case "qAttached": return Array("1".utf8)
    case "qC": return Array("QC\(String(generalThread, radix: 16))".utf8)
    case "qfThreadInfo": return Array(("m" + target.threads.map { String($0, radix: 16) }.joined(separator: ",")).utf8)
    case "qsThreadInfo": return Array("l".utf8)
    case "qOffsets": return Array("Text=0;Data=0;Bss=0".utf8)
    case "qSymbol::": return ok
    default: break
    }
    if text.hasPrefix("qThreadExtraInfo,") {
      guard let thread = Int(text.dropFirst("qThreadExtraInfo,".count), radix: 16) else { return error(1) }
      return hexEncoded(Array(target.threadName(thread).utf8))
    }
    if text.hasPrefix("qRcmd,") {
      guard let command = hexDecoded(Array(text.utf8).dropFirst("qRcmd,".count)) else { return error(1) }
      // The output goes out as console packets (`O` and hex) before the OK, as QEMU sends it:
      // gdb shows either form, LLDB 16's `process plugin packet monitor` only this one (the
      // other it prints as raw hex).
      let output = Array(target.monitor(String(decoding: command, as: UTF8.self)).utf8)
      var start = 0
      while start < output.count {
        let end = min(output.count, start + Self.consoleChunk)
        consoleOutput.append([UInt8(ascii: "O")] + hexEncoded(output[start..<end]))
        start = end
      }
      return ok
    }
    return []
  }

  /// The architecture as qHostInfo and qProcessInfo state it: the triple (hex, as LLDB
  /// reads it), pointer size and byte order, all from the layout gdb's target.xml describes.
  private var machineDescription: String {
    return "triple:\(hexText(layout.triple));ptrsize:\(layout.pointerBytes);endian:little;"
  }

  private func setThread(_ text: String) throws -> [UInt8] {
    let body = text.dropFirst(2)
    guard text.count >= 3 else { return error(1) }
    let thread: Int
    if body == "-1" || body == "0" {
      thread = target.threads.first ?? 1
    } else {
      guard let value = Int(body, radix: 16), target.threads.contains(value) else { return error(1) }
      thread = value
    }
    if text.dropFirst().first == "g" { generalThread = thread } else { continueThread = thread }
    return ok
  }

  // MARK: Registers and memory

  /// Register `number` of the layout: the low bytes of its machine register in the image.
  private func machineBytes(of number: Int) -> ArraySlice<UInt8> {
    let register = layout.registers[number]
    let offset = machine.offsets[register.machineNumber]
    return registerImage[offset..<offset + register.bytes]
  }

  /// Writes register `number` of the layout into the low bytes of its machine register.
  private func store(_ value: ArraySlice<UInt8>, as number: Int) {
    let offset = machine.offsets[layout.registers[number].machineNumber]
    registerImage.replaceSubrange(offset..<offset + value.count, with: value)
  }

  private func readRegister(_ text: String, thread: Int) throws -> [UInt8] {
    guard let number = Int(text.dropFirst(), radix: 16), layout.registers.indices.contains(number) else {
      return error(1)
    }
    let full = layout.registers[number].machineNumber >= machine.generalCount
    try target.readRegisters(thread: thread, into: &registerImage, full: full)
    return hexEncoded(machineBytes(of: number))
  }

  private func writeRegister(_ text: String, thread: Int) throws -> [UInt8] {
    let parts = text.dropFirst().split(separator: "=", maxSplits: 1)
    guard parts.count == 2, let number = Int(parts[0], radix: 16), layout.registers.indices.contains(number),
      let value = hexDecoded(Array(parts[1].utf8)), value.count == layout.registers[number].bytes
    else { return error(1) }
    try target.readRegisters(thread: thread, into: &registerImage, full: true)
    store(value[...], as: number)
    try target.writeRegisters(thread: thread, registerImage)
    return ok
  }

  private func addressAndLength(_ text: Substring) -> (UInt64, Int)? {
    let parts = text.split(separator: ",")
    guard parts.count == 2, let address = UInt64(parts[0], radix: 16), let length = Int(parts[1], radix: 16),
      length >= 0
    else { return nil }
    return (address, length)
  }

  private func readMemory(_ text: String) throws -> [UInt8] {
    guard let (address, length) = addressAndLength(text.dropFirst()) else { return error(1) }
    guard length <= maximumPacket / 2 else { return error(1) }  // two hex digits a byte; no overflow
    return hexEncoded(try target.readMemory(thread: generalThread, address: address, count: length))
  }

  private func writeMemoryHex(_ text: String) throws -> [UInt8] {
    let parts = text.dropFirst().split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
    guard parts.count == 2, let (address, length) = addressAndLength(parts[0]),
      let bytes = hexDecoded(Array(parts[1].utf8)), bytes.count == length
    else { return error(1) }
    try target.writeMemory(thread: generalThread, address: address, bytes)
    return ok
  }

  private func writeMemoryBinary(_ payload: [UInt8]) throws -> [UInt8] {
    guard let colon = payload.firstIndex(of: UInt8(ascii: ":")),
      let (address, length) = addressAndLength(Substring(String(decoding: payload[1..<colon], as: UTF8.self)))
    else { return error(1) }
    let data = Array(payload[(colon + 1)...])
    guard data.count == length else { return error(1) }
    if length > 0 { try target.writeMemory(thread: generalThread, address: address, data) }
    return ok
  }

  private func breakpoint(_ text: String, insert: Bool) throws -> [UInt8] {
    let parts = text.dropFirst().split(separator: ",")
    guard parts.count >= 3, let kindNumber = Int(parts[0]), let kind = BreakpointKind(rawValue: kindNumber),
      let address = UInt64(parts[1], radix: 16), let length = Int(parts[2].prefix { $0 != ";" }, radix: 16)
    else { return error(1) }
    let supported =
      insert
      ? try target.insertBreakpoint(kind, address: address, length: length)
      : try target.removeBreakpoint(kind, address: address, length: length)
    return supported ? ok : []
  }

  // MARK: Execution

  private func verbose(_ text: String) throws -> [UInt8] {
    if text == "vCont?" { return Array("vCont;c;C;s;S".utf8) }
    if text == "vMustReplyEmpty" { return [] }
    if text.hasPrefix("vKill") {
      target.kill()
      finished = true
      killed = true
      return ok
    }
    guard text.hasPrefix("vCont;") else { return [] }
    // The first action that names a thread (or none) decides; gdb steps one vCPU at a time.
    for action in text.dropFirst("vCont;".count).split(separator: ";") {
      // Empty pieces kept: an action of ":" alone has an empty verb, not no fields at all.
      let fields = action.split(separator: ":", omittingEmptySubsequences: false)
      let verb = fields[0].first
      var thread = continueThread
      if fields.count > 1 {
        let id = fields[1]
        if id != "-1", let value = Int(id, radix: 16), target.threads.contains(value) { thread = value }
      }
      switch verb {
      case "s", "S": return try run(step: true, thread: thread)
      case "c", "C": return try run(step: false, thread: thread)
      default: continue
      }
    }
    return error(1)
  }

  private func run(step: Bool, thread: Int) throws -> [UInt8] {
    let event = step ? try target.step(thread: thread) : try target.resume(thread: thread)
    lastStop = event
    switch event {
    case .step(let thread), .halted(let thread), .breakpoint(let thread, _, _), .interrupted(let thread),
      .crashed(let thread, _):
      generalThread = thread
      continueThread = thread
    case .exited:
      finished = true
    }
    return stopReply(event)
  }

  /// `T05thread:1;06:...;07:...;10:...;11:...;swbreak:;` and the like, with the layout's
  /// expedited registers (`RegisterLayout.expedited`).
  public func stopReply(_ event: StopEvent) -> [UInt8] {
    func thread(_ id: Int) -> String {
      var text = "thread:\(String(id, radix: 16));"
      if threadsInStopReply {
        text += "threads:\(target.threads.map { String($0, radix: 16) }.joined(separator: ","));"
      }
      // Expedited registers only save gdb a `g`; without them it asks, and gets the error then.
      if (try? target.readRegisters(thread: id, into: &registerImage, full: false)) != nil {
        for number in layout.expedited {
          text += "\(format2(UInt8(number))):\(String(decoding: hexEncoded(machineBytes(of: number)), as: UTF8.self));"
        }
      }
      return text
    }
    switch event {
    case .step(let id):
      return Array("T05\(thread(id))".utf8)
    case .halted(let id):
      // gdb shows the same pc again. LLDB steps on while the pc has not moved (its
      // instruction-step plan), for ever here: an exception reason (LLDB's key; gdb skips
      // keys it does not know) is a stop that plan does not explain, so LLDB shows it.
      return Array("T05\(thread(id))reason:exception;description:\(hexText(Self.haltedDescription));".utf8)
    case .breakpoint(let id, let kind, let address):
      let detail: String
      switch kind {
      case .software: detail = "swbreak:;"
      case .hardware: detail = "hwbreak:;"
      case .write: detail = "watch:\(String(address, radix: 16));"
      case .read: detail = "rwatch:\(String(address, radix: 16));"
      case .access: detail = "awatch:\(String(address, radix: 16));"
      }
      return Array("T05\(thread(id))\(detail)".utf8)
    case .interrupted(let id):
      return Array("T02\(thread(id))".utf8)
    case .crashed(let id, _):
      return Array("T0b\(thread(id))".utf8)
    case .exited(let status):
      return Array("W\(String(format2(UInt8(truncatingIfNeeded: status))))".utf8)
    }
  }

  static let haltedDescription = "vCPU halted: no instruction runs until an NMI, INIT or start-up IPI wakes it"

  private func hexText(_ text: String) -> String { String(decoding: hexEncoded(Array(text.utf8)), as: UTF8.self) }

  private var ok: [UInt8] { [UInt8(ascii: "O"), UInt8(ascii: "K")] }

  /// `Enn`, or `Enn;` and the reason in hex once the client asked for error strings.
  private func error(_ code: UInt8, _ reason: String? = nil) -> [UInt8] {
    let reply = [UInt8(ascii: "E"), hexDigit(code >> 4), hexDigit(code & 0xf)]
    guard errorStrings, let reason else { return reply }
    return reply + [UInt8(ascii: ";")] + hexEncoded(Array(reason.utf8))
  }
}

func format2(_ value: UInt8) -> String {
  String(decoding: [hexDigit(value >> 4), hexDigit(value & 0xf)], as: UTF8.self)
}

/// Lowercase hex, two digits a byte.
public func hexEncoded<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> [UInt8] {
  var out: [UInt8] = []
  out.reserveCapacity(bytes.count * 2)
  for byte in bytes {
    out.append(hexDigit(byte >> 4))
    out.append(hexDigit(byte & 0xf))
  }
  return out
}

/// nil for odd lengths or non-hex digits.
public func hexDecoded<Bytes: Collection<UInt8>>(_ digits: Bytes) -> [UInt8]? {
  guard digits.count % 2 == 0 else { return nil }
  var out: [UInt8] = []
  out.reserveCapacity(digits.count / 2)
  var iterator = digits.makeIterator()
  while let high = iterator.next(), let low = iterator.next() {
    guard let h = hexValue(high), let l = hexValue(low) else { return nil }
    out.append(h << 4 | l)
  }
  return out
}
