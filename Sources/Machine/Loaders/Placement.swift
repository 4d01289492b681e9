/// Where an image may go in guest-physical memory. Pure arithmetic on the parsed image, so
/// the loader fuzz target (Fuzz/LoaderFuzz.swift) exercises it with the parsers.
extension BootImage {
  /// Checks that every chunk lands in RAM, clear of the others and of Hyperstep's own boot data.
  public func checkPlacement(ram: [(start: UInt64, size: UInt64)], commandLineLength: Int)
    throws(ImageError)
  {
    let ramEnd = ram.last.map { $0.start + $0.size } ?? 0
    func inRAM(_ start: UInt64, _ length: UInt64) -> Bool {
      ram.contains { start >= $0.start && start - $0.start <= $0.size && length <= $0.size - (start - $0.start) }
    }
    let ordered = chunks.sorted { $0.address < $1.address }
    for chunk in ordered {
      let (end, overflow) = chunk.address.addingReportingOverflow(chunk.memorySize)
      guard !overflow, inRAM(chunk.address, chunk.memorySize) else {
        throw .segmentOutsideRAM(start: chunk.address, end: overflow ? .max : end, ramEnd: ramEnd)
      }
      for (start, stop, what) in reservedRanges(commandLineLength: commandLineLength)
      where chunk.address < stop && start < end {
        throw .overlapsBootData(start: chunk.address, end: end, what: what)
      }
    }
    for (first, second) in zip(ordered, ordered.dropFirst()) where first.address + first.memorySize > second.address {
      throw .segmentsOverlap(first.address, second.address)
    }
    guard inRAM(entry.entryAddress, 1) else { throw .entryOutsideRAM(entry.entryAddress) }
    if multiboot && commandLineLength >= BootLayout.commandLineMaximum {
      throw .commandLineTooLong(length: commandLineLength, maximum: BootLayout.commandLineMaximum - 1)
    }
    if let linux = linux, commandLineLength > min(linux.commandLineMaximum, BootLayout.commandLineMaximum - 1) {
      throw .commandLineTooLong(
        length: commandLineLength, maximum: min(linux.commandLineMaximum, BootLayout.commandLineMaximum - 1))
    }
  }

  /// The low-memory ranges Hyperstep writes for this kind of entry.
  func reservedRanges(commandLineLength: Int) -> [(UInt64, UInt64, String)] {
    var ranges: [(UInt64, UInt64, String)] = []
    switch entry {
    case .real: return []
    case .protected32: break
    case .long64: ranges.append((BootLayout.pageTables, BootLayout.pageTablesEnd, "identity-mapped page tables"))
    }
    ranges.append((BootLayout.gdt, BootLayout.gdt + 0x100, "GDT"))
    ranges.append((BootLayout.stackBottom, BootLayout.stackTop, "boot stack"))
    if multiboot {
      ranges.append((BootLayout.multibootInfo, BootLayout.multibootInfoEnd, "Multiboot information"))
    }
    if linux != nil {
      ranges.append((BootLayout.zeroPage, BootLayout.zeroPage + BootLayout.zeroPageSize, "Linux zero page"))
    }
    if multiboot || linux != nil {
      ranges.append((BootLayout.commandLine, BootLayout.commandLine + UInt64(commandLineLength) + 1, "command line"))
    }
    return ranges
  }
}
