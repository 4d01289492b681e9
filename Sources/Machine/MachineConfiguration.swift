/// Everything needed to build and boot a virtual machine.
public struct MachineConfiguration: Sendable {
  /// Bytes of guest RAM.
  public var memorySize: UInt64 = 64 << 20
  public var cpuCount: Int = 1
  /// The kernel's bytes and a name for messages (usually its path).
  public var kernel: [UInt8]
  public var kernelName: String
  public var format: ImageFormat = .auto
  /// Where a flat binary goes (defaults: 0x7c00 for real mode, 1 MiB for protected mode).
  public var loadAddress: UInt64?
  /// Who unpacks a bzImage's compressed kernel (LinuxUnpacked.swift).
  public var linuxDecompressor: LinuxDecompressor = .host
  /// The real-time clock's date at power-on (seconds since 1970, UTC); nil for the host's
  /// clock. A fixed date makes interpreter runs of a guest that reads the clock repeatable.
  public var clockStart: Int64?
  public var commandLine: String = ""
  /// An initial ramdisk for a Linux kernel.
  public var initrd: [UInt8]?
  public var initrdName = "initrd"
  /// Stop the run after this many milliseconds (nil: never).
  public var timeoutMilliseconds: Int?
  /// In-kernel PIC, IOAPIC, local APICs and PIT. nil: only with more than one vCPU, so a
  /// single-vCPU guest's HLT reaches Hyperstep directly.
  public var interruptController: Bool?
  /// The engine: KVM, the interpreter (`emu`), or `auto` (KVM when /dev/kvm works).
  public var accelerator: AcceleratorChoice = .auto

  public static let minimumMemory: UInt64 = 2 << 20
  /// The most vCPUs: an xAPIC addresses 255 local APICs (ID 0xff is the broadcast).
  public static let maximumCPUs = 255

  public init(kernel: [UInt8], kernelName: String) {
    self.kernel = kernel
    self.kernelName = kernelName
  }
}

/// A problem with the configuration or the kernel, worded for the user.
public enum MachineError: Error, CustomStringConvertible {
  /// The kernel image is unusable; the description names the file.
  case badImage(file: String, ImageError)
  /// A configuration value is out of range.
  case badConfiguration(String)
  /// The host could not provide the VM (no /dev/kvm, out of memory, ...).
  case host(String)

  public var description: String {
    switch self {
    case .badImage(let file, let error): "\(file): \(error)"
    case .badConfiguration(let message): message
    case .host(let message): message
    }
  }

  /// True for mistakes in what the user gave us (exit status 2), false for host failures.
  public var isBadInput: Bool {
    if case .host = self { return false }
    return true
  }
}
