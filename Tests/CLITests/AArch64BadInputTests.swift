import AArch64Guests
import Foundation
import Machine
import TestGuests
import Testing

/// Bad input for AArch64 guests: one line on stderr and status 2 for a bad file or option;
/// bad guest behaviour reaches the guest as the architecture says, with a note for what the
/// interpreter lacks.
@Suite struct AArch64BadInputTests {
  func expectRefused(_ arguments: [String], mentioning fragments: [String]) throws {
    let run = try CLI.run(arguments)
    #expect(run.status == 2, "status \(run.status) for \(arguments): \(run.stderr)")
    #expect(run.stdout.isEmpty)
    #expect(run.stderr.split(separator: "\n").count == 1, "\(run.stderr)")
    #expect(run.stderr.hasPrefix("hyperstep: error: "), "\(run.stderr)")
    for fragment in fragments { #expect(run.stderr.contains(fragment), "'\(fragment)' missing from: \(run.stderr)") }
  }

  @Test func anX86ELFGivenAsAArch64() throws {
    let path = try CLI.temporaryFile(TestGuests.longMode.elf, name: "x86-as-arm.elf")
    try expectRefused(["run", "--arch", "aarch64", "--kernel", path], mentioning: [path, "x86-64", "AArch64"])
  }

  /// A file with neither the ELF magic nor the arm64 Image magic ("ARM\x64" at offset 56).
  @Test func anImageWithABadMagic() throws {
    var image = [UInt8](repeating: 0, count: 4096)
    image[56..<60] = [0x41, 0x52, 0x4d, 0x00]
    let path = try CLI.temporaryFile(image, name: "bad-magic.Image")
    try expectRefused(["run", "--arch", "aarch64", "--kernel", path], mentioning: [path])
  }

  @Test func kvmCannotRunAArch64Here() throws {
    let path = try CLI.temporaryFile(AArch64Guests.a64Checks.elf, name: "a64-kvm.elf")
    try expectRefused(["run", "--accel", "kvm", "--kernel", path], mentioning: ["--accel kvm", "AArch64"])
  }

  @Test func tooManyCPUsForTheGIC() throws {
    let path = try CLI.temporaryFile(AArch64Guests.a64Checks.elf, name: "a64-cpus.elf")
    try expectRefused(["run", "--cpus", "9", "--kernel", path], mentioning: ["--cpus", "8"])
  }

  @Test func anUnknownArchitecture() throws {
    try expectRefused(["run", "--arch", "riscv64"], mentioning: ["--arch 'riscv64'"])
  }

  /// A64 code at an address outside guest RAM: the ELF says 0x1000, RAM starts at 1 GiB.
  @Test func anELFLinkedOutsideRAM() throws {
    var elf = AArch64Guests.a64Checks.elf
    // Program header 0's p_paddr (e_phoff + 24), moved to 0x1000.
    let phoff = Int(elf[32]) | Int(elf[33]) << 8
    for k in 0..<8 { elf[phoff + 24 + k] = k == 1 ? 0x10 : 0 }
    let path = try CLI.temporaryFile(elf, name: "a64-low.elf")
    try expectRefused(["run", "--kernel", path], mentioning: [path, "outside guest RAM"])
  }

  /// An instruction the interpreter does not implement is UNDEFINED in the guest and named
  /// once on stderr; a jump to unmapped memory takes the instruction abort the ARM ARM gives
  /// (EC 0x21, IFSC 0b010000, FAR the target): see Guests/aarch64/a64_bad.S.
  @Test func undefinedInstructionsAndJumpsToNowhere() throws {
    let path = try CLI.temporaryFile(AArch64Guests.a64Bad.elf, name: "a64-bad.elf")
    let run = try CLI.run(["run", "--kernel", path])
    #expect(
      run.stdout == "bad: undefined=0000000000000001 abort-esr=0000000086000010 abort-far=0000000010000000\n")
    #expect(run.status == 3)
    let notes = run.stderr.split(separator: "\n")
    #expect(notes.count == 1, "\(run.stderr)")
    #expect(run.stderr.contains("does not implement the instruction 0x4e284820"), "\(run.stderr)")
  }

  /// UDF is UNDEFINED by design, not a gap in the interpreter: a64_checks runs one (its
  /// `udf_at`) and gets no note.
  @Test func udfIsNotNamedAsUnimplemented() throws {
    let path = try CLI.temporaryFile(AArch64Guests.a64Checks.elf, name: "a64-udf.elf")
    let run = try CLI.run(["run", "--kernel", path])
    #expect(run.status == 0)
    #expect(run.stderr.isEmpty, "\(run.stderr)")
  }
}
