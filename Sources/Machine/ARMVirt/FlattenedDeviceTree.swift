/// Writes a flattened device tree (the DTB format of the Devicetree Specification v0.4,
/// chapter 5): the header, an empty memory reservation block, the structure block and the
/// strings block, all big-endian.
struct FlattenedDeviceTree {
  /// A node: its name (with unit address), properties in order, children in order.
  struct Node {
    var name: String
    var properties: [(String, [UInt8])] = []
    var children: [Node] = []

    init(_ name: String) { self.name = name }

    mutating func add(_ property: String, _ value: [UInt8] = []) { properties.append((property, value)) }
    mutating func add(_ property: String, string: String) { add(property, Array(string.utf8) + [0]) }
    mutating func add(_ property: String, strings: [String]) { add(property, strings.flatMap { Array($0.utf8) + [0] }) }
    mutating func add(_ property: String, cells: [UInt32]) {
      add(property, cells.flatMap(FlattenedDeviceTree.bigEndian))
    }
  }

  static func bigEndian(_ value: UInt32) -> [UInt8] { [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: value >> $0) } }
  static func bigEndian64(_ value: UInt64) -> [UInt8] {
    bigEndian(UInt32(value >> 32)) + bigEndian(UInt32(truncatingIfNeeded: value))
  }

  /// The blob for a tree whose root is `root` (named "").
  static func blob(_ root: Node, bootCPU: UInt32 = 0) -> [UInt8] {
    var structure: [UInt8] = []
    var strings: [UInt8] = []
    var offsets: [String: UInt32] = [:]
    func pad() { while structure.count % 4 != 0 { structure.append(0) } }
    func emit(_ node: Node) {
      structure += bigEndian(1)  // FDT_BEGIN_NODE
      structure += Array(node.name.utf8) + [0]
      pad()
      for (name, value) in node.properties {
        let offset: UInt32
        if let known = offsets[name] {
          offset = known
        } else {
          offset = UInt32(strings.count)
          offsets[name] = offset
          strings += Array(name.utf8) + [0]
        }
        structure += bigEndian(3)  // FDT_PROP
        structure += bigEndian(UInt32(value.count)) + bigEndian(offset) + value
        pad()
      }
      for child in node.children { emit(child) }
      structure += bigEndian(2)  // FDT_END_NODE
    }
    emit(root)
    structure += bigEndian(9)  // FDT_END
    let headerSize = 40
    let reservations = [UInt8](repeating: 0, count: 16)  // the terminating (0, 0) entry only
    let structureOffset = headerSize + reservations.count
    let stringsOffset = structureOffset + structure.count
    let total = stringsOffset + strings.count
    var header: [UInt8] = []
    for field in [
      0xd00d_feed, UInt32(total), UInt32(structureOffset), UInt32(stringsOffset), UInt32(headerSize), 17, 16, bootCPU,
      UInt32(strings.count), UInt32(structure.count),
    ] as [UInt32] {
      header += bigEndian(field)
    }
    return header + reservations + structure + strings
  }
}
