import HostCode

/// The JIT tier's state for one CPU: the code mapping, the context buffer generated code
/// works on, and the translations by linear RIP. A class the core holds by reference: it is
/// touched only on a Swift round trip (an exit), never per guest instruction.
///
/// Translations are keyed by linear address, and the data TLB by linear page, so both are only
/// as good as the translations and the data-page cache they came from. The data TLB is
/// emptied whenever the interpreter's TLB generation changes (any flush, INVLPG, a page
/// turning into code). The translations stay as long as every code page they came from still
/// maps to the same physical page with execute rights and holds the same code version
/// (`codePages`, checked by `X86Core.synchronizeJIT` when either generation moved); otherwise,
/// and on any change of code mode or privilege, all of them go at once: chained jumps between
/// blocks make dropping one page's blocks alone a matter of unpatching, not worth it.
final class X86JIT {
  static let codeSize = 32 << 20
  /// Room one block's code can take at most (16-byte rows of a few dozen instructions).
  static let largestBlock = 64 << 10
  /// Blocks end after this many instructions.
  static let blockLimit = 32

  let context = JITContext(byteCount: JITLayout.byteCount)
  let memory: ExecutableMemory
  let entryOffset = 0
  private(set) var exitOffset = 0
  private var codeStart = 0
  private var used = 0
  /// Code offset of each translated block, by linear RIP.
  private var translations: [UInt64: Int] = [:]
  /// Bumped by every flush: a chain exit's patch site is stale when it changed meanwhile.
  private(set) var flushCount: UInt64 = 0
  /// Entries into translated code (tests check that it ran).
  private(set) var entries: UInt64 = 0

  /// How many times code at a RIP is met untranslated before it is translated. Code that runs
  /// once (most of a kernel's boot) costs more to translate than to interpret: a Linux boot
  /// spent nearly half its time translating when every block was translated on sight.
  static let defaultTranslationThreshold: UInt8 = 32
  var translationThreshold = X86JIT.defaultTranslationThreshold
  /// Untranslated RIPs met so far and how often, direct-mapped (a collision just restarts
  /// the count: hot code gets translated all the same, a little later).
  private var coldTags = [UInt64](repeating: .max, count: 8192)
  private var coldCounts = [UInt8](repeating: 0, count: 8192)

  /// Whether the code at `rip` (with no translation) should still be interpreted: true the
  /// first `translationThreshold` times it is met.
  func isCold(_ rip: UInt64) -> Bool {
    guard translationThreshold > 0 else { return false }
    let slot = Int(truncatingIfNeeded: (rip ^ (rip >> 13)) & 8191)
    if coldTags[slot] != rip {
      coldTags[slot] = rip
      coldCounts[slot] = 1
      return true
    }
    guard coldCounts[slot] < translationThreshold else { return false }
    coldCounts[slot] &+= 1
    return true
  }

  var tlbGeneration = UInt64.max
  var codeGeneration = UInt64.max
  private(set) var mode = CodeMode.bits16
  private(set) var privilege = UInt64.max

  /// A code page translations came from: its physical page and that page's code version then.
  struct CodePage {
    var physicalPage: UInt64
    var version: UInt32
  }
  /// Every code page of the current translations, by linear page number.
  private(set) var codePages: [UInt64: CodePage] = [:]

  /// Whether `X86CPU`s use the JIT tier unless told otherwise: `HYPERSTEP_JIT=0` turns it off.
  static var enabledByDefault: Bool { hostEnvironment("HYPERSTEP_JIT") != "0" }

  /// nil when the host cannot run translated code (no executable mapping, or no BMI2, whose
  /// SHRX the TLB probe needs).
  init?() {
    guard let memory = ExecutableMemory(size: X86JIT.codeSize) else { return nil }
    self.memory = memory
    typealias R = HostAssembler.Register
    var asm = HostAssembler()
    // Entry (System V): save the callee-saved registers, RBX = context, R14 = budget, R12 =
    // 12, then jump to the block (the second argument).
    asm.bytes += [0x53, 0x55, 0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57]
    asm.move(R.rbx, R.rdi)
    asm.load(R.r14, .context(JITLayout.budget), size: 8)
    asm.moveImmediate(R.r12, 12)
    asm.bytes += [0xff, 0xe6]  // JMP RSI
    // Exit: the budget back to the context, restore, return RAX (the exit reason).
    exitOffset = asm.count
    asm.store(R.r14, .context(JITLayout.budget), size: 8)
    asm.bytes += [0x41, 0x5f, 0x41, 0x5e, 0x41, 0x5d, 0x41, 0x5c, 0x5d, 0x5b, 0xc3]
    // CPUID leaf 7 subleaf 0, EBX: bit 8 is BMI2.
    let cpuidOffset = asm.count
    asm.bytes += [0x53, 0xb8, 0x07, 0x00, 0x00, 0x00, 0x31, 0xc9, 0x0f, 0xa2, 0x89, 0xd8, 0x5b, 0xc3]
    memory.write(asm.bytes, at: 0)
    codeStart = (asm.count + 63) & ~63
    used = codeStart
    guard context.enter(memory, entry: cpuidOffset, target: 0) & (1 << 8) != 0 else { return nil }
    flush()
  }

  /// Drops every translation, the data TLB and the jump cache.
  func flush() {
    translations.removeAll(keepingCapacity: true)
    codePages.removeAll(keepingCapacity: true)
    used = codeStart
    flushCount &+= 1
    flushTLB()
    context.fill(words: 2 * JITLayout.jumpSlots, at: JITLayout.jumpCache, with: JITLayout.emptyTag)
  }

  /// Empties the data TLB alone.
  func flushTLB() {
    context.fill(words: 4 * JITLayout.tlbSlots, at: JITLayout.readTags, with: JITLayout.emptyTag)
  }

  /// A new code mode or privilege: everything goes. Returns whether it was new.
  func enter(mode: CodeMode, privilege: UInt64) -> Bool {
    guard mode != self.mode || privilege != self.privilege else { return false }
    self.mode = mode
    self.privilege = privilege
    flush()
    return true
  }

  func translation(at rip: UInt64) -> Int? { translations[rip] }

  /// Translates `block` (starting at `rip`) and records it; returns its code offset.
  func install(_ block: [JITInstruction], at rip: UInt64, mode: CodeMode, codePage: CodePage) -> Int {
    if used + X86JIT.largestBlock > memory.size { flush() }
    var translator = JITTranslator(mode: mode, base: used, exitOffset: exitOffset)
    let bytes = translator.translate(block)
    precondition(bytes.count <= X86JIT.largestBlock, "a translated block outgrew its room")
    let offset = used
    memory.write(bytes, at: offset)
    used = (used + bytes.count + 15) & ~15
    translations[rip] = offset
    codePages[rip >> 12] = codePage
    let slot = JITLayout.jumpCache + 16 * JITLayout.jumpSlot(rip)
    context[word: slot] = rip
    context[word: slot + 8] = memory.address(offset)
    return offset
  }

  /// Points the rel32 field at code offset `field` (a chain stub's jump) to `target`.
  func patch(field: Int, to target: Int) {
    memory.patch32(UInt32(truncatingIfNeeded: Int32(target - (field + 4))), at: field)
  }

  /// Enters the block at code offset `code` with `budget` instructions; returns the exit
  /// reason and the budget left.
  func run(_ code: Int, budget: UInt64) -> (reason: UInt64, left: UInt64) {
    entries &+= 1
    context[word: JITLayout.budget] = budget
    let reason = context.enter(memory, entry: entryOffset, target: memory.address(code))
    return (reason, context[word: JITLayout.budget])
  }

  /// Copies a data-page cache entry into the TLB slot of linear page `page`.
  func fillTLB(page: UInt64, hostPage: UInt64, read: Bool, write: Bool) {
    let slot = Int(truncatingIfNeeded: page & UInt64(JITLayout.tlbSlots - 1))
    let delta = hostPage &- (page << 12)
    if read {
      context[word: JITLayout.readTags + 8 * slot] = page
      context[word: JITLayout.readDeltas + 8 * slot] = delta
    }
    if write {
      context[word: JITLayout.writeTags + 8 * slot] = page
      context[word: JITLayout.writeDeltas + 8 * slot] = delta
    }
  }
}
