import KVM
import Machine

/// Writes one line per stop, as text or JSON Lines, through a large buffer so that a
/// trace costs no allocation and no system call per step.
public final class TraceWriter {
  public enum Format: String, Sendable, CaseIterable { case text, jsonl }

  private let fd: Int32
  /// The lines not yet written, and what makes them. One value, so that formatting a line is
  /// one access to the writer's state rather than one per byte appended. Nil only while
  /// `writePlainSteps` holds them.
  private var lines: TraceLines?

  public init(fd: Int32, format: Format, symbols: SymbolTable?) {
    self.fd = fd
    lines = TraceLines(format: format, symbols: symbols.map(SymbolLookup.init))
  }

  public var linesWritten: Int { lines!.count }

  /// The first write that failed: the output is incomplete from there on, and the trace
  /// must end (nothing more is written after it).
  public private(set) var failure: HostIO.WriteError?

  public func write(_ stop: Stop) {
    if lines!.append(stop) >= Self.chunk { flush() }
  }

  /// The lines of plain steps (`StopReason.step`) on `vcpu`, each at a PC that `steps` hands
  /// to its body, for those in `range` (nil: all): the same lines `write` makes of them, for
  /// a tracer that takes steps in batches (`Stepper.stepPlain`). The lines stay in a local
  /// value for the whole batch, where `write` would reach into the writer a few times per
  /// line. The body answers false (no more) after the step at `until`, the `maxLines`th line,
  /// or a failed write. Returns how many steps it saw, how many lines it wrote, and whether
  /// the last step was at `until`.
  public func writePlainSteps(
    vcpu: Int, range: ClosedRange<UInt64>?, until: UInt64?, maxLines: Int,
    _ steps: (_ body: (UInt64) -> Bool) throws -> Void
  ) rethrows -> (steps: Int, lines: Int, reachedUntil: Bool) {
    var batch = lines.take()!
    defer { lines = batch }
    var seen = 0
    var written = 0
    var reachedUntil = false
    try steps { pc in
      seen += 1
      if range?.contains(pc) ?? true {
        written += 1
        if batch.appendStep(pc: pc, vcpu: vcpu) >= Self.chunk {
          writeOut(&batch.buffer)
          if failure != nil { return false }
        }
      }
      if pc == until {
        reachedUntil = true
        return false
      }
      return written < maxLines
    }
    return (seen, written, reachedUntil)
  }

  /// Written in chunks this big: a write costs a system call, whatever its size.
  static let chunk = 1 << 20

  public func flush() { writeOut(&lines!.buffer) }

  private func writeOut(_ buffer: inout [UInt8]) {
    guard !buffer.isEmpty else { return }
    if failure == nil {
      do { try HostIO.writeAll(fd, buffer[...]) } catch { failure = error }
    }
    buffer.removeAll(keepingCapacity: true)
  }

  public static func outcomeName(_ outcome: RunOutcome) -> String {
    switch outcome {
    case .debugExit: "debug-exit"
    case .halted: "halted"
    case .haltedForever: "halted-forever"
    case .tripleFault: "triple-fault"
    case .internalError: "internal-error"
    case .entryFailed: "entry-failed"
    case .timedOut: "timed-out"
    case .powerOff: "power-off"
    case .reset: "reset"
    case .kernelPanic: "kernel-panic"
    }
  }
}

/// The buffered lines of a trace and their formatting, byte by byte.
struct TraceLines {
  let format: TraceWriter.Format
  var symbols: SymbolLookup?
  var buffer: [UInt8] = []
  var count = 0
  private var recentSteps = RecentLines()

  init(format: TraceWriter.Format, symbols: SymbolLookup?) {
    self.format = format
    self.symbols = symbols
    buffer.reserveCapacity(TraceWriter.chunk + 4096)
  }

  /// Appends the line for one stop; returns the bytes now buffered.
  mutating func append(_ stop: Stop) -> Int {
    // A pattern, not `==`: the derived == on this payload enum is an out-of-line call.
    if case .step = stop.reason { return appendStep(pc: stop.pc, vcpu: stop.vcpu) }
    appendStepNumber()
    appendRest(stop)
    count += 1
    return buffer.count
  }

  /// `append` for a plain step (`StopReason.step`).
  mutating func appendStep(pc: UInt64, vcpu: Int) -> Int {
    appendStepNumber()
    // The rest of a plain step's line depends on its PC and vCPU alone, and a trace is
    // mostly loops: it is made once per address (while it stays in its slot) and copied.
    let slot = recentSteps.slot(pc: pc, vcpu: vcpu)
    if let line = recentSteps.line(in: slot, pc: pc, vcpu: vcpu) {
      buffer.append(contentsOf: recentSteps.bytes[line])
    } else {
      let mark = buffer.count
      appendRest(Stop(reason: .step, pc: pc, vcpu: vcpu))
      recentSteps.keep(buffer[mark...], in: slot, pc: pc, vcpu: vcpu)
    }
    count += 1
    return buffer.count
  }

  /// A JSON line's start, with the step number.
  private mutating func appendStepNumber() {
    guard format == .jsonl else { return }
    append("{\"step\":")
    appendDecimal(UInt64(count))
  }

  /// The line after the step number (JSON Lines) or all of it (text).
  private mutating func appendRest(_ stop: Stop) {
    switch format {
    case .text:
      appendHex(stop.pc)
      _ = appendSymbol(stop.pc, prefix: " ")
      if case .step = stop.reason {
      } else {
        append(" ")
        append(stop.reason.name)
        appendDetail(stop.reason, json: false)
      }
      buffer.append(0x0a)
    case .jsonl:
      append(",\"vcpu\":")
      appendDecimal(UInt64(stop.vcpu))
      append(",\"rip\":\"")
      appendHex(stop.pc)
      append("\",\"event\":\"")
      append(stop.reason.name)
      append("\"")
      if appendSymbol(stop.pc, prefix: ",\"symbol\":\"") { append("\"") }
      appendDetail(stop.reason, json: true)
      append("}\n")
    }
  }

  private mutating func appendDetail(_ reason: StopReason, json: Bool) {
    switch reason {
    case .exception(let vector), .interrupt(let vector):
      append(json ? ",\"vector\":" : " ")
      appendDecimal(UInt64(vector))
    case .guestRequest(let value):
      append(json ? ",\"value\":" : " ")
      appendDecimal(UInt64(value))
    case .halt(let interruptsEnabled):
      if interruptsEnabled { append(json ? ",\"interrupts\":true" : " interrupts-enabled") }
    case .exit(let outcome):
      if case .debugExit(let value, _) = outcome {
        append(json ? ",\"exit_value\":" : " debug-exit ")
        appendDecimal(UInt64(value))
      } else {
        append(json ? ",\"outcome\":\"" : " ")
        append(TraceWriter.outcomeName(outcome))
        if json { append("\"") }
      }
    case .msrWrite(let index, let value):
      append(json ? ",\"msr\":\"" : " ")
      append(MSRNames.name(of: index))
      append(json ? "\",\"value\":\"" : " ")
      appendHex(value)
      if json { append("\"") }
    case .memoryAccess(let hits):
      // "write 0x2000 4" per access: kind, address, size.
      for (index, hit) in hits.enumerated() {
        append(json ? (index == 0 ? ",\"accesses\":[{\"kind\":\"" : ",{\"kind\":\"") : " ")
        append(hit.kind == .write ? "write" : hit.kind == .read ? "read" : "execute")
        append(json ? "\",\"address\":\"" : " ")
        appendHex(hit.address)
        append(json ? "\",\"size\":" : " ")
        appendDecimal(hit.size)
        if json { append(index == hits.count - 1 ? "}]" : "}") }
      }
    case .step, .breakpoint, .interrupted, .protectedPageWritten:
      break
    }
  }

  /// `prefix`, the symbol `pc` is in and its offset (SYMBOL+0xOFFSET, or SYMBOL at its start);
  /// nothing, and false, without a symbol at or below `pc`.
  private mutating func appendSymbol(_ pc: UInt64, prefix: StaticString) -> Bool {
    guard symbols != nil, let found = symbols!.symbol(containing: pc) else { return false }
    append(prefix)
    buffer.append(contentsOf: symbols!.name(found.index))
    let offset = pc - found.start
    if offset != 0 {
      buffer.append(0x2b)  // +
      appendHex(offset)
    }
    return true
  }

  @inline(__always)
  private mutating func append(_ text: StaticString) {
    text.withUTF8Buffer { buffer.append(contentsOf: $0) }
  }

  @inline(__always)
  private mutating func append(_ text: String) {
    buffer.append(contentsOf: text.utf8)
  }

  /// 0x and the value in lowercase hex, without leading zeros.
  private mutating func appendHex(_ value: UInt64) {
    buffer.append(0x30)
    buffer.append(0x78)
    let digits = value == 0 ? 1 : (64 - value.leadingZeroBitCount + 3) / 4
    var shift = UInt64(digits - 1) * 4
    while true {
      let digit = UInt8(truncatingIfNeeded: value >> shift) & 0xf
      buffer.append(digit < 10 ? 0x30 + digit : 0x57 + digit)
      if shift == 0 { break }
      shift -= 4
    }
  }

  private mutating func appendDecimal(_ value: UInt64) {
    if value >= 10 { appendDecimal(value / 10) }
    buffer.append(0x30 + UInt8(value % 10))
  }
}

/// The symbol an address is in, remembered: a trace asks for one per instruction, mostly
/// the same few in a loop, and a look-up is a binary search and a name turned into bytes.
struct SymbolLookup {
  let table: SymbolTable
  /// Each symbol's name as bytes, made on first use.
  private var names: [[UInt8]?]
  /// The last symbol found and where it ends (the next symbol's address), reused while the
  /// PC stays inside it.
  private var last: (start: UInt64, end: UInt64, index: Int)?
  /// Addresses seen before, direct-mapped: the address and its symbol's index + 1 (0: none).
  private var seenAddresses: [UInt64]
  private var seenSymbols: [Int]
  private static let slots = 1024

  init(_ table: SymbolTable) {
    self.table = table
    names = Array(repeating: nil, count: table.entries.count)
    // An address that no slot can hold yet: slot 0's first address is 1, the others' 0.
    seenAddresses = Array(repeating: 0, count: Self.slots)
    seenAddresses[0] = 1
    seenSymbols = Array(repeating: 0, count: Self.slots)
  }

  /// The symbol at or before `pc`: its index in the table and its address.
  mutating func symbol(containing pc: UInt64) -> (index: Int, start: UInt64)? {
    if let last, pc >= last.start && pc < last.end { return (last.index, last.start) }
    let slot = Int(truncatingIfNeeded: (pc ^ pc >> 10) & UInt64(Self.slots - 1))
    let index: Int
    if seenAddresses[slot] == pc {
      guard seenSymbols[slot] != 0 else { return nil }
      index = seenSymbols[slot] - 1
    } else {
      let found = table.index(containing: pc)
      seenAddresses[slot] = pc
      seenSymbols[slot] = found.map { $0 + 1 } ?? 0
      guard let found else { return nil }
      index = found
    }
    let entries = table.entries
    let end = index + 1 < entries.count ? entries[index + 1].address : .max
    last = (entries[index].address, end, index)
    return (index, entries[index].address)
  }

  mutating func name(_ index: Int) -> [UInt8] {
    if let name = names[index] { return name }
    let name = Array(table.entries[index].name.utf8)
    names[index] = name
    return name
  }
}

/// Lines of plain steps by address, direct-mapped (see `TraceLines.append`). The lines sit
/// in one array, a fixed stretch per slot, so that copying one out touches no reference
/// count of its own; a longer line is not kept (it is made each time).
struct RecentLines {
  private static let slots = 4096
  /// The bytes a slot can hold.
  private static let stride = 128
  private var pcs: [UInt64] = Array(repeating: 0, count: slots)
  /// -1: an empty slot (no vCPU has that number).
  private var vcpus: [Int] = Array(repeating: -1, count: slots)
  private var lengths: [Int] = Array(repeating: 0, count: slots)
  private(set) var bytes: [UInt8] = Array(repeating: 0, count: slots * stride)

  func slot(pc: UInt64, vcpu: Int) -> Int {
    Int(truncatingIfNeeded: (pc ^ pc >> 12) &+ UInt64(truncatingIfNeeded: vcpu)) & (Self.slots - 1)
  }

  /// Where in `bytes` the slot's line is, if it holds the line of `pc` on `vcpu`.
  func line(in slot: Int, pc: UInt64, vcpu: Int) -> Range<Int>? {
    guard pcs[slot] == pc && vcpus[slot] == vcpu else { return nil }
    let start = slot * Self.stride
    return start..<start + lengths[slot]
  }

  mutating func keep(_ line: ArraySlice<UInt8>, in slot: Int, pc: UInt64, vcpu: Int) {
    guard line.count <= Self.stride else { return }
    pcs[slot] = pc
    vcpus[slot] = vcpu
    lengths[slot] = line.count
    let start = slot * Self.stride
    bytes.replaceSubrange(start..<start + line.count, with: line)
  }
}
