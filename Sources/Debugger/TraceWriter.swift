import KVM
import Machine

/// Writes one line per stop, as text or JSON Lines, through a large buffer so that a
/// trace costs no allocation and no system call per step.
public final class TraceWriter {
  public enum Format: String, Sendable, CaseIterable { case text, jsonl }

  private let fd: Int32
  private let format: Format
  private let symbols: SymbolTable?
  private var buffer: [UInt8] = []
  private var count = 0
  /// The last symbol found, reused while the PC stays inside it.
  private var cached: (start: UInt64, end: UInt64, name: [UInt8])?

  public init(fd: Int32, format: Format, symbols: SymbolTable?) {
    self.fd = fd
    self.format = format
    self.symbols = symbols
    buffer.reserveCapacity(1 << 16)
  }

  public var linesWritten: Int { count }

  /// The first write that failed: the output is incomplete from there on, and the trace
  /// must end (nothing more is written after it).
  public private(set) var failure: HostIO.WriteError?

  public func write(_ stop: Stop) {
    switch format {
    case .text:
      appendHex(stop.pc)
      _ = appendSymbol(stop.pc, prefix: Self.space)
      if stop.reason != .step {
        append(" ")
        append(stop.reason.name)
        appendDetail(stop.reason, json: false)
      }
      buffer.append(0x0a)
    case .jsonl:
      append("{\"step\":")
      appendDecimal(UInt64(count))
      append(",\"vcpu\":")
      appendDecimal(UInt64(stop.vcpu))
      append(",\"rip\":\"")
      appendHex(stop.pc)
      append("\",\"event\":\"")
      append(stop.reason.name)
      append("\"")
      if symbols != nil {
        let mark = buffer.count
        append(",\"symbol\":\"")
        if appendSymbol(stop.pc, prefix: []) { append("\"") } else { buffer.removeSubrange(mark...) }
      }
      appendDetail(stop.reason, json: true)
      append("}\n")
    }
    count += 1
    if buffer.count >= 60_000 { flush() }
  }

  public func flush() {
    guard !buffer.isEmpty else { return }
    if failure == nil {
      do { try HostIO.writeAll(fd, buffer[...]) } catch { failure = error }
    }
    buffer.removeAll(keepingCapacity: true)
  }

  private func appendDetail(_ reason: StopReason, json: Bool) {
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
        append(Self.outcomeName(outcome))
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
    case .step, .breakpoint, .interrupted:
      break
    }
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
    }
  }

  private func appendSymbol(_ pc: UInt64, prefix: [UInt8]) -> Bool {
    guard let symbols else { return false }
    if cached == nil || pc < cached!.start || pc >= cached!.end {
      guard let entry = symbols.entry(containing: pc) else { return false }
      let index = symbols.entries.firstIndex(of: entry)!
      let end = index + 1 < symbols.entries.count ? symbols.entries[index + 1].address : .max
      cached = (entry.address, end, Array(entry.name.utf8))
    }
    append(prefix)
    buffer.append(contentsOf: cached!.name)
    let offset = pc - cached!.start
    if offset != 0 {
      append(Self.plus)
      appendHex(offset)
    }
    return true
  }

  @inline(__always)
  private func append(_ text: String) {
    buffer.append(contentsOf: text.utf8)
  }

  @inline(__always)
  private func append(_ bytes: [UInt8]) {
    buffer.append(contentsOf: bytes)
  }

  // Pieces of every line, as bytes once rather than as strings on every step.
  private static let space: [UInt8] = [0x20]
  private static let plus: [UInt8] = [0x2b]

  private func appendHex(_ value: UInt64) {
    buffer.append(0x30)
    buffer.append(0x78)
    var started = false
    for shift in stride(from: 60, through: 0, by: -4) {
      let digit = UInt8((value >> UInt64(shift)) & 0xf)
      if digit != 0 || started || shift == 0 {
        started = true
        buffer.append(digit < 10 ? 0x30 + digit : 0x57 + digit)
      }
    }
  }

  private func appendDecimal(_ value: UInt64) {
    if value >= 10 { appendDecimal(value / 10) }
    buffer.append(0x30 + UInt8(value % 10))
  }
}
