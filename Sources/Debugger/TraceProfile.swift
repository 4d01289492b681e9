/// Turns a stream of stops into a function-level profile: per-function instruction counts,
/// a call tree, folded stacks for flame graphs, and Chrome trace events for Perfetto.
///
/// Calls and returns are inferred from symbols, as instruction tracers do: arriving at the
/// first byte of a function (or at a handler, through an exception or interrupt) is a call;
/// arriving in a function already on the stack is a return to it; anything else is a jump
/// from one function into another. Time is counted in instructions.
public final class TraceProfile {
  struct Node {
    var name: String
    var parent: Int?
    var children: [String: Int] = [:]
    var selfCount = 0
    var calls = 0
  }

  struct Frame {
    var node: Int
    var start: Int
  }

  /// A finished call, for Chrome's trace-event format ("X" events).
  struct Span {
    var name: String
    var start: Int
    var duration: Int
  }

  private let symbols: SymbolTable?
  private var nodes: [Node] = [Node(name: "", parent: nil)]  // 0: the root
  private var stack: [Frame] = []
  private var spans: [Span] = []
  private var counts: [String: Int] = [:]
  public private(set) var instructions = 0
  private let vcpu: Int

  public init(symbols: SymbolTable?, vcpu: Int = 0) {
    self.symbols = symbols
    self.vcpu = vcpu
  }

  /// Counts the instruction about to run at this stop (none follows an exit or a final halt).
  public func record(_ stop: Stop) {
    switch stop.reason {
    case .exit, .halt(interruptsEnabled: false): return
    default: break
    }
    let entry = symbols?.entry(containing: stop.pc)
    let name = entry?.name ?? "[unknown]"
    let atEntry = entry?.address == stop.pc
    var event = false
    if case .exception = stop.reason { event = true }
    if case .interrupt = stop.reason { event = true }

    if stack.isEmpty {
      push(name)
    } else if name == nodes[stack.last!.node].name && !event {
      // Still in the same function (a jump back to its start is a loop, not a call).
    } else if atEntry || event {
      push(name)
    } else if let index = stack.lastIndex(where: { nodes[$0.node].name == name }) {
      while stack.count > index + 1 { pop() }
    } else {
      pop()
      push(name)
    }
    nodes[stack.last!.node].selfCount += 1
    counts[name, default: 0] += 1
    instructions += 1
  }

  private func push(_ name: String) {
    let parent = stack.last?.node ?? 0
    let node: Int
    if let existing = nodes[parent].children[name] {
      node = existing
    } else {
      node = nodes.count
      nodes.append(Node(name: name, parent: parent))
      nodes[parent].children[name] = node
    }
    nodes[node].calls += 1
    stack.append(Frame(node: node, start: instructions))
  }

  private func pop() {
    guard let frame = stack.popLast() else { return }
    spans.append(Span(name: nodes[frame.node].name, start: frame.start, duration: instructions - frame.start))
  }

  /// Closes every open call at the end of the trace.
  public func finish() {
    while !stack.isEmpty { pop() }
  }

  // MARK: Outputs

  /// "count function" lines, most instructions first.
  public func summary() -> String {
    counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
      .map { "\($0.value) \($0.key)\n" }.joined()
  }

  /// Folded stacks ("a;b;c count"), the input of flamegraph.pl and speedscope.
  public func folded() -> String {
    var lines: [String] = []
    func walk(_ node: Int, _ path: String) {
      let here = node == 0 ? "" : (path.isEmpty ? nodes[node].name : path + ";" + nodes[node].name)
      if node != 0 && nodes[node].selfCount > 0 { lines.append("\(here) \(nodes[node].selfCount)") }
      for child in nodes[node].children.values.sorted() { walk(child, here) }
    }
    walk(0, "")
    return lines.map { $0 + "\n" }.joined()
  }

  /// An indented tree: "function  calls=N  instructions=inclusive (self)".
  public func callTree() -> String {
    var out = ""
    func inclusive(_ node: Int) -> Int {
      nodes[node].selfCount + nodes[node].children.values.reduce(0) { $0 + inclusive($1) }
    }
    func walk(_ node: Int, _ depth: Int) {
      if node != 0 {
        let n = nodes[node]
        out +=
          String(repeating: "  ", count: depth - 1)
          + "\(n.name)  calls=\(n.calls)  instructions=\(inclusive(node)) (self \(n.selfCount))\n"
      }
      for child in nodes[node].children.values.sorted() { walk(child, depth + 1) }
    }
    walk(0, 0)
    return out
  }

  /// Chrome trace-event JSON (opens in Perfetto and chrome://tracing); one microsecond per
  /// instruction, so durations read as instruction counts.
  public func chromeTrace() -> String {
    var out = "{\"displayTimeUnit\":\"ns\",\"otherData\":{\"time unit\":\"1 us = 1 instruction\"},\"traceEvents\":[\n"
    out += "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":\(vcpu),\"args\":{\"name\":\"vCPU \(vcpu)\"}}"
    for span in spans.sorted(by: { $0.start != $1.start ? $0.start < $1.start : $0.duration > $1.duration }) {
      out +=
        ",\n{\"name\":\"\(Self.escaped(span.name))\",\"ph\":\"X\",\"ts\":\(span.start),\"dur\":\(span.duration),\"pid\":1,\"tid\":\(vcpu)}"
    }
    return out + "\n]}\n"
  }

  static func escaped(_ text: String) -> String {
    var out = ""
    for character in text.unicodeScalars {
      switch character {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      default:
        if character.value < 0x20 {
          out +=
            "\\u" + String(repeating: "0", count: 4 - String(character.value, radix: 16).count)
            + String(character.value, radix: 16)
        } else {
          out.unicodeScalars.append(character)
        }
      }
    }
    return out
  }
}
