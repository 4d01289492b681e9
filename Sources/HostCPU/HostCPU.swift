import CHostCPU

#if canImport(Glibc)
  import Glibc
#endif

/// Why the oracle could not run an instruction at all (as opposed to the instruction
/// faulting, which is an outcome).
public enum HostCPUError: Error, Equatable, CustomStringConvertible {
  /// The fixed layout could not be mapped (an address already taken) or handlers installed.
  case setupFailed(errno: Int32, step: String)
  case badLength(Int)
  case badState(String)

  public var description: String {
    switch self {
    case .setupFailed(let errno, let step):
      // SAFETY: strerror returns a pointer to a NUL-terminated message that String copies at once.
      "host CPU oracle: \(step) failed: \(unsafe String(cString: strerror(errno)))"
    case .badLength(let length):
      "host CPU oracle: an instruction is 1-\(NativeLayout.maxInstructionLength) bytes, not \(length)"
    case .badState(let reason): "host CPU oracle: \(reason)"
    }
  }
}

/// Runs one x86-64 instruction on the host CPU, in this process, from a given state (see
/// CHostCPU.h and docs/ARCHITECTURE.md for how). One run at a time per process: callers on
/// several threads are serialized.
///
/// The caller vouches for the instruction (the generator in `X86Generator` does): it must keep
/// control transfers inside the sandbox and away from the exit stub, keep memory accesses in
/// the data window (or its guard pages), and must not be one of the instructions that would
/// change the process rather than fault (SYSCALL, INT 0x80, MOV/POP to FS or GS, WRFSBASE...).
public enum HostCPU {
  public static func execute(_ bytes: [UInt8], from state: NativeState) throws(HostCPUError) -> NativeOutcome {
    guard (1...NativeLayout.maxInstructionLength).contains(bytes.count) else { throw .badLength(bytes.count) }
    guard state.gprs.count == 16 else { throw .badState("16 GPRs expected, got \(state.gprs.count)") }
    guard state.dataWindow.count == NativeLayout.dataSize else {
      throw .badState("a data window of \(NativeLayout.dataSize) bytes expected, got \(state.dataWindow.count)")
    }
    guard state.rip == NativeLayout.codeEntry else {
      throw .badState(
        "the instruction runs at 0x\(String(NativeLayout.codeEntry, radix: 16)), not at 0x\(String(state.rip, radix: 16))"
      )
    }
    // The one check the oracle can make without decoding: any instruction may push, so RSP
    // must point where a stack access faults or stays in the window, never at host memory.
    guard NativeLayout.isInSandbox(state.gprs[4]) else {
      throw .badState(
        "RSP 0x\(String(state.gprs[4], radix: 16)) is outside the sandbox: a push could reach host memory")
    }
    guard state.fxsave.count == 512 else {
      throw .badState("a 512-byte FXSAVE image expected, got \(state.fxsave.count)")
    }
    // FXRSTOR64 in the trampoline faults on reserved MXCSR bits (SDM Vol. 2, FXRSTOR): refuse them here.
    guard state.mxcsr & ~0xffff == 0 else {
      throw .badState("MXCSR 0x\(String(state.mxcsr, radix: 16)) sets reserved bits")
    }
    var input = hostcpu_registers()
    // SAFETY: `gprs` is a C array of 16 UInt64 inside `input`; the loop writes indices 0-15 only.
    unsafe withUnsafeMutableBytes(of: &input.gprs) { raw in
      for i in 0..<16 { unsafe raw.storeBytes(of: state.gprs[i], toByteOffset: 8 * i, as: UInt64.self) }
    }
    input.rflags = state.rflags
    // SAFETY: `fxsave` is a C array of 512 bytes inside `input`; the loop writes indices 0-511 only.
    unsafe withUnsafeMutableBytes(of: &input.fxsave) { raw in
      for i in 0..<512 { unsafe raw[i] = state.fxsave[i] }
    }
    var result = hostcpu_result()
    var windowOut = [UInt8](repeating: 0, count: NativeLayout.dataSize)
    // SAFETY: every buffer lives across the call and has the size hostcpu_execute reads or writes:
    // `bytes` its count, both windows HOSTCPU_DATA_SIZE (checked above / allocated so).
    let error = unsafe bytes.withUnsafeBufferPointer { code in
      unsafe state.dataWindow.withUnsafeBufferPointer { windowIn in
        unsafe windowOut.withUnsafeMutableBufferPointer { windowOut in
          unsafe hostcpu_execute(
            code.baseAddress, UInt32(code.count), &input, windowIn.baseAddress, windowOut.baseAddress, &result)
        }
      }
    }
    if error == EINVAL { throw .badLength(bytes.count) }
    // SAFETY: hostcpu_setup_failure returns a static NUL-terminated string.
    if error != 0 { throw .setupFailed(errno: error, step: unsafe String(cString: hostcpu_setup_failure())) }
    return outcome(of: result, length: bytes.count, window: windowOut)
  }

  /// Runs `body` with the watchdog armed once for all its runs on this thread, instead of
  /// arming and disarming a timer around each (about 1 us each way on this host). The timer
  /// interrupts this thread periodically meanwhile, so `body` should only run instructions
  /// and compute (a blocking system call in it may see EINTR).
  public static func batch<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
    let armed = hostcpu_batch_begin() == 0
    defer { if armed { hostcpu_batch_end() } }
    return try body()
  }

  /// Sorts a raw result into the outcomes the tester compares. A signal can mean the
  /// instruction faulted, or that it retired and control went somewhere the layout makes
  /// catchable: an INT3 of the code page, or a page that cannot be executed.
  static func outcome(of result: hostcpu_result, length: Int, window: [UInt8]) -> NativeOutcome {
    var gprs = [UInt64](repeating: 0, count: 16)
    var registers = result.registers
    // SAFETY: `gprs` is a C array of 16 UInt64 inside `registers`; indices 0-15 only.
    unsafe withUnsafeBytes(of: &registers.gprs) { raw in
      for i in 0..<16 { gprs[i] = unsafe raw.load(fromByteOffset: 8 * i, as: UInt64.self) }
    }
    var fxsave = [UInt8](repeating: 0, count: 512)
    // SAFETY: `fxsave` is a C array of 512 bytes inside `registers`; indices 0-511 only.
    unsafe withUnsafeBytes(of: &registers.fxsave) { raw in
      for i in 0..<512 { fxsave[i] = unsafe raw[i] }
    }
    var state = NativeState(
      gprs: gprs, rip: result.rip, rflags: result.registers.rflags, dataWindow: window, fxsave: fxsave)
    let entry = NativeLayout.codeEntry
    let instruction = entry..<entry + UInt64(length)
    switch hostcpu_end(UInt32(result.end)) {
    case HOSTCPU_END_FALLTHROUGH:
      return NativeOutcome(state: state, end: .fellThrough)
    case HOSTCPU_END_TIMEOUT:
      return NativeOutcome(state: state, end: .timedOut)
    default:
      break
    }
    let vector = UInt8(truncatingIfNeeded: result.trap_number)
    // An INT3 of the code page outside the instruction: the instruction branched there.
    if vector == 3, result.signal == SIGTRAP, NativeLayout.isInCodePage(result.rip &- 1),
      !instruction.contains(result.rip &- 1)
    {
      state.rip = result.rip &- 1
      return NativeOutcome(state: state, end: .branchedInCodePage)
    }
    // A fetch fault at RIP itself, not at the instruction: it retired and branched there.
    let fetch: UInt64 = 1 << 4
    if vector == 14, result.error_code & fetch != 0, result.fault_address == result.rip,
      !instruction.contains(result.rip)
    {
      return NativeOutcome(state: state, end: .branchedOutOfCodePage)
    }
    let exception = NativeException(
      vector: vector, errorCode: result.error_code, faultAddress: vector == 14 ? result.fault_address : nil,
      signal: result.signal)
    return NativeOutcome(state: state, end: .exception, exception: exception)
  }
}
