import ArgumentParser
import Debugger
import GDBRemote
import Introspection
import KVM
import Machine

struct DebugCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "debug",
    abstract: "Start the guest halted before its first instruction and serve gdb or LLDB (like qemu -s -S).",
    discussion: """
      Attach with: gdb KERNEL.elf -ex 'target remote :1234', or lldb KERNEL.elf -o 'gdb-remote 1234' \
      (Debian's lldb-16; for unix:PATH, process connect --plugin gdb-remote unix-connect://PATH). The default \
      listener is 127.0.0.1:1234 and never all interfaces unless you name one. Exit status: \
      the guest's, as `hyperstep run`; 0 when the client kills the VM.
      """)

  @OptionGroup var machine: MachineOptions

  @Option(
    help: ArgumentHelp(
      "Where to listen: HOST:PORT, :PORT (127.0.0.1), [IPV6]:PORT or unix:PATH (a stale socket there is replaced, nothing else).",
      valueName: "address"))
  var gdb: String = "127.0.0.1:1234"

  @Option(
    name: .customLong("gdb-arch"),
    help: ArgumentHelp(
      "Registers offered to gdb: i386, x86-64, or auto: i386 for 32-bit and real-mode images (ELF32, Multiboot, flat), x86-64 for ELF64 and bzImage.",
      valueName: "arch"))
  var gdbArch: String = "auto"

  @Option(help: ArgumentHelp("Interrupts while stepping: block (default) or deliver.", valueName: "policy"))
  var irq: String = "block"

  func run() throws {
    guard let policy = InterruptPolicy(rawValue: irq) else {
      fail("--irq '\(irq)' is not block or deliver", status: .badInput)
    }
    guard let architecture = GDBArchitectureChoice(rawValue: gdbArch) else {
      fail("--gdb-arch '\(gdbArch)' is not i386, x86-64 or auto", status: .badInput)
    }
    let configuration = machine.configuration()
    HostSocket.ignoreBrokenPipes()
    if machine.isAArch64(kernelBytes: machine.kernel == nil ? nil : configuration.kernel) {
      if machine.kernel == nil {
        fail("no bundled AArch64 demo: give --kernel with an AArch64 ELF or Image", status: .badInput)
      }
      let vm: VirtMachine
      do { vm = try VirtMachine(configuration: configuration) } catch {
        fail(error.description, status: error.isBadInput ? .badInput : .hostFailure)
      }
      let listener = listen()
      let target = GDBVirtTarget(vm: vm, deliverInterrupts: policy == .deliver)
      Glibc.exit(GDBServer(listener: listener, target: target, layout: .aarch64).serve())
    }
    let listener = listen()
    let vm: Machine
    do {
      vm = try Machine(configuration: configuration)
    } catch {
      fail(error.description, status: error.isBadInput ? .badInput : .hostFailure)
    }
    let session: IntrospectionSession
    do { session = try IntrospectionSession(machine: vm, policy: policy) } catch {
      fail("\(error)", status: .hostFailure)
    }
    let layout = Self.layout(for: architecture, entry: vm.image.entry)
    let server = GDBServer(listener: listener, target: GDBMachineTarget(session: session), layout: layout)
    Glibc.exit(server.serve())
  }

  /// gdb refuses a target description whose architecture differs from the one it took from
  /// the program's ELF ("Selected architecture i386 is not compatible..."), so a 32-bit
  /// kernel must be offered the i386 registers. The mode the image is entered in decides.
  static func layout(for choice: GDBArchitectureChoice, entry: EntryMode) -> RegisterLayout {
    switch choice {
    case .i386: return .i386
    case .x86_64: return .x86_64
    case .auto:
      if case .long64 = entry { return .x86_64 }
      return .i386
    }
  }

  private func listen() -> Int32 {
    let address: GDBAddress
    do { address = try GDBAddress.parse(gdb) } catch {
      fail("--gdb \(gdb): \(error)", status: .badInput)
    }
    do {
      switch address {
      case .unix(let path):
        let fd = try HostSocket.listenUnix(path: path)
        warn(
          "waiting for a debugger on \(path) (gdb -ex 'target remote \(path)', or lldb -o 'process connect --plugin gdb-remote unix-connect://\(path)')"
        )
        return fd
      case .tcp(let host, let port, let ipv6Literal):
        let listener = try HostSocket.listenTCP(host: host, port: port, ipv6Literal: ipv6Literal)
        warn(
          "waiting for a debugger on \(listener.endpoint) (gdb -ex 'target remote \(listener.endpoint)', or lldb -o 'gdb-remote \(listener.endpoint)')"
        )
        return listener.fd
      }
    } catch {
      fail("--gdb \(gdb): \(error)", status: .badInput)
    }
  }
}

#if canImport(Glibc)
  import Glibc
#endif
