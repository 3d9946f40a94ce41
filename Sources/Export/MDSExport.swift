import ShardFormat
import TokenmillCore

/// MosaicML streaming's MDS format, as `streaming.MDSWriter(columns={"input_ids":
/// "ndarray:uint32", "loss_mask": "ndarray:uint32"}, compression=None or "zstd")` writes
/// it: `shard.NNNNN.mds` files (or `.mds.zstd`) and `index.json` (docs/EXPORT.md).
/// Uncompressed by default, as MDSWriter's own default: zstd makes the files ~5x smaller
/// but bounds the export by compression (docs/EXPORT.md, "Speed").
///
/// A shard is `[u32 samples][u32 offsets x (samples + 1)][config JSON][samples]`, offsets
/// counted from the file's start; a sample is `[u32 size of each column][columns]`, columns
/// in name order, each an `ndarray:uint32` with a dynamic shape: one byte `ndim << 2 |
/// shape dtype` (uint8/16/32 by the length), the length, then the values. Shards are cut
/// by the writer's rule: a sample that would take the shard past `size_limit` (64 MiB,
/// counting 4 bytes of offset a sample and the shard's fixed bytes) starts a new one.
///
/// Samples are assigned to shards in order as their windows arrive; a shard's header
/// needs its sample count, so its samples wait (as references to their decoded batches,
/// not copies) until it is full, and the shard is then written on another thread while
/// the next fills: its header, then each sample's few bytes of sizes and shapes and its
/// columns straight from the batches (`writev`), so no byte is copied twice.
final class MDSWriter: PositionedWriter {
    static let columnNames = ["input_ids", "loss_mask"]
    /// Both columns `ndarray:uint32`, as the layout (and llm-foundry's converters,
    /// which write int32/uint32 columns) have it: a consumer reads one dtype.
    static let encodings = ["ndarray:uint32", "ndarray:uint32"]
    static let widths = [4, 4]
    static let sizeLimit = 1 << 26

    let folder: String
    let threads: Int
    let compression: MDSCompression
    let config: [UInt8]
    var shards: [JSONOut] = []
    /// The shard being filled, and its size as the cutting rule counts it.
    var open = OpenShard()
    var shardSize = 0
    var written = 0
    /// Shards that filled up in the window being placed.
    var full: [OpenShard] = []
    /// Shards being written (compressed first, with zstd) on other threads while the next
    /// fills, oldest first: name, raw size, samples, and the file when written.
    var inFlight: [(name: String, rawBytes: Int, samples: Int, done: Eventually<OutputFile>)] = []
    static let maxInFlight = 2
    /// Shards written and on their way to disk, committed (fsync, rename) at the end.
    var uncommitted: [OutputFile] = []
    var started = 0

    var configJSON: [(String, JSONOut)] { Self.configJSON(compression) }

    static func configJSON(_ compression: MDSCompression) -> [(String, JSONOut)] {
        [("column_encodings", .array(encodings.map { .string($0) })),
         ("column_names", .array(columnNames.map { .string($0) })),
         ("column_sizes", .array(columnNames.map { _ in .null })),
         ("compression", compression == .zstd ? .string("zstd") : .null), ("format", .string("mds")), ("hashes", .array([])),
         ("size_limit", .int(sizeLimit)), ("version", .int(2))]
    }

    init(folder: String, threads: Int, compression: MDSCompression) throws {
        self.folder = folder
        self.threads = threads
        self.compression = compression
        try FileSystem.makeDirectories(folder)
        config = Array(Self.pythonJSON(.object(Self.configJSON(compression))).utf8)
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

    /// Bytes of one `ndarray` column of `n` values of `width` bytes: the shape header and
    /// the values.
    static func ndarraySize(_ n: Int, width: Int) -> Int { 1 + (n < 1 << 8 ? 1 : n < 1 << 16 ? 2 : 4) + width * n }

    /// Appends a column's dynamic-shape header (ndim 1, the length in the smallest
    /// unsigned type that holds it); the values follow it.
    static func ndarrayHeader(_ n: Int, into out: inout [UInt8]) {
        if n < 1 << 8 { out.append(1 << 2 | 0); out.append(UInt8(n)) }
        else if n < 1 << 16 { out.append(1 << 2 | 1); withUnsafeBytes(of: UInt16(n).littleEndian) { out.append(contentsOf: $0) } }
        else { out.append(1 << 2 | 2); withUnsafeBytes(of: UInt32(n).littleEndian) { out.append(contentsOf: $0) } }
    }

    func place(_ b: SampleBatch) throws {
        var holdsBatch = false
        for k in 0..<b.count {
            let n = b.range(k).count
            let size = 8 + Self.ndarraySize(n, width: Self.widths[0]) + Self.ndarraySize(n, width: Self.widths[1])
            if !open.sizes.isEmpty && Self.sizeLimit < shardSize + size + 4 {
                full.append(open)
                open = OpenShard()
                shardSize = 8 + config.count
                holdsBatch = false
            }
            if !holdsBatch { open.batches.append(b); open.firstSample.append(open.sizes.count); holdsBatch = true }
            open.samples.append(k)
            open.sizes.append(size)
            shardSize += size + 4
        }
    }

    /// Nothing to do on the workers: a shard's bytes are written when it is full.
    func write(_ b: SampleBatch, at place: Void) throws {}

    var positionedFiles: [OutputFile] { [] }

    func windowWritten() throws {
        for b in full { try startShard(b) }
        full.removeAll()
    }

    /// Writes a full shard on another thread (with zstd, compressed first), once fewer
    /// than `maxInFlight` are; its bytes then go on to disk in the background
    /// (`startWriteback`), and every shard is committed at the end, as `cp` and `sync`
    /// would: waiting for each shard's fsync in turn stalled the export.
    private func startShard(_ shard: OpenShard) throws {
        if shard.sizes.isEmpty { return }
        while inFlight.count >= Self.maxInFlight { try waitForShard() }
        let headSize = 4 + 4 * (shard.sizes.count + 1) + config.count
        var head: [UInt8] = []
        head.reserveCapacity(headSize)
        func le(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { head.append(contentsOf: $0) } }
        le(shard.sizes.count)
        var offset = headSize
        le(offset)
        for s in shard.sizes { offset += s; le(offset) }
        head += config
        let header = head, total = offset
        let name = "shard.\(HFWriter.five(started)).mds"
        started += 1
        let path = FileSystem.join(folder, compression == .zstd ? name + ".zstd" : name)
        let zstd = compression == .zstd, workers = threads
        inFlight.append((name, total, shard.sizes.count, Eventually(background: {
            let file = try OutputFile(path)
            if zstd {
                // Compressed as the pieces come (level 3, zstd's and MDSWriter's default),
                // on all cores: no 64 MB copy of the shard, raw or compressed.
                let stream = try Zstd.Stream(level: 3, workers: workers, pledgedSize: total) { try file.write($0) }
                try header.withUnsafeBytes { try stream.write($0) }
                try shard.pieces(emit: stream.write, release: {})
                try stream.finish()
            } else {
                try file.write(header)
                let gather = try file.gather()
                try shard.pieces(emit: gather.add, release: gather.send)
            }
            // The header's offsets promised `total` bytes; the samples must fill them.
            let raw = zstd ? total : file.size
            guard raw == total else { throw TokenmillError.io(path: path, message: "wrote \(raw) bytes of a \(total)-byte shard") }
            try file.startWriteback()
            return file
        })))
    }

    /// Waits for the oldest shard in flight; records it in the index.
    private func waitForShard() throws {
        if inFlight.isEmpty { return }
        let c = inFlight.removeFirst()
        let file = try c.done.get()
        uncommitted.append(file)
        let zipBytes: Int? = compression == .zstd ? file.size : nil
        written += file.size
        shards.append(.object([("raw_data", .object([("basename", .string(c.name)), ("bytes", .int(c.rawBytes)), ("hashes", .object([]))])),
                               ("samples", .int(c.samples)),
                               ("zip_data", zipBytes.map { .object([("basename", .string(c.name + ".zstd")), ("bytes", .int($0)), ("hashes", .object([]))]) } ?? .null)]
                              + configJSON))
    }

    func finish() throws -> Int {
        full.append(open)
        try windowWritten()
        while !inFlight.isEmpty { try waitForShard() }
        for f in uncommitted { try f.commit() }
        uncommitted.removeAll()
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

/// How `tokenmill export --format mds` writes its shards (`--compression`).
public enum MDSCompression: String, CaseIterable, Sendable {
    case none, zstd
}

/// A shard being filled: the batches its samples come from (held, not copied), and for
/// each sample its index in its batch and its size.
final class OpenShard: @unchecked Sendable {
    var batches: [SampleBatch] = []
    /// Where each batch's samples start in `samples`.
    var firstSample: [Int] = []
    var samples: [Int] = []
    var sizes: [Int] = []

    /// The shard's samples as byte ranges in file order: each sample's sizes and
    /// `input_ids` shape, its ids, its `loss_mask` shape, its mask. The ranges point into
    /// one batch at a time and stay valid until `release` is called, after each batch's.
    func pieces(emit: (UnsafeRawBufferPointer) throws -> Void, release: () throws -> Void) throws {
        var meta: [UInt8] = []
        var wide: [UInt32] = []
        for (j, b) in batches.enumerated() {
            let end = j + 1 < batches.count ? firstSample[j + 1] : samples.count
            // The small parts of this batch's samples first, in one buffer (so the ranges
            // into it stay put), then the ranges in order.
            meta.removeAll(keepingCapacity: true)
            var metaEnds: [Int] = []
            for s in firstSample[j]..<end {
                let n = b.range(samples[s]).count
                withUnsafeBytes(of: UInt32(MDSWriter.ndarraySize(n, width: MDSWriter.widths[0])).littleEndian) { meta.append(contentsOf: $0) }
                withUnsafeBytes(of: UInt32(MDSWriter.ndarraySize(n, width: MDSWriter.widths[1])).littleEndian) { meta.append(contentsOf: $0) }
                MDSWriter.ndarrayHeader(n, into: &meta)
                metaEnds.append(meta.count)
                MDSWriter.ndarrayHeader(n, into: &meta)
                metaEnds.append(meta.count)
            }
            // The batch's loss flags as uint32 (the batch holds them as bytes).
            wide.removeAll(keepingCapacity: true)
            wide.reserveCapacity(b.loss.count)
            for f in b.loss { wide.append(UInt32(f).littleEndian) }
            try meta.withUnsafeBytes { m in
                try b.tokens.withUnsafeBytes { tokens in
                    try wide.withUnsafeBytes { loss in
                        var at = 0
                        for (i, s) in (firstSample[j]..<end).enumerated() {
                            let r = b.range(samples[s])
                            try emit(UnsafeRawBufferPointer(rebasing: m[at..<metaEnds[2 * i]]))
                            try emit(UnsafeRawBufferPointer(rebasing: tokens[(4 * r.lowerBound)..<(4 * r.upperBound)]))
                            try emit(UnsafeRawBufferPointer(rebasing: m[metaEnds[2 * i]..<metaEnds[2 * i + 1]]))
                            try emit(UnsafeRawBufferPointer(rebasing: loss[(4 * r.lowerBound)..<(4 * r.upperBound)]))
                            at = metaEnds[2 * i + 1]
                        }
                        try release()
                    }
                }
            }
        }
    }
}
