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
    var samples: [[UInt8]] = []
    var shardSize = 0
    var written = 0

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

    /// One column of one sample: the dynamic-shape header and the values as uint32.
    static func ndarray(_ values: ArraySlice<UInt32>, into out: inout [UInt8]) {
        let n = values.count
        func le<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        if n < 1 << 8 { out.append(1 << 2 | 0); out.append(UInt8(n)) }
        else if n < 1 << 16 { out.append(1 << 2 | 1); le(UInt16(n)) }
        else { out.append(1 << 2 | 2); le(UInt32(n)) }
        values.withUnsafeBytes { out.append(contentsOf: $0) }
    }

    func append(_ b: SampleBatch) throws {
        for k in 0..<b.count {
            let r = b.range(k)
            var ids: [UInt8] = [], mask: [UInt8] = []
            ids.reserveCapacity(r.count * 4 + 5); mask.reserveCapacity(r.count * 4 + 5)
            Self.ndarray(b.tokens[r], into: &ids)
            Self.ndarray(ArraySlice(b.loss[r].map { UInt32($0) }), into: &mask)
            var sample: [UInt8] = []
            sample.reserveCapacity(8 + ids.count + mask.count)
            withUnsafeBytes(of: UInt32(ids.count).littleEndian) { sample.append(contentsOf: $0) }
            withUnsafeBytes(of: UInt32(mask.count).littleEndian) { sample.append(contentsOf: $0) }
            sample += ids; sample += mask
            if !samples.isEmpty && Self.sizeLimit < shardSize + sample.count + 4 { try flush() }
            samples.append(sample)
            shardSize += sample.count + 4
        }
    }

    private func flush() throws {
        if samples.isEmpty { return }
        let head = 4 + 4 * (samples.count + 1) + config.count
        var raw: [UInt8] = []
        raw.reserveCapacity(head + samples.reduce(0) { $0 + $1.count })
        func le(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { raw.append(contentsOf: $0) } }
        le(samples.count)
        var offset = head
        le(offset)
        for s in samples { offset += s.count; le(offset) }
        raw += config
        for s in samples { raw += s }
        let name = "shard.\(HFWriter.five(shards.count)).mds"
        let zip = try raw.withUnsafeBytes { try Zstd.compress($0, level: 3, workers: threads) }
        let file = try OutputFile(FileSystem.join(folder, name + ".zstd"))
        try file.write(zip)
        try file.commit()
        written += zip.count
        shards.append(.object([("raw_data", .object([("basename", .string(name)), ("bytes", .int(raw.count)), ("hashes", .object([]))])),
                               ("samples", .int(samples.count)),
                               ("zip_data", .object([("basename", .string(name + ".zstd")), ("bytes", .int(zip.count)), ("hashes", .object([]))]))]
                              + Self.configJSON))
        samples.removeAll(keepingCapacity: true)
        shardSize = 8 + config.count
    }

    func finish() throws -> Int {
        try flush()
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
