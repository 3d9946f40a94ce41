import Packing
import ShardFormat
import TokenmillCore

/// Write (one unit a shard): the shard's sequences from its split's plan, each piece's
/// tokens and loss flags read from the scan unit that tokenized the record, streamed into
/// the shard file (`ShardFileWriter`: memory is the chunks in flight, not the shard).
/// The shard appears under its final name in the output folder when complete; the unit's
/// marker carries its summary for index.json.
final class WriteStep: @unchecked Sendable {
    let ctx: BuildContext
    var docs: [String: [SplitDoc]] = [:]
    /// Token and mask files of scan units, opened once and shared by the chunk workers
    /// (reads are `pread`s; the cache is guarded by `lock`).
    var tokenFiles: [Int: (RandomAccessWorkFile, RandomAccessWorkFile)] = [:]
    let lock = NSLockLite()

    init(_ ctx: BuildContext) { self.ctx = ctx }

    /// Every shard of every split, in order (the write stage's units).
    static func shardTable(_ ctx: BuildContext) throws -> [PackStep.ShardPlan] {
        var all: [PackStep.ShardPlan] = []
        for (i, split) in splitNames(ctx.spec).enumerated() {
            _ = try ctx.work.requireMarker(.pack, i)
            all.append(contentsOf: try PackStep.shardTable(ctx, split: split))
        }
        return all
    }

    func files(_ u: Int) throws -> (RandomAccessWorkFile, RandomAccessWorkFile) {
        lock.lock(); defer { lock.unlock() }
        if let f = tokenFiles[u] { return f }
        if tokenFiles.count >= 128 { tokenFiles.removeAll() }
        let f = (try RandomAccessWorkFile(path: ScanStage.tokensPath(ctx.work, u)), try RandomAccessWorkFile(path: ScanStage.maskPath(ctx.work, u)))
        tokenFiles[u] = f
        return f
    }

    /// One sequence's record: each piece's ids and loss flags read from the scan unit
    /// that tokenized its document, then padding under `pad`.
    func record(_ pieces: [Piece], _ splitDocs: [SplitDoc], plan: String, raw: inout [UInt8]) throws -> SequenceRecord {
        let spec = ctx.spec, width = try ctx.tokenWidth
        var r = SequenceRecord(tokens: [], lossMask: [], docStarts: [])
        for p in pieces {
            guard p.doc < splitDocs.count else { throw TokenmillError.corrupt(path: plan, message: "document \(p.doc) of \(splitDocs.count)") }
            let d = splitDocs[p.doc]
            guard p.end <= Int(d.tokenCount) else { throw TokenmillError.corrupt(path: plan, message: "piece past its document's end") }
            let (tokens, mask) = try files(unitOf(d.id))
            let n = p.end - p.start
            r.docStarts.append(UInt32(r.tokens.count))
            // Ids straight from the file into the record (u32), or through a reused
            // buffer (u16); no per-piece fills (appending repeated zeros byte by byte
            // was a fifth of the stage).
            if width == 4 {
                let at = r.tokens.count
                r.tokens.append(contentsOf: repeatElement(0, count: n))
                try r.tokens.withUnsafeMutableBytes { try tokens.read(offset: (Int(d.tokenOffset) + p.start) * 4, count: n * 4, into: $0.baseAddress! + at * 4) }
            } else {
                if raw.count < n * 2 { raw = [UInt8](repeating: 0, count: n * 2) }
                try raw.withUnsafeMutableBytes { try tokens.read(offset: (Int(d.tokenOffset) + p.start) * 2, count: n * 2, into: $0.baseAddress!) }
                raw.withUnsafeBytes { b in
                    for i in 0..<n { r.tokens.append(UInt32(UInt16(littleEndian: b.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)))) }
                }
            }
            let before = r.lossMask.count
            r.lossMask.append(contentsOf: repeatElement(0, count: n))
            try r.lossMask.withUnsafeMutableBytes { try mask.read(offset: Int(d.tokenOffset) + p.start, count: n, into: $0.baseAddress! + before) }
        }
        if spec.strategy == .pad { SequencePadding.pad(&r, seqLen: spec.seqLen, padID: try ctx.tokenizer.eosID) }
        return r
    }

    /// The shard's chunks are cut from the plan's sequence lengths before any token is
    /// read, so each chunk is gathered, encoded and compressed on its own worker
    /// (`ShardFileWriter.appendChunks`); frames are written in order.
    func run(_ shard: PackStep.ShardPlan, threads: Int) throws -> JSONOut {
        let spec = ctx.spec
        if docs[shard.split] == nil { docs[shard.split] = try ShapeStep.readDocs(ctx, split: shard.split) }
        let splitDocs = docs[shard.split]!
        let sequences = try PackStep.sequences(ctx, shard)
        let plan = PackStep.planPath(ctx.work, shard.split)
        var lengths = sequences.map { $0.reduce(0) { $0 + max(0, $1.end - $1.start) } }
        var padded = 0, paddingTokens = 0
        if spec.strategy == .pad {
            for (k, n) in lengths.enumerated() where n < spec.seqLen {
                padded += 1; paddingTokens += spec.seqLen - n
                lengths[k] = SequencePadding.paddedLength(n, seqLen: spec.seqLen)
            }
        }
        let chunks = ShardWriter.chunkRanges(tokenCounts: lengths, tokenWidth: try ctx.tokenWidth)
        let path = FileSystem.join(ctx.outDir, DatasetDirectory.shardName(split: shard.split, index: shard.index))
        let writer = try ShardFileWriter(path: path, tokenWidth: try ctx.tokenWidth, zstdLevel: spec.zstdLevel, threads: threads)
        // Trained tokens (loss 1) for the report's packing efficiency, summed over chunks.
        let trainedLock = NSLockLite()
        nonisolated(unsafe) var trained = 0
        try writer.appendChunks(count: chunks.count) { [self] k in
            var raw: [UInt8] = []
            let records = try chunks[k].map { try record(sequences[$0], splitDocs, plan: plan, raw: &raw) }
            var n = 0
            for r in records { for m in r.lossMask where m != 0 { n += 1 } }
            trainedLock.lock(); trained += n; trainedLock.unlock()
            return records
        }
        let s = try writer.finish()
        var w = Written(split: shard.split, shard: DatasetIndex.Shard(file: s.file, records: s.records, tokens: s.tokens, bytes: s.bytes,
                                                                      checksum: XXH3.hex(s.checksum)),
                        documentStarts: s.documents, paddedRecords: padded, paddingTokens: paddingTokens)
        w.trainedTokens = trained
        return w.json
    }

    /// A written shard, as its unit's marker carries it to the finish stage.
    struct Written {
        var split: String
        var shard: DatasetIndex.Shard
        /// Document starts in the shard, Σ d[r], padding documents included.
        var documentStarts: Int
        /// Sequences padded (each has one padding document) and their padding tokens.
        var paddedRecords: Int
        var paddingTokens: Int
        /// Tokens with loss 1 (the report's packing figures).
        var trainedTokens = 0
        /// Real documents: the padding documents are not.
        var documents: Int { documentStarts - paddedRecords }

        var json: JSONOut {
            .object([("split", .string(split)), ("file", .string(shard.file)), ("records", .int(shard.records)), ("tokens", .int(shard.tokens)),
                     ("document_starts", .int(documentStarts)), ("padded_records", .int(paddedRecords)), ("padding_tokens", .int(paddingTokens)),
                     ("trained_tokens", .int(trainedTokens)),
                     ("bytes", .int(shard.bytes)), ("checksum", .string(shard.checksum))])
        }

        init(split: String, shard: DatasetIndex.Shard, documentStarts: Int, paddedRecords: Int, paddingTokens: Int) {
            self.split = split; self.shard = shard
            self.documentStarts = documentStarts; self.paddedRecords = paddedRecords; self.paddingTokens = paddingTokens
        }

        init(_ v: JSONValue, path: String) throws {
            func count(_ k: String) throws -> Int {
                guard let x = v[k]?.intValue, x >= 0 else { throw TokenmillError.corrupt(path: path, message: "the marker lacks '\(k)'") }
                return x
            }
            func text(_ k: String) throws -> String {
                guard let x = v[k]?.stringValue else { throw TokenmillError.corrupt(path: path, message: "the marker lacks '\(k)'") }
                return x
            }
            split = try text("split")
            shard = DatasetIndex.Shard(file: try text("file"), records: try count("records"), tokens: try count("tokens"), bytes: try count("bytes"),
                                       checksum: try text("checksum"))
            documentStarts = try count("document_starts")
            paddedRecords = try count("padded_records")
            paddingTokens = try count("padding_tokens")
            trainedTokens = try count("trained_tokens")
        }
    }
}
