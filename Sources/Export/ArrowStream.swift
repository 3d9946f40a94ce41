import TokenmillCore

/// An Arrow IPC *stream* (the format of a Hugging Face `datasets` arrow file): a Schema
/// message, RecordBatch messages, the end-of-stream marker. Columns are lists of integers
/// (`list<item: intN>`, no nulls). Layout: docs/EXPORT.md.
struct ArrowListColumn {
    var name: String
    /// Bytes of one value: 1, 2, 4 or 8 (signed).
    var width: Int
}

struct ArrowStreamEncoder {
    let columns: [ArrowListColumn]
    /// Schema-level key/value metadata (`datasets` keeps its features under "huggingface").
    let metadata: [(String, String)]

    static let continuation: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF]
    static let endOfStream: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]
    /// Arrow's MetadataVersion V5 and MessageHeader union tags.
    static let v5: Int16 = 4, schemaTag: UInt8 = 1, recordBatchTag: UInt8 = 3
    /// Type union tags: Int and List.
    static let intTag: UInt8 = 2, listTag: UInt8 = 12

    /// A framed message: continuation, metadata length, the flatbuffer padded to 8, body.
    static func frame(_ flat: [UInt8], body: [UInt8] = []) -> [UInt8] {
        var meta = flat
        while (meta.count + 8) % 8 != 0 { meta.append(0) }
        var out = continuation
        withUnsafeBytes(of: Int32(meta.count).littleEndian) { out.append(contentsOf: $0) }
        out += meta
        out += body
        return out
    }

    func schemaMessage() -> [UInt8] {
        func field(_ c: ArrowListColumn) -> FlatNode {
            let item: FlatNode = .table([
                .node(.string("item")), .u8(1), .u8(Self.intTag),
                .node(.table([.i32(Int32(c.width * 8)), .u8(1)])),   // Int { bitWidth, is_signed }
                nil, .node(.tables([])),
            ])
            return .table([.node(.string(c.name)), .u8(1), .u8(Self.listTag), .node(.table([])), nil, .node(.tables([item]))])
        }
        let kv: [FlatNode] = metadata.map { .table([.node(.string($0.0)), .node(.string($0.1))]) }
        let schema: FlatNode = .table([nil, .node(.tables(columns.map(field))), .node(.tables(kv))])
        let message: FlatNode = .table([.i16(Self.v5), .u8(Self.schemaTag), .node(schema), .i64(0)])
        return Self.frame(FlatBufferWriter.encode(message))
    }

    /// The framed metadata of a record batch of `rows` rows whose body holds, for each
    /// column in order, its row offsets (rows + 1 int32) and its values (`values[i]`
    /// bytes), each buffer padded to 8 bytes (`padded`). The body follows it, written by
    /// the caller straight from its buffers (no copy of the batch is made).
    func batchHeader(rows: Int, totals: [Int]) -> [UInt8] {
        var nodes: [UInt8] = [], buffers: [UInt8] = []
        func le64(_ v: Int, into b: inout [UInt8]) { withUnsafeBytes(of: Int64(v).littleEndian) { b.append(contentsOf: $0) } }
        var offset = 0
        func buffer(_ length: Int) { le64(offset, into: &buffers); le64(length, into: &buffers); offset += Self.padded(length) }
        for (c, total) in zip(columns, totals) {
            le64(rows, into: &nodes); le64(0, into: &nodes)        // the list: no nulls
            le64(total, into: &nodes); le64(0, into: &nodes)       // its values: no nulls
            buffer(0)                                              // list validity (none)
            buffer(4 * (rows + 1))                                 // row offsets
            buffer(0)                                              // values validity (none)
            buffer(total * c.width)                                // values
        }
        let batch: FlatNode = .table([
            .i64(Int64(rows)),
            .node(.structs(bytes: nodes, count: nodes.count / 16, align: 8)),
            .node(.structs(bytes: buffers, count: buffers.count / 16, align: 8)),
        ])
        let message: FlatNode = .table([.i16(Self.v5), .u8(Self.recordBatchTag), .node(batch), .i64(Int64(offset))])
        return Self.frame(FlatBufferWriter.encode(message))
    }

    static func padded(_ n: Int) -> Int { (n + 7) & ~7 }
    static let zeros = [UInt8](repeating: 0, count: 8)
}
