import Machine

// What every session shares, whatever machine it drives: which subscription an event
// belongs to, how the answers of several handlers combine, and how an event is named.

extension EventFilter {
  /// Whether a subscription with this filter gets `event`.
  func matches(_ event: Event) -> Bool {
    switch (self, event) {
    case (.singleStep, .singleStep): true
    case (.softwareBreakpoint(let at), .softwareBreakpoint(let address)): at == address
    case (.hardwareBreakpoint(let at), .hardwareBreakpoint(let address)): at == address
    case (.writeWatchpoint(let at, _), .writeWatchpoint(let address, _, _)): at == address
    case (.memoryAccess(let wanted), .memoryAccess(let hit, let watch)):
      wanted == watch && wanted.kinds.contains(hit.kind)
    case (.exception(let vectors), .exception(let vector)): vectors.isEmpty || vectors.contains(vector)
    case (.exception(let classes), .exceptionSyndrome(let syndrome)):
      classes.isEmpty || classes.contains(syndrome.exceptionClass)
    case (.interrupt(let vectors), .interrupt(let vector)): vectors.isEmpty || vectors.contains(vector)
    case (.port(let range), .access(.portWrite(let port, _, _))), (.port(let range), .access(.portRead(let port, _))):
      range.contains(port)
    case (.mmio(let range), .access(.mmioWrite(let address, _, _))),
      (.mmio(let range), .access(.mmioRead(let address, _))):
      range.contains(address)
    case (.msrWrite(let indices), .access(.msrWrite(let index, _))): indices.contains(index)
    case (.systemRegisterWrite(let names), .systemRegisterWrite(let name, _)): names.contains(name)
    case (.halt, .halt): true
    case (.shutdown, .shutdown): true
    case (.guestRequest, .guestRequest): true
    default: false
    }
  }
}

/// The handlers' answers to one event, combined: a stop wins, the first skip counts,
/// toggles cancel in pairs; an engine switch is kept for the session to act on (the last
/// asked for wins).
struct Answers {
  var toggles = 0
  var skip: EventResponse?
  var engine: EngineKind?

  /// Takes one answer; true when it is a stop, which ends the dispatch.
  @inline(__always)
  mutating func take(_ response: EventResponse) -> Bool {
    switch response {
    case .continue: break
    case .toggleSingleStep: toggles += 1
    case .emulateAndSkip: if skip == nil { skip = response }
    case .stop: return true
    case .switchEngine(let engine): self.engine = engine
    }
    return false
  }

  var combined: EventResponse { skip ?? (toggles % 2 == 1 ? .toggleSingleStep : .continue) }
}

/// A short name for an event in error messages.
func describe(_ event: Event) -> String {
  func hex<T: BinaryInteger>(_ value: T) -> String { "0x" + String(value, radix: 16) }
  switch event {
  case .singleStep(let pc): return "single-step at \(hex(pc))"
  case .softwareBreakpoint(let address): return "software breakpoint at \(hex(address))"
  case .hardwareBreakpoint(let address): return "hardware breakpoint at \(hex(address))"
  case .writeWatchpoint(let address, _, _): return "write watchpoint at \(hex(address))"
  case .memoryAccess(let hit, _):
    let kind = hit.kind == .write ? "write" : hit.kind == .read ? "read" : "fetch"
    return "memory \(kind) at \(hex(hit.address))"
  case .exception(let vector): return "exception \(vector)"
  case .exceptionSyndrome(let syndrome):
    return "exception class \(hex(syndrome.exceptionClass)) (ESR_EL1 \(hex(syndrome.esr)))"
  case .interrupt(let vector): return "interrupt \(hex(vector))"
  case .access(.portWrite(let port, _, _)): return "write to port \(hex(port))"
  case .access(.portRead(let port, _)): return "read of port \(hex(port))"
  case .access(.mmioWrite(let address, _, _)): return "MMIO write at \(hex(address))"
  case .access(.mmioRead(let address, _)): return "MMIO read at \(hex(address))"
  case .access(.msrWrite(let index, _)): return "write of MSR \(hex(index))"
  case .systemRegisterWrite(let name, let value): return "write of \(hex(value)) to \(name)"
  case .halt: return "HLT"
  case .shutdown: return "machine end"
  case .guestRequest(let value): return "guest request \(value)"
  }
}
