import Foundation
import PackagePlugin

/// Assembles the guests under `Guests/<folder>/` (one or more folders per target) with the Swift toolchain's own
/// clang, ld.lld and llvm-objcopy, and embeds the results in the target as a
/// generated Swift file. Nothing beyond the toolchain is needed, so `swift build`
/// and `swift test` work on a fresh machine.
@main
struct GuestBuilder: BuildToolPlugin {
  /// Which folders of `Guests/` feed which target. The benchmark guests are test guests too,
  /// so that a test keeps them booting on every engine with the output they promise.
  static let folders = ["DemoGuest": ["demo"], "TestGuests": ["tests", "bench"], "AArch64Guests": ["aarch64"]]

  func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
    guard let folders = Self.folders[target.name] else {
      throw GuestBuilderError("GuestBuilder has no Guests/ folder for target \(target.name)")
    }
    let guestsRoot = context.package.directoryURL.appending(path: "Guests")
    let sources = try folders.flatMap { folder in
      let sourceFolder = guestsRoot.appending(path: folder)
      return try FileManager.default.contentsOfDirectory(atPath: sourceFolder.path())
        .filter { $0.hasSuffix(".S") }
        .sorted()
        .map { sourceFolder.appending(path: $0) }
    }
    let script = guestsRoot.appending(path: "build-guests.sh")
    let includes = try FileManager.default.contentsOfDirectory(atPath: guestsRoot.path())
      .filter { $0.hasSuffix(".inc") }
      .map { guestsRoot.appending(path: $0) }
    let output = context.pluginWorkDirectoryURL.appending(path: "\(target.name)Images.swift")
    let work = context.pluginWorkDirectoryURL.appending(path: "build")
    let clang = try context.tool(named: "clang").url
    let lld = try context.tool(named: "ld.lld").url
    let objcopy = try context.tool(named: "llvm-objcopy").url

    return [
      .buildCommand(
        displayName: "Assembling \(sources.count) guest(s) for \(target.name)",
        executable: URL(filePath: "/bin/sh"),
        arguments: [script.path(), target.name, output.path(), work.path(), clang.path(), lld.path(), objcopy.path()]
          + sources.map { $0.path() },
        inputFiles: sources + includes + [script, guestsRoot.appending(path: "guest.ld")],
        outputFiles: [output])
    ]
  }
}

struct GuestBuilderError: Error, CustomStringConvertible {
  let description: String
  init(_ description: String) { self.description = description }
}
