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
    /// (reads are `pread`s; the cache is guarded by `lock`). A unit whose marker says it
    /// wrote no mask file (every token has loss 1) has none.
    var tokenFiles: [Int: (RandomAccessWorkFile, RandomAccessWorkFile?)] = [:]
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

    func files(_ u: Int) throws -> (RandomAccessWorkFile, RandomAccessWorkFile?) {
        lock.lock(); defer { lock.unlock() }
        if let f = tokenFiles[u] { return f }
        if tokenFiles.count >= 128 { tokenFiles.removeAll() }
        let scanned = try ScanResult(try ctx.work.requireMarker(.scan, u), path: ctx.work.markerPath(.scan, u))
        let f = (try RandomAccessWorkFile(path: ScanStage.dataPath(ctx.work, u)),
                 scanned.maskFile ? try RandomAccessWorkFile(path: ScanStage.maskPath(ctx.work, u)) : nil)
        tokenFiles[u] = f
        return f
    }

    /// Where one piece's tokens lie: its scan unit and first token there, its length, and
    /// (after the reads) its first token in the chunk's gathered buffers.
    struct PieceRead {
        var unit: Int
        var start: Int
        var count: Int
        var at = 0
    }

    /// Pieces of one chunk closer than this (in tokens) in the same unit are read as one
    /// range: the bytes between cost less than another pair of `pread`s.
    static let gapTokens = 1024

    /// A chunk's records (`sequences[seqs]`): each piece's ids and loss flags read from
    /// the scan unit that tokenized its document, then padding under `pad`. The pieces are
    /// sorted by unit and offset and neighbours read as one range (tokens and mask), then
    /// copied out in sequence order: without shuffle a chunk's documents are consecutive
    /// in one or two units, so a chunk costs a few reads (a pair of `pread`s a piece was
    /// 324,000 system calls on the 228 MB end-to-end benchmark). With shuffle the pieces
    /// are scattered and most are still read one by one.
    func records(_ seqs: Range<Int>, _ sequences: [[Piece]], _ splitDocs: [SplitDoc], plan: String) throws -> [SequenceRecord] {
        let spec = ctx.spec, width = try ctx.tokenWidth
        var reads: [PieceRead] = []
        for k in seqs {
            for p in sequences[k] {
                guard p.doc >= 0, p.doc < splitDocs.count else { throw TokenmillError.corrupt(path: plan, message: "document \(p.doc) of \(splitDocs.count)") }
                let d = splitDocs[p.doc]
                guard p.start >= 0, p.start <= p.end, p.end <= Int(d.tokenCount) else {
                    throw TokenmillError.corrupt(path: plan, message: "piece \(p.start)..<\(p.end) outside its document's \(d.tokenCount) tokens")
                }
                reads.append(PieceRead(unit: unitOf(d.id), start: Int(d.tokenOffset) + p.start, count: p.end - p.start))
            }
        }
        let order = reads.indices.sorted { (reads[$0].unit, reads[$0].start) < (reads[$1].unit, reads[$1].start) }
        // The ranges to read, their sizes summed first so each buffer is allocated once.
        var ranges: [(unit: Int, start: Int, end: Int, first: Int, last: Int)] = []
        var i = 0, gathered = 0
        while i < order.count {
            let r = reads[order[i]]
            var end = r.start + r.count, j = i + 1
            while j < order.count, reads[order[j]].unit == r.unit, reads[order[j]].start <= end + Self.gapTokens {
                end = max(end, reads[order[j]].start + reads[order[j]].count)
                j += 1
            }
            ranges.append((r.unit, r.start, end, i, j))
            gathered += end - r.start
            i = j
        }
        // Not zero-filled: the reads below cover every byte of both.
        var tokenBytes = [UInt8](unsafeUninitializedCapacity: gathered * width) { $1 = gathered * width }
        var maskBytes = [UInt8](unsafeUninitializedCapacity: gathered) { $1 = gathered }
        var at = 0
        for range in ranges {
            let n = range.end - range.start
            let (tokens, mask) = try files(range.unit)
            try tokenBytes.withUnsafeMutableBytes { try tokens.read(offset: range.start * width, count: n * width, into: $0.baseAddress! + at * width) }
            try maskBytes.withUnsafeMutableBytes {
                if let mask { try mask.read(offset: range.start, count: n, into: $0.baseAddress! + at) } else {
                    ($0.baseAddress! + at).initializeMemory(as: UInt8.self, repeating: 1, count: n)
                }
            }
            for t in range.first..<range.last { reads[order[t]].at = at + reads[order[t]].start - range.start }
            at += n
        }
        var out: [SequenceRecord] = []
        out.reserveCapacity(seqs.count)
        var next = 0
        try tokenBytes.withUnsafeBytes { tb in
            try maskBytes.withUnsafeBufferPointer { mb in
                for k in seqs {
                    let pieces = sequences[k]
                    var total = 0
                    for q in next..<(next + pieces.count) { total += reads[q].count }
                    var r = SequenceRecord(tokens: [], lossMask: [], docStarts: [])
                    r.tokens.reserveCapacity(total)
                    r.lossMask.reserveCapacity(total)
                    r.docStarts.reserveCapacity(pieces.count)
                    for _ in pieces {
                        let read = reads[next]
                        next += 1
                        r.docStarts.append(UInt32(r.tokens.count))
                        if width == 4 {
                            r.tokens.append(contentsOf: UnsafeBufferPointer(start: tb.baseAddress!.assumingMemoryBound(to: UInt32.self) + read.at, count: read.count))
                        } else {
                            for t in 0..<read.count {
                                r.tokens.append(UInt32(UInt16(littleEndian: tb.loadUnaligned(fromByteOffset: (read.at + t) * 2, as: UInt16.self))))
                            }
                        }
                        r.lossMask.append(contentsOf: UnsafeBufferPointer(rebasing: mb[read.at..<(read.at + read.count)]))
                    }
                    if spec.strategy == .pad { SequencePadding.pad(&r, seqLen: spec.seqLen, padID: try ctx.tokenizer.eosID) }
                    out.append(r)
                }
            }
        }
        return out
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
            let records = try records(chunks[k], sequences, splitDocs, plan: plan)
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
