// swift-tools-version:6.2
import PackageDescription

/// Unsafe constructs are checked everywhere: the bottom modules (KVM, GuestMemory, HostCode) mark each one with
/// `unsafe` and a SAFETY comment; everywhere else the compiler flags any that creep in.
let strictSafety: [SwiftSetting] = [.strictMemorySafety()]

let package = Package(
  name: "Hyperstep",
  platforms: [.macOS(.v13)],
  products: [
    .executable(name: "hyperstep", targets: ["hyperstep"]),
    .library(name: "Machine", targets: ["Machine"]),
    .library(name: "Introspection", targets: ["Introspection"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2")
  ],
  targets: [
    // Bottom layers: the only places that touch pointers or system calls.
    .target(name: "CKVM"),
    .target(name: "KVM", dependencies: ["CKVM"], swiftSettings: strictSafety),
    .target(name: "GuestMemory", dependencies: ["KVM"], swiftSettings: strictSafety),
    // Executable memory, the raw context buffer and the call into translated code (the x86 JIT tier).
    .target(name: "HostCode", swiftSettings: strictSafety),
    // The hardware oracle of the differential tester (issue 10): runs one instruction natively.
    .target(name: "CHostCPU"),
    // Host-side decompression of kernel payloads through Debian's system libraries (dlopen).
    .target(name: "CHostLibraries", linkerSettings: [.linkedLibrary("dl")]),
    .target(name: "HostLibraries", dependencies: ["CHostLibraries"], swiftSettings: strictSafety),
    .target(name: "HostCPU", dependencies: ["CHostCPU"], swiftSettings: strictSafety),
    // Pure Swift: no KVM, testable anywhere.
    .target(name: "Devices", swiftSettings: strictSafety),
    // The x86-64 ISA: state, decoder, interpreter, paging. Pure Swift; reaches RAM through GuestMemory.
    .target(name: "X86", dependencies: ["GuestMemory", "HostCode"], swiftSettings: strictSafety),
    // The AArch64 ISA (issue 12): state, decoder, interpreter, MMU. Pure Swift, like X86.
    .target(name: "AArch64", dependencies: ["GuestMemory"], swiftSettings: strictSafety),
    .target(
      name: "Machine", dependencies: ["KVM", "GuestMemory", "Devices", "X86", "AArch64", "HostLibraries"],
      swiftSettings: strictSafety),
    .target(name: "GDBRemote", swiftSettings: strictSafety),
    // Random x86-64 instructions and starting states for the differential tester.
    .target(name: "X86Generator", dependencies: ["HostCPU"], swiftSettings: strictSafety),
    .target(
      name: "Debugger", dependencies: ["Machine", "KVM", "GuestMemory", "Devices"], swiftSettings: strictSafety),
    // The event API: subscriptions and handlers on top of the steppers.
    .target(
      name: "Introspection", dependencies: ["Debugger", "Machine", "KVM", "GuestMemory", "AArch64"],
      swiftSettings: strictSafety),
    // Guests assembled from Guests/ by the toolchain's clang and ld.lld at build time.
    .target(name: "DemoGuest", plugins: ["GuestBuilder"]),
    .target(name: "TestGuests", dependencies: ["KVM"], plugins: ["GuestBuilder"]),
    .target(name: "AArch64Guests", plugins: ["GuestBuilder"]),
    .plugin(name: "GuestBuilder", capability: .buildTool()),
    .executableTarget(
      name: "hyperstep",
      dependencies: [
        "Machine", "Debugger", "Introspection", "GDBRemote", "GuestMemory", "DemoGuest",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ], swiftSettings: strictSafety),
    .executableTarget(
      name: "hyperstep-bench", dependencies: ["KVM", "Machine", "Introspection", "TestGuests", "X86", "HostCode"],
      path: "Benchmarks/hyperstep-bench"),
    // Hyperstep's AArch64 interpreter against qemu-aarch64, instruction by instruction.
    .executableTarget(name: "a64-difftest", dependencies: ["AArch64", "GuestMemory"], swiftSettings: strictSafety),
    .executableTarget(
      name: "x86-difftest", dependencies: ["HostCPU", "X86Generator", "X86", "GuestMemory"], swiftSettings: strictSafety
    ),
    .testTarget(name: "DevicesTests", dependencies: ["Devices"]),
    .testTarget(name: "GuestMemoryTests", dependencies: ["GuestMemory"]),
    .testTarget(name: "MachineTests", dependencies: ["Machine", "Debugger", "TestGuests", "GuestMemory", "KVM"]),
    .testTarget(name: "DebuggerTests", dependencies: ["Debugger", "Machine", "TestGuests", "KVM", "GuestMemory"]),
    .testTarget(name: "GDBRemoteTests", dependencies: ["GDBRemote"]),
    .testTarget(name: "HostCPUTests", dependencies: ["HostCPU", "X86Generator"]),
    .testTarget(name: "X86Tests", dependencies: ["X86", "GuestMemory", "HostCode"]),
    .testTarget(name: "AArch64Tests", dependencies: ["AArch64", "GuestMemory", "AArch64Guests", "Machine"]),
    .testTarget(
      name: "IntrospectionTests",
      dependencies: [
        "Introspection", "Debugger", "Machine", "TestGuests", "KVM", "GuestMemory", "AArch64", "AArch64Guests",
      ]),
    .testTarget(
      name: "CLITests",
      dependencies: [
        "KVM", "Machine", "TestGuests", "AArch64Guests", "DemoGuest", "hyperstep", "x86-difftest", "a64-difftest",
      ]),
  ]
)
