import ArgumentParser
import DemoGuest
import KVM
import Devices
import Machine

/// Options shared by every command that boots a guest.
struct MachineOptions: ParsableArguments {
  @Option(
    name: .long,
    help: ArgumentHelp("Kernel to boot: ELF, Multiboot, or a raw binary with --kernel-format.", valueName: "file")
  )
  var kernel: String?

  // Numbers are taken as text, even when they start with a dash, and parsed in
  // `configuration()`: ArgumentParser would take "-5" for an option and report a missing value.
  @Option(
    name: .long, parsing: .unconditional,
    help: ArgumentHelp("Guest RAM, e.g. 64M, 1G, 512K (a bare number means MiB).", valueName: "size"))
  var memory: String = "64M"

  @Option(name: .long, parsing: .unconditional, help: "Number of vCPUs.")
  var cpus: String = "1"

  @Option(name: .long, help: ArgumentHelp("Kernel command line (Multiboot and Linux).", valueName: "string"))
  var cmdline: String = ""

  @Option(name: .long, help: ArgumentHelp("Initial ramdisk for a Linux kernel.", valueName: "file"))
  var initrd: String?

  @Option(
    name: .long,
    help: ArgumentHelp("Image format: auto, elf, multiboot, flat-real or flat-protected.", valueName: "format"))
  var kernelFormat: String = "auto"

  @Option(
    name: .long,
    help: ArgumentHelp(
      "Who unpacks a Linux bzImage's kernel: host (Hyperstep, with the system's liblzma/zlib/libzstd; no KASLR) or guest (the kernel's own decompressor).",
      valueName: "who"))
  var linuxDecompressor: String = "host"

  @Option(
    name: .long,
    help: ArgumentHelp(
      "The guest's real-time clock at power-on: now (the host's clock) or a UTC date YYYY-MM-DDTHH:MM:SS (QEMU's -rtc base=), for repeatable runs.",
      valueName: "date"))
  var rtcBase: String = "now"

  @Option(
    name: .long, parsing: .unconditional,
    help: ArgumentHelp("Load address of a flat binary (default 0x7c00 real, 0x100000 protected).", valueName: "addr"))
  var loadAddress: String?

  @Option(
    name: .long,
    help: ArgumentHelp(
      "Engine: kvm, emu (Hyperstep's own x86-64 CPU) or auto (KVM when /dev/kvm works, else emu).",
      valueName: "engine"))
  var accel: String = "auto"

  @Option(
    name: .long,
    help: ArgumentHelp(
      "Guest architecture: x86_64, aarch64 (QEMU virt with a Cortex-A57, on Hyperstep's own CPU) or auto (from the kernel file).",
      valueName: "arch"))
  var arch: String = "auto"

  /// Whether the guest is AArch64: `--arch aarch64`, or with `auto` a kernel file that says so
  /// (an ELF for EM_AARCH64, an arm64 Image). Exits with status 2 on a bad `--arch`, and on
  /// `--accel kvm`, which cannot run AArch64 on an x86-64 host.
  func isAArch64(kernelBytes: [UInt8]?) -> Bool {
    let aarch64: Bool
    switch arch {
    case "aarch64", "arm64": aarch64 = true
    case "x86_64", "x86-64", "amd64": aarch64 = false
    case "auto": aarch64 = kernelBytes.map(VirtMachine.isAArch64Kernel) ?? false
    default: fail("--arch '\(arch)' is not one of auto, x86_64, aarch64", status: .badInput)
    }
    if aarch64 && accel == "kvm" {
      fail("--accel kvm cannot run an AArch64 guest on this x86-64 host; use --accel emu (or auto)", status: .badInput)
    }
    return aarch64
  }

  @Flag(help: "Give even a single-vCPU guest the in-kernel PIC, IOAPIC, local APIC and PIT (timer interrupts).")
  var irqchip = false

  @Option(
    name: .long, parsing: .unconditional,
    help: ArgumentHelp("Stop the guest after this many seconds (at most 10000000).", valueName: "seconds"))
  var timeout: String?

  /// Builds the machine configuration, or exits with status 2 and a one-line reason. The
  /// values of options come first, so a mistyped number is reported before any file is read.
  func configuration() -> MachineConfiguration {
    let memorySize: UInt64
    let cpuCount: Int
    var address: UInt64?
    var timeoutMilliseconds: Int?
    do {
      memorySize = try OptionValue.memorySize(memory, option: "--memory")
      cpuCount = try OptionValue.count(
        cpus, option: "--cpus", in: 1...MachineConfiguration.maximumCPUs,
        limitReason: "the vCPUs an xAPIC machine can address")
      if let loadAddress {
        address = try OptionValue.unsigned(loadAddress, option: "--load-address", what: "an address", example: "0x7c00")
      }
      if let timeout { timeoutMilliseconds = try OptionValue.milliseconds(timeout, option: "--timeout") }
    } catch {
      fail(error.description, status: .badInput)
    }
    guard let format = ImageFormat(rawValue: kernelFormat) else {
      fail(
        "--kernel-format '\(kernelFormat)' is not one of \(ImageFormat.allCases.map(\.rawValue).joined(separator: ", "))",
        status: .badInput)
    }
    guard let decompressor = LinuxDecompressor(rawValue: linuxDecompressor) else {
      fail(
        "--linux-decompressor '\(linuxDecompressor)' is not one of \(LinuxDecompressor.allCases.map(\.rawValue).joined(separator: ", "))",
        status: .badInput)
    }
    guard let accelerator = AcceleratorChoice(rawValue: accel) else {
      fail(
        "--accel '\(accel)' is not one of \(AcceleratorChoice.allCases.map(\.rawValue).joined(separator: ", "))",
        status: .badInput)
    }
    var configuration: MachineConfiguration
    if let path = kernel {
      configuration = MachineConfiguration(kernel: readInput(path, wanted: "a kernel image file"), kernelName: path)
    } else {
      configuration = MachineConfiguration(kernel: DemoGuest.demo.image, kernelName: "bundled demo guest")
    }
    configuration.memorySize = memorySize
    configuration.cpuCount = cpuCount
    if irqchip { configuration.interruptController = true }
    configuration.commandLine = cmdline
    if let initrd {
      configuration.initrd = readInput(initrd, wanted: "an initrd file")
      configuration.initrdName = initrd
    }
    configuration.format = format
    configuration.loadAddress = address
    configuration.linuxDecompressor = decompressor
    if rtcBase != "now" {
      guard let date = CivilTime(parsing: rtcBase) else {
        fail("--rtc-base '\(rtcBase)' is not now or a date YYYY-MM-DDTHH:MM:SS", status: .badInput)
      }
      configuration.clockStart = date.secondsSinceEpoch
    }
    configuration.timeoutMilliseconds = timeoutMilliseconds
    configuration.accelerator = accelerator
    return configuration
  }
}

/// The whole of a file the user named, or an exit with status 2 and a one-line reason; when
/// the path is no regular file (a device, a FIFO), the reason says what was `wanted` instead.
func readInput(_ path: String, wanted: String) -> [UInt8] {
  do {
    return try HostIO.readFile(path)
  } catch {
    fail("\(path): \(error)" + (error.nonRegularKind == nil ? "" : "; give \(wanted)"), status: .badInput)
  }
}

/// "64M", "1G", "512K", "4096" (MiB, as QEMU's -m), or with a "B"/"iB" suffix.
func parseSize(_ text: String) -> UInt64? {
  var digits = Substring(text.uppercased())
  for suffix in ["IB", "B"] where digits.hasSuffix(suffix) && digits.count > suffix.count {
    digits = digits.dropLast(suffix.count)
  }
  var shift: UInt64 = 20
  if let last = digits.last, let unit = ["K": UInt64(10), "M": 20, "G": 30, "T": 40][String(last)] {
    shift = unit
    digits = digits.dropLast()
  }
  guard let value = UInt64(digits), value <= UInt64.max >> shift else { return nil }
  return value << shift
}

/// "0x7c00" or "31744".
func parseAddress(_ text: String) -> UInt64? {
  let lower = text.lowercased()
  if lower.hasPrefix("0x") { return UInt64(lower.dropFirst(2), radix: 16) }
  return UInt64(lower)
}
