import Packing
import ShardFormat
import TokenmillCore

/// Pack (one unit a split): the split's document lengths, in order, packed by the
/// strategy (`Packer`), the sequences shuffled when `shuffle_seed` is set, and cut into
/// shards of about `shard_tokens` tokens by the format's rule (`DatasetDirectory.shardRanges`).
/// Drop reasons: `overflow_dropped` (longer than seq_len, `overflow: drop`, or under
/// `truncate` with no trained token in its first seq_len) and `truncated`
/// (`overflow: truncate`), per record.
///
/// `pack/<split>.plan`: u32 shard count; per shard (first sequence u64, sequences u64,
/// byte offset u64 and size u64 of its part of the pieces section, tokens u64); then the
/// pieces section, per sequence: u32 piece count, then (document u32, start u32, end u32).
enum PackStep {
    static let shardEntrySize = 40

    static func planPath(_ w: WorkFolder, _ split: String) -> String { w.path(.pack, "\(split).plan") }

    static func run(_ ctx: BuildContext, splitIndex: Int) throws -> JSONOut {
        let spec = ctx.spec
        let split = splitNames(spec)[splitIndex]
        let docs = try ShapeStep.readDocs(ctx, split: split)
        var packed = Packer.pack(lengths: docs.map { Int($0.tokenCount) }, seqLen: spec.seqLen, strategy: spec.strategy, overflow: spec.overflow,
                                 lossStarts: docs.map { Int($0.firstLoss) })
        if let seed = spec.shuffleSeed { shuffleDeterministically(&packed.sequences, seed: seed) }

        // The records overflow decided about, per source (rows, once however many copies).
        var lostDocs = Array(repeating: 0, count: spec.sources.count), lostTokens = Array(repeating: 0, count: spec.sources.count)
        for k in packed.droppedDocs {
            let d = docs[k]
            lostDocs[Int(d.source)] += 1; lostTokens[Int(d.source)] += Int(d.tokenCount)
        }
        for k in packed.truncatedDocs { lostTokens[Int(docs[k].source)] += Int(docs[k].tokenCount) - spec.seqLen }
        let dropped = packed.droppedDocs.map { docs[$0].id }, truncated = packed.truncatedDocs.map { docs[$0].id }

        // Shards are cut by the format's rule, on the tokens each sequence will hold (padding
        // included under `pad`).
        let recordTokens = packed.sequences.map { seq in
            let n = seq.reduce(0) { $0 + $1.count }
            return spec.strategy == .pad ? SequencePadding.paddedLength(n, seqLen: spec.seqLen) : n
        }
        var shards: [(start: Int, count: Int, offset: Int, size: Int, tokens: Int)] = []
        var pieces = ByteWriter()
        for range in DatasetDirectory.shardRanges(recordTokens: recordTokens, shardTokens: spec.shardTokens) {
            let offset = pieces.bytes.count
            for seq in packed.sequences[range] {
                pieces.u32(UInt32(seq.count))
                for p in seq { pieces.u32(UInt32(p.doc)); pieces.u32(UInt32(p.start)); pieces.u32(UInt32(p.end)) }
            }
            shards.append((range.lowerBound, range.count, offset, pieces.bytes.count - offset, recordTokens[range].reduce(0, +)))
        }
        var w = ByteWriter(capacity: 4 + shards.count * shardEntrySize + pieces.bytes.count)
        w.u32(UInt32(shards.count))
        for s in shards { w.u64(UInt64(s.start)); w.u64(UInt64(s.count)); w.u64(UInt64(s.offset)); w.u64(UInt64(s.size)); w.u64(UInt64(s.tokens)) }
        w.bytes.append(contentsOf: pieces.bytes)
        try WorkFile.write(planPath(ctx.work, split), w.bytes)
        func unique(_ a: [RecordID]) -> [JSONOut] { Array(Set(a)).sorted().map { .int(Int($0)) } }
        return .object([
            ("split", .string(split)), ("shards", .int(shards.count)), ("sequences", .int(packed.sequences.count)),
            ("dropped", .array(unique(dropped))), ("truncated", .array(unique(truncated))),
            ("lost_documents", .array(lostDocs.map { .int($0) })), ("lost_tokens", .array(lostTokens.map { .int($0) })),
        ])
    }

    struct ShardPlan { var split: String; var index: Int; var offset: Int; var size: Int; var sequences: Int }

    /// One shard's sequences, read from its split's plan.
    static func sequences(_ ctx: BuildContext, _ shard: ShardPlan) throws -> [[Piece]] {
        let f = try RandomAccessWorkFile(path: planPath(ctx.work, shard.split))
        var head = ByteReader(try f.read(offset: 0, count: 4), path: f.path)
        let n = Int(try head.u32())
        let base = 4 + n * shardEntrySize
        var r = ByteReader(try f.read(offset: base + shard.offset, count: shard.size), path: f.path)
        var out: [[Piece]] = []
        out.reserveCapacity(shard.sequences)
        for _ in 0..<shard.sequences {
            let k = Int(try r.u32())
            guard k <= r.remaining / 12 else { throw TokenmillError.corrupt(path: f.path, message: "piece count \(k) out of bounds") }
            var seq: [Piece] = []
            seq.reserveCapacity(k)
            for _ in 0..<k {
                let d = Int(try r.u32()), a = Int(try r.u32()), b = Int(try r.u32())
                guard a <= b else { throw TokenmillError.corrupt(path: f.path, message: "piece \(a)..<\(b) is reversed") }
                seq.append(Piece(doc: d, start: a, end: b))
            }
            out.append(seq)
        }
        return out
    }

    /// The shard table of one split's plan.
    static func shardTable(_ ctx: BuildContext, split: String) throws -> [ShardPlan] {
        let f = try RandomAccessWorkFile(path: planPath(ctx.work, split))
        var head = ByteReader(try f.read(offset: 0, count: 4), path: f.path)
        let n = Int(try head.u32())
        guard 4 + n * shardEntrySize <= f.contentSize else { throw TokenmillError.corrupt(path: f.path, message: "shard table out of bounds") }
        var r = ByteReader(try f.read(offset: 4, count: n * shardEntrySize), path: f.path)
        var out: [ShardPlan] = []
        for k in 0..<n {
            _ = try r.u64()
            let count = Int(try r.u64()), offset = Int(try r.u64()), size = Int(try r.u64())
            _ = try r.u64()
            guard offset + size <= f.contentSize - 4 - n * shardEntrySize else { throw TokenmillError.corrupt(path: f.path, message: "shard \(k) out of bounds") }
            out.append(ShardPlan(split: split, index: k, offset: offset, size: size, sequences: count))
        }
        return out
    }
}
