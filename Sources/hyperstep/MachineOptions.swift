import ArgumentParser
import DemoGuest
import KVM
import Machine

/// Options shared by every command that boots a guest.
struct MachineOptions: ParsableArguments {
  @Option(
    name: .long,
    help: ArgumentHelp("Kernel to boot: ELF, Multiboot, or a raw binary with --kernel-format.", valueName: "file")
  )
  var kernel: String?

  @Option(
    name: .long, help: ArgumentHelp("Guest RAM, e.g. 64M, 1G, 512K (a bare number means MiB).", valueName: "size"))
  var memory: String = "64M"

  @Option(name: .long, help: "Number of vCPUs.")
  var cpus: Int = 1

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
    help: ArgumentHelp("Load address of a flat binary (default 0x7c00 real, 0x100000 protected).", valueName: "addr"))
  var loadAddress: String?

  @Flag(help: "Give even a single-vCPU guest the in-kernel PIC, IOAPIC, local APIC and PIT (timer interrupts).")
  var irqchip = false

  @Option(name: .long, help: ArgumentHelp("Stop the guest after this many seconds.", valueName: "seconds"))
  var timeout: Double?

  /// Builds the machine configuration, or exits with status 2 and a one-line reason.
  func configuration() -> MachineConfiguration {
    var configuration: MachineConfiguration
    if let path = kernel {
      do {
        configuration = MachineConfiguration(kernel: try HostIO.readFile(path), kernelName: path)
      } catch {
        fail("\(path): \(error)", status: .badInput)
      }
    } else {
      configuration = MachineConfiguration(kernel: DemoGuest.demo.image, kernelName: "bundled demo guest")
    }
    guard let size = parseSize(memory) else {
      fail("--memory '\(memory)' is not a size (try 64M, 1G or 512K)", status: .badInput)
    }
    configuration.memorySize = size
    configuration.cpuCount = cpus
    if irqchip { configuration.interruptController = true }
    configuration.commandLine = cmdline
    if let initrd {
      do {
        configuration.initrd = try HostIO.readFile(initrd)
        configuration.initrdName = initrd
      } catch {
        fail("\(initrd): \(error)", status: .badInput)
      }
    }
    guard let format = ImageFormat(rawValue: kernelFormat) else {
      fail(
        "--kernel-format '\(kernelFormat)' is not one of \(ImageFormat.allCases.map(\.rawValue).joined(separator: ", "))",
        status: .badInput)
    }
    configuration.format = format
    if let loadAddress {
      guard let address = parseAddress(loadAddress) else {
        fail("--load-address '\(loadAddress)' is not an address (try 0x7c00)", status: .badInput)
      }
      configuration.loadAddress = address
    }
    if let timeout {
      guard timeout > 0, timeout < 1e7 else {
        fail("--timeout must be a positive number of seconds", status: .badInput)
      }
      configuration.timeoutMilliseconds = Int(timeout * 1000)
    }
    return configuration
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
