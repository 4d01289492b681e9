// Benchmark driver: measures Hyperstep's own code paths so Benchmarks/*.sh can compare
// them with C baselines in the same run. Not a test: it asserts nothing, it reports.
//
//   hyperstep-bench boot ITERATIONS MEMORY_MIB   total nanoseconds to build + boot the minimal guest
//   hyperstep-bench write-guest NAME PATH        write a bundled test guest's image to PATH
//   hyperstep-bench write-flat NAME PATH         write its loadable bytes (the ELF's one segment)
import KVM
import Machine
import TestGuests

#if canImport(Glibc)
  import Glibc
#endif

func usage() -> Never {
  HostIO.write(
    2,
    Array("usage: hyperstep-bench boot ITERATIONS MEMORY_MIB | write-guest NAME PATH | write-flat NAME PATH\n".utf8)[
      ...])
  exit(2)
}

let arguments = CommandLine.arguments.dropFirst()
switch arguments.first {
case "boot":
  guard arguments.count == 3, let iterations = Int(arguments.dropFirst().first!), let mib = UInt64(arguments.last!)
  else {
    usage()
  }
  var configuration = MachineConfiguration(kernel: TestGuests.minimal.image, kernelName: "minimal")
  configuration.format = .flatReal
  configuration.memorySize = mib << 20
  let start = HostIO.monotonicNanoseconds()
  for _ in 0..<iterations {
    do {
      let machine = try Machine(configuration: configuration, console: CapturedConsole())
      guard case .debugExit = machine.run() else {
        HostIO.write(2, Array("minimal guest did not reach its debug exit\n".utf8)[...])
        exit(1)
      }
    } catch {
      HostIO.write(2, Array("hyperstep-bench: \(error)\n".utf8)[...])
      exit(1)
    }
  }
  print(HostIO.monotonicNanoseconds() - start)
case "write-guest":
  guard arguments.count == 3, let guest = TestGuests.all.first(where: { $0.name == arguments.dropFirst().first! })
  else {
    usage()
  }
  let path = arguments.last!
  let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
  guard fd >= 0, HostIO.write(fd, guest.image[...]) else { usage() }
  close(fd)
case "write-flat":
  guard arguments.count == 3, let guest = TestGuests.all.first(where: { $0.name == arguments.dropFirst().first! }),
    let elf = try? ELFFile(guest.elf), let segment = elf.segments.first
  else { usage() }
  let fd = open(arguments.last!, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
  guard fd >= 0, HostIO.write(fd, elf.fileBytes(of: segment)) else { usage() }
  close(fd)
default:
  usage()
}
