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

    /// One record batch of `rows` rows: for each column, its row offsets (rows + 1, int32)
    /// and its values already encoded little-endian at the column's width.
    func batchMessage(rows: Int, columns data: [(offsets: [Int32], values: [UInt8])]) -> [UInt8] {
        var body: [UInt8] = []
        var nodes: [UInt8] = [], buffers: [UInt8] = []
        func le64(_ v: Int, into b: inout [UInt8]) { withUnsafeBytes(of: Int64(v).littleEndian) { b.append(contentsOf: $0) } }
        func buffer(_ bytes: [UInt8]) {
            le64(body.count, into: &buffers); le64(bytes.count, into: &buffers)
            body += bytes
            while body.count % 8 != 0 { body.append(0) }
        }
        func emptyBuffer() { le64(body.count, into: &buffers); le64(0, into: &buffers) }
        for (c, d) in zip(columns, data) {
            precondition(d.offsets.count == rows + 1 && d.values.count == Int(d.offsets.last!) * c.width)
            le64(rows, into: &nodes); le64(0, into: &nodes)                        // the list: no nulls
            le64(Int(d.offsets.last!), into: &nodes); le64(0, into: &nodes)        // its values: no nulls
            emptyBuffer()                                                          // list validity (none)
            buffer(d.offsets.withUnsafeBytes { Array($0) })
            emptyBuffer()                                                          // values validity (none)
            buffer(d.values)
        }
        let batch: FlatNode = .table([
            .i64(Int64(rows)),
            .node(.structs(bytes: nodes, count: nodes.count / 16, align: 8)),
            .node(.structs(bytes: buffers, count: buffers.count / 16, align: 8)),
        ])
        let message: FlatNode = .table([.i16(Self.v5), .u8(Self.recordBatchTag), .node(batch), .i64(Int64(body.count))])
        return Self.frame(FlatBufferWriter.encode(message), body: body)
    }
}
