import ShardFormat
import TokenmillCore

/// MosaicML streaming's MDS format, as `streaming.MDSWriter(columns={"input_ids":
/// "ndarray:uint32", "loss_mask": "ndarray:uint32"}, compression="zstd")` writes it:
/// `shard.NNNNN.mds.zstd` files and `index.json` (docs/EXPORT.md).
///
/// A shard is `[u32 samples][u32 offsets x (samples + 1)][config JSON][samples]`, offsets
/// counted from the file's start; a sample is `[u32 size of each column][columns]`, columns
/// in name order, each an `ndarray:uint32` with a dynamic shape: one byte `ndim << 2 |
/// shape dtype` (uint8/16/32 by the length), the length, then the values. Shards are cut
/// by the writer's rule: a sample that would take the shard past `size_limit` (64 MiB,
/// counting 4 bytes of offset a sample and the shard's fixed bytes) starts a new one.
final class MDSWriter {
    static let columnNames = ["input_ids", "loss_mask"]
    static let encoding = "ndarray:uint32"
    static let sizeLimit = 1 << 26

    let folder: String
    let threads: Int
    let config: [UInt8]
    var shards: [JSONOut] = []
    /// The shard being filled: its samples back to back, and each sample's size.
    var body: [UInt8] = []
    var sizes: [Int] = []
    var shardSize = 0
    var written = 0
    /// The previous shard, compressing on other threads while this one fills.
    var compressing: (name: String, rawBytes: Int, samples: Int, zip: Eventually<[UInt8]>)?

    static var configJSON: [(String, JSONOut)] {
        [("column_encodings", .array(columnNames.map { _ in .string(encoding) })),
         ("column_names", .array(columnNames.map { .string($0) })),
         ("column_sizes", .array(columnNames.map { _ in .null })),
         ("compression", .string("zstd")), ("format", .string("mds")), ("hashes", .array([])),
         ("size_limit", .int(sizeLimit)), ("version", .int(2))]
    }

    init(folder: String, threads: Int) throws {
        self.folder = folder
        self.threads = threads
        try FileSystem.makeDirectories(folder)
        config = Array(Self.pythonJSON(.object(Self.configJSON)).utf8)
        shardSize = 8 + config.count
    }

    /// `json.dumps(obj, sort_keys=True)` as Python prints it (", " and ": "); keys are
    /// given sorted.
    static func pythonJSON(_ v: JSONOut) -> String {
        switch v {
        case .object(let kv): return "{" + kv.map { JSONWriter.quoted($0.0) + ": " + pythonJSON($0.1) }.joined(separator: ", ") + "}"
        case .array(let a): return "[" + a.map(pythonJSON).joined(separator: ", ") + "]"
        default: return v.renderCompact()
        }
    }

    /// Bytes of one `ndarray:uint32` column of `n` values: the shape header and the values.
    static func ndarraySize(_ n: Int) -> Int { 1 + (n < 1 << 8 ? 1 : n < 1 << 16 ? 2 : 4) + 4 * n }

    /// Appends the column's dynamic-shape header (ndim 1, the length in the smallest
    /// unsigned type that holds it); the caller appends the values.
    static func ndarrayHeader(_ n: Int, into out: inout [UInt8]) {
        if n < 1 << 8 { out.append(1 << 2 | 0); out.append(UInt8(n)) }
        else if n < 1 << 16 { out.append(1 << 2 | 1); withUnsafeBytes(of: UInt16(n).littleEndian) { out.append(contentsOf: $0) } }
        else { out.append(1 << 2 | 2); withUnsafeBytes(of: UInt32(n).littleEndian) { out.append(contentsOf: $0) } }
    }

    func append(_ b: SampleBatch) throws {
        // Filled out of `self` (no exclusivity check per byte); `self` lets go of it first,
        // so appending never copies it.
        var body: [UInt8] = []
        swap(&body, &self.body)
        defer { swap(&body, &self.body) }
        for k in 0..<b.count {
            let r = b.range(k)
            let column = Self.ndarraySize(r.count)
            let size = 8 + 2 * column
            if !sizes.isEmpty && Self.sizeLimit < shardSize + size + 4 {
                swap(&body, &self.body)
                try flush()
                swap(&body, &self.body)
            }
            withUnsafeBytes(of: UInt32(column).littleEndian) { body.append(contentsOf: $0) }
            withUnsafeBytes(of: UInt32(column).littleEndian) { body.append(contentsOf: $0) }
            Self.ndarrayHeader(r.count, into: &body)
            b.tokens.withUnsafeBufferPointer { t in body.append(contentsOf: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(t)[(4 * r.lowerBound)..<(4 * r.upperBound)])) }
            Self.ndarrayHeader(r.count, into: &body)
            let start = body.count
            body.append(contentsOf: repeatElement(0, count: 4 * r.count))
            body.withUnsafeMutableBytes { out in
                b.loss.withUnsafeBufferPointer { loss in
                    for i in 0..<r.count { out.storeBytes(of: UInt32(loss[r.lowerBound + i]).littleEndian, toByteOffset: start + 4 * i, as: UInt32.self) }
                }
            }
            sizes.append(size)
            shardSize += size + 4
        }
    }

    /// Closes the shard being filled: its bytes are compressed on other threads while the
    /// next one fills (one shard in flight), then written.
    private func flush() throws {
        if sizes.isEmpty { return }
        let head = 4 + 4 * (sizes.count + 1) + config.count
        var raw: [UInt8] = []
        raw.reserveCapacity(head + body.count)
        func le(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { raw.append(contentsOf: $0) } }
        le(sizes.count)
        var offset = head
        le(offset)
        for s in sizes { offset += s; le(offset) }
        raw += config
        raw += body
        try writeCompressed()
        let name = "shard.\(HFWriter.five(shards.count + (compressing == nil ? 0 : 1))).mds"
        let input = UncheckedBox(raw), workers = threads
        compressing = (name, raw.count, sizes.count, Eventually(background: { try input.value.withUnsafeBytes { try Zstd.compress($0, level: 3, workers: workers) } }))
        body.removeAll(keepingCapacity: true)
        sizes.removeAll(keepingCapacity: true)
        shardSize = 8 + config.count
    }

    /// Waits for the shard in flight and writes it.
    private func writeCompressed() throws {
        guard let c = compressing else { return }
        let zip = try c.zip.get()
        let file = try OutputFile(FileSystem.join(folder, c.name + ".zstd"))
        try file.write(zip)
        try file.commit()
        written += zip.count
        shards.append(.object([("raw_data", .object([("basename", .string(c.name)), ("bytes", .int(c.rawBytes)), ("hashes", .object([]))])),
                               ("samples", .int(c.samples)),
                               ("zip_data", .object([("basename", .string(c.name + ".zstd")), ("bytes", .int(zip.count)), ("hashes", .object([]))]))]
                              + Self.configJSON))
        compressing = nil
    }

    func finish() throws -> Int {
        try flush()
        try writeCompressed()
        // Each shard's keys in sorted order, as json.dump(sort_keys=True) writes them.
        let sorted: [JSONOut] = shards.map { s in
            guard case .object(let kv) = s else { return s }
            return .object(kv.sorted { $0.0 < $1.0 })
        }
        let index = Array((Self.pythonJSON(.object([("shards", .array(sorted)), ("version", .int(2))]))).utf8)
        try FileSystem.writeAtomically(FileSystem.join(folder, "index.json"), index)
        return written + index.count
    }
}
