/// A minimal FlatBuffers encoder for the Arrow IPC messages the `hf` export writes
/// (Schema and RecordBatch; docs/EXPORT.md). A message is built as a tree and laid out
/// front to back: a table (after its vtable) precedes the strings, vectors and tables it
/// points to, so every uoffset is positive as the format requires; every scalar sits at
/// an offset that is a multiple of its size, which Arrow's verifier checks.
indirect enum FlatNode {
    /// Fields by id; nil fields are absent (their default).
    case table([FlatField?])
    case string(String)
    case tables([FlatNode])
    case strings([String])
    /// Structs stored inline: raw little-endian bytes, `count` of them, aligned to `align`.
    case structs(bytes: [UInt8], count: Int, align: Int)
}

enum FlatField {
    case u8(UInt8)
    case i16(Int16)
    case i32(Int32)
    case i64(Int64)
    case node(FlatNode)

    var size: Int {
        switch self {
        case .u8: return 1
        case .i16: return 2
        case .i32, .node: return 4
        case .i64: return 8
        }
    }
}

struct FlatBufferWriter {
    private(set) var bytes: [UInt8] = []

    /// The buffer of `root`: a uoffset to the root table, then the tree.
    static func encode(_ root: FlatNode) -> [UInt8] {
        var w = FlatBufferWriter()
        w.bytes = [0, 0, 0, 0]
        let at = w.write(root)
        w.patch(0, to: at)
        return w.bytes
    }

    private mutating func pad(to align: Int) { while bytes.count % align != 0 { bytes.append(0) } }
    private mutating func le<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    private mutating func store<T: FixedWidthInteger>(_ v: T, at p: Int) {
        withUnsafeBytes(of: v.littleEndian) { for (i, b) in $0.enumerated() { bytes[p + i] = b } }
    }
    /// Points the uoffset at `slot` to `target` (which lies after it).
    private mutating func patch(_ slot: Int, to target: Int) {
        precondition(target > slot)
        store(UInt32(target - slot), at: slot)
    }

    /// Writes `node`; returns where it starts (a table's soffset, a vector's length).
    private mutating func write(_ node: FlatNode) -> Int {
        switch node {
        case .string(let s):
            pad(to: 4)
            let at = bytes.count
            le(UInt32(s.utf8.count)); bytes.append(contentsOf: s.utf8); bytes.append(0)
            return at
        case .strings(let list):
            return writeOffsets(list.map { FlatNode.string($0) })
        case .tables(let list):
            return writeOffsets(list)
        case .structs(let raw, let count, let align):
            // The length precedes the first struct, which must be aligned.
            pad(to: 4)
            while (bytes.count + 4) % align != 0 { bytes.append(0) }
            let at = bytes.count
            le(UInt32(count)); bytes.append(contentsOf: raw)
            return at
        case .table(let fields):
            // Inline layout: soffset, then fields from widest to narrowest, each aligned.
            var order = fields.indices.filter { fields[$0] != nil }
            order.sort { (fields[$0]!.size, -$0) > (fields[$1]!.size, -$1) }
            var offsets = [Int](repeating: 0, count: fields.count)
            var size = 4
            for id in order {
                let s = fields[id]!.size
                while size % s != 0 { size += 1 }
                offsets[id] = size
                size += s
            }
            // vtable: its size, the table's size, then each field's offset (0: absent).
            pad(to: 2)
            let vtable = bytes.count
            le(UInt16(4 + 2 * fields.count)); le(UInt16(size))
            for id in fields.indices { le(UInt16(offsets[id])) }
            // The table starts 8-aligned, so its 8-byte fields (at offsets that are
            // multiples of 8) are aligned too.
            pad(to: 8)
            let table = bytes.count
            le(Int32(table - vtable))
            bytes.append(contentsOf: repeatElement(0, count: size - 4))
            var children: [(slot: Int, node: FlatNode)] = []
            for id in order {
                let p = table + offsets[id]
                switch fields[id]! {
                case .u8(let v): bytes[p] = v
                case .i16(let v): store(v, at: p)
                case .i32(let v): store(v, at: p)
                case .i64(let v): store(v, at: p)
                case .node(let n): children.append((p, n))
                }
            }
            for (slot, n) in children { let at = write(n); patch(slot, to: at) }
            return table
        }
    }

    private mutating func writeOffsets(_ list: [FlatNode]) -> Int {
        pad(to: 4)
        let at = bytes.count
        le(UInt32(list.count))
        let first = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: 4 * list.count))
        for (k, n) in list.enumerated() { let target = write(n); patch(first + 4 * k, to: target) }
        return at
    }
}
