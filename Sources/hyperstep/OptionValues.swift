import KVM
import Machine

/// An option's value that cannot be used, as the one line the user sees: the option, the
/// text exactly as given, and what is wrong with it ("--cpus -1: must be at least 1").
struct BadOptionValue: Error, CustomStringConvertible {
  let option: String
  let text: String
  let problem: String

  var description: String {
    // An empty or blank value would vanish from the message; quote it so it shows.
    let shown = text.isEmpty || text.contains(where: \.isWhitespace) ? "'\(text)'" : text
    return "\(option) \(shown): \(problem)"
  }
}

/// Parsers for the numbers options take. Each says, in words, why a value was refused.
///
/// Numeric options are declared `parsing: .unconditional` so that ArgumentParser hands over
/// `-5` as the value instead of taking it for an option ("Missing value for '--cpus'"); the
/// text then comes here, and a negative number is refused for what it is.
enum OptionValue {
  /// A decimal whole number in `range`. `limitReason` says why the upper bound is what it is.
  static func count(
    _ text: String, option: String, in range: ClosedRange<Int>, limitReason: String? = nil
  ) throws(BadOptionValue) -> Int {
    func refuse(_ problem: String) -> BadOptionValue { BadOptionValue(option: option, text: text, problem: problem) }
    let tooLarge = refuse("at most \(range.upperBound)" + (limitReason.map { " (\($0))" } ?? ""))
    let tooSmall = refuse("must be at least \(range.lowerBound)")
    guard let value = Int(text) else {
      // Digits that do not fit in an Int are a number all the same, only far out of range.
      let digits = text.first == "-" || text.first == "+" ? text.dropFirst() : Substring(text)
      guard !digits.isEmpty, digits.allSatisfy(\.isASCIIDigit) else { throw refuse("not a whole number") }
      throw text.first == "-" ? tooSmall : tooLarge
    }
    guard value >= range.lowerBound else { throw tooSmall }
    guard value <= range.upperBound else { throw tooLarge }
    return value
  }

  /// The longest --timeout: about 115 days. Longer is surely a mistake, and the deadline
  /// arithmetic in milliseconds stays far from overflow.
  static let maximumSeconds: Double = 10_000_000

  /// A number of seconds above 0 and at most `maximumSeconds`, in milliseconds (rounded up,
  /// so that a tiny timeout is still a timeout and not zero).
  static func milliseconds(_ text: String, option: String) throws(BadOptionValue) -> Int {
    func refuse(_ problem: String) -> BadOptionValue { BadOptionValue(option: option, text: text, problem: problem) }
    // Double(_:) also takes "nan" and "inf"; neither is a duration.
    guard let seconds = Double(text), !seconds.isNaN else { throw refuse("not a number of seconds") }
    guard seconds > 0 else { throw refuse("must be more than 0 seconds") }
    guard seconds <= maximumSeconds else { throw refuse("at most \(Int(maximumSeconds)) seconds") }
    return Int((seconds * 1000).rounded(.up))
  }

  /// Guest RAM: a size as `parseSize` reads it that Hyperstep can give a guest on this host.
  static func memorySize(_ text: String, option: String) throws(BadOptionValue) -> UInt64 {
    func refuse(_ problem: String) -> BadOptionValue { BadOptionValue(option: option, text: text, problem: problem) }
    guard let size = parseSize(text) else {
      // Digits and a unit that parseSize still refuses can only have overflowed.
      let unit = text.drop(while: \.isASCIIDigit)
      if !text.isEmpty, unit.count < text.count, parseSize("1" + unit) != nil {
        throw refuse("more than this host has (\(describeSize(HostIO.physicalMemory)))")
      }
      throw refuse("not a size (try 64M, 1G or 512K)")
    }
    guard size >= MachineConfiguration.minimumMemory else {
      throw refuse("too small; Hyperstep needs at least \(describeSize(MachineConfiguration.minimumMemory))")
    }
    guard size % 4096 == 0 else { throw refuse("not a whole number of 4 KiB pages (\(size) bytes)") }
    let host = HostIO.physicalMemory
    guard size <= host else { throw refuse("more than this host has (\(describeSize(host)))") }
    return size
  }

  /// An unsigned number, `0x` hex or decimal, of at most `bits` bits. `what` names it for
  /// the refusal ("an address"), `example` is a value to suggest.
  static func unsigned(
    _ text: String, option: String, bits: Int = 64, what: String, example: String
  ) throws(BadOptionValue) -> UInt64 {
    func refuse(_ problem: String) -> BadOptionValue { BadOptionValue(option: option, text: text, problem: problem) }
    let maximum = bits == 64 ? UInt64.max : (1 << UInt64(bits)) - 1
    if let value = parseAddress(text), value <= maximum { return value }
    let negative = text.hasPrefix("-")
    let magnitude = negative ? String(text.dropFirst()) : text
    guard isNumeral(magnitude) else { throw refuse("not \(what) (try \(example))") }
    guard !negative else { throw refuse("must not be negative (try \(example))") }
    // A numeral that was not accepted above is too large for `bits`, or even for 64.
    throw refuse("at most 0x\(String(maximum, radix: 16)) (\(bits) bits)")
  }

  /// Whether `text` is written as a number ("0x" and hex digits, or decimal digits),
  /// whatever its size.
  private static func isNumeral(_ text: String) -> Bool {
    let lower = text.lowercased()
    let isHex = lower.hasPrefix("0x")
    let digits = isHex ? lower.dropFirst(2) : lower[...]
    return !digits.isEmpty && digits.allSatisfy { isHex ? $0.isHexDigit : $0.isASCIIDigit }
  }
}

extension Character {
  fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
