import ArgumentParser
import Debugger
import Introspection
import KVM
import Machine

struct DebugCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "debug",
    abstract: "Start the guest halted before its first instruction and serve gdb or LLDB (like qemu -s -S).",
    discussion: """
      Attach with: gdb -ex 'target remote :1234' (or LLDB: gdb-remote 1234). The default \
      listener is 127.0.0.1:1234 and never all interfaces unless you name one. Exit status: \
      the guest's, as `hyperstep run`; 0 when the client kills the VM.
      """)

  @OptionGroup var machine: MachineOptions

  @Option(help: ArgumentHelp("Where to listen: HOST:PORT, :PORT or unix:PATH.", valueName: "address"))
  var gdb: String = "127.0.0.1:1234"

  @Option(help: ArgumentHelp("Interrupts while stepping: block (default) or deliver.", valueName: "policy"))
  var irq: String = "block"

  func run() throws {
    guard let policy = InterruptPolicy(rawValue: irq) else {
      fail("--irq '\(irq)' is not block or deliver", status: .badInput)
    }
    let configuration = machine.configuration()
    HostSocket.ignoreBrokenPipes()
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
    let server = GDBServer(listener: listener, target: GDBMachineTarget(session: session))
    Glibc.exit(server.serve())
  }

  private func listen() -> Int32 {
    if gdb.hasPrefix("unix:") {
      let path = String(gdb.dropFirst("unix:".count))
      do {
        let fd = try HostSocket.listenUnix(path: path)
        warn("waiting for a debugger on \(path) (gdb -ex 'target remote \(path)')")
        return fd
      } catch {
        fail("--gdb \(gdb): \(error)", status: .badInput)
      }
    }
    guard let colon = gdb.lastIndex(of: ":"), let port = UInt16(gdb[gdb.index(after: colon)...]) else {
      fail("--gdb '\(gdb)' is not HOST:PORT, :PORT or unix:PATH", status: .badInput)
    }
    let host = gdb[..<colon].isEmpty ? "127.0.0.1" : String(gdb[..<colon])
    do {
      let (fd, actual) = try HostSocket.listenTCP(host: host, port: port)
      warn("waiting for a debugger on \(host):\(actual) (gdb -ex 'target remote \(host):\(actual)')")
      return fd
    } catch {
      fail("--gdb \(gdb): \(error)", status: .badInput)
    }
  }
}

#if canImport(Glibc)
  import Glibc
#endif
