import BPE
import Dedup
import ShardFormat
import TokenmillCore

#if canImport(Glibc)
import Glibc
#endif

/// Finish (one unit): the files a user reads — rejects.jsonl, dedup-clusters.jsonl,
/// decontaminated.jsonl, report.json — and, last, index.json: the dataset exists once
/// index.json does. Also the accounting check: the readers' record counts (scan) must
/// equal the sum of the buckets (shape, pack), else the build fails before index.json.
enum FinishStep {
    /// The counts table after packing moved overflowed records out of `kept`.
    static func counts(_ ctx: BuildContext) throws -> [SourceStats] {
        let shape = try ctx.work.requireMarker(.shape, 0)
        let path = ctx.work.markerPath(.shape, 0)
        var stats = try (shape["sources"]?.arrayValue ?? []).map { try SourceStats($0, path: path) }
        guard stats.count == ctx.spec.sources.count else { throw TokenmillError.corrupt(path: path, message: "counts for \(stats.count) sources, the spec has \(ctx.spec.sources.count)") }
        var dropped = Set<Int>(), truncated = Set<Int>()
        for i in splitNames(ctx.spec).indices {
            let m = try ctx.work.requireMarker(.pack, i)
            for v in m["dropped"]?.arrayValue ?? [] { if let id = v.intValue { dropped.insert(id) } }
            for v in m["truncated"]?.arrayValue ?? [] { if let id = v.intValue { truncated.insert(id) } }
            for (s, v) in (m["lost_documents"]?.arrayValue ?? []).enumerated() where s < stats.count { stats[s].documents -= v.intValue ?? 0 }
            for (s, v) in (m["lost_tokens"]?.arrayValue ?? []).enumerated() where s < stats.count { stats[s].tokens -= v.intValue ?? 0 }
        }
        for id in dropped {
            let s = ctx.units[unitOf(RecordID(id))].source
            stats[s].kept -= 1; stats[s].overflowDropped += 1
        }
        for id in truncated {
            let s = ctx.units[unitOf(RecordID(id))].source
            stats[s].kept -= 1; stats[s].truncated += 1
        }
        return stats
    }

    /// Source name and the file's line of a record.
    struct Locator {
        let ctx: BuildContext
        let offsets: [Int]
        /// Each unit's summaries, read a row at a time: a build names a few clustered
        /// records, and reading every unit's summaries whole cost the (serial) finish more
        /// than the rest of it.
        var rows: [Int: RandomAccessWorkFile] = [:]
        init(_ ctx: BuildContext) throws { self.ctx = ctx; offsets = try ShapeStep.lineOffsets(ctx) }
        mutating func ref(_ id: RecordID) throws -> [(String, JSONOut)] {
            let u = unitOf(id)
            if rows[u] == nil { rows[u] = try RandomAccessWorkFile(path: ScanStage.rowsPath(ctx.work, u)) }
            // The read is bounds-checked against the file's trailer: a missing row throws.
            var r = ByteReader(try rows[u]!.read(offset: Int(rowOf(id)) * RowSummary.size, count: RowSummary.size), path: rows[u]!.path)
            let row = try RowSummary.read(&r)
            return [("source", .string(ctx.spec.sources[ctx.units[u].source].name)), ("line", .int(Int(row.line) + offsets[u]))]
        }
    }

    /// dedup-clusters.jsonl's bytes (one line a cluster: the kept record, then each removed
    /// one with its similarity and the record it matched) and the count of clusters by
    /// size. Reads only the near-merge's clusters and the scan's row summaries, so a whole
    /// build renders it beside the serial shape and pack stages (`BuildContext.renderedClusters`).
    static func renderClusters(_ ctx: BuildContext) throws -> RenderedClusters {
        var loc = try Locator(ctx)
        var out = RenderedClusters()
        for c in try NearDedupStep.readClusters(ctx) {
            out.sizes[c.removed.count + 1, default: 0] += 1
            var removed: [JSONOut] = []
            for e in c.removed {
                removed.append(.object(try loc.ref(e.removed) + [("similarity", .double(e.similarity)), ("matched", .object(try loc.ref(e.matched)))]))
            }
            out.text.append(contentsOf: JSONOut.object([("kept", .object(try loc.ref(c.kept))), ("removed", .array(removed))]).renderCompact().utf8)
            out.text.append(0x0A)
        }
        return out
    }

    struct RenderedClusters: Sendable {
        var text: [UInt8] = []
        var sizes: [Int: Int] = [:]
    }

    static func run(_ ctx: BuildContext, stageRuns: [(StageName, JSONValue)]) throws -> (JSONOut, [SourceStats]) {
        let spec = ctx.spec
        let out = ctx.outDir
        let stats = try counts(ctx)
        let offsets = try ShapeStep.lineOffsets(ctx)
        // Every writer of the output folder has finished (finish runs alone, after the
        // write stage): what is left under a temporary name was a killed writer's.
        FileSystem.removeStaleTemporaries(out)

        // rejects.jsonl, in input order.
        var rejects = ByteWriter()
        for (u, unit) in ctx.units.enumerated() {
            // A unit that rejected nothing wrote no rejects file.
            guard try ScanResult(try ctx.work.requireMarker(.scan, u), path: ctx.work.markerPath(.scan, u)).rejected > 0 else { continue }
            let path = ScanStage.rejectsPath(ctx.work, u)
            var r = ByteReader(try WorkFile.read(path), path: path)
            while !r.atEnd {
                let line = Int(try r.u64()), reason = try r.blob()
                let shown = line > 0 ? line + offsets[u] : 0
                let l = JSONOut.object([("source", .string(spec.sources[unit.source].name)), ("path", .string(unit.path)), ("line", .int(shown)),
                                        ("reason", .string(String(decoding: reason, as: UTF8.self)))])
                rejects.bytes.append(contentsOf: l.renderCompact().utf8); rejects.u8(0x0A)
            }
        }
        try FileSystem.writeAtomically(FileSystem.join(out, "rejects.jsonl"), rejects.bytes)

        var near: [(String, JSONOut)] = []
        var clusterSizes: [Int: Int] = [:]
        if let n = spec.nearDedup, let lsh = ctx.lsh {
            let rendered = try ctx.renderedClusters()
            clusterSizes = rendered.sizes
            try FileSystem.writeAtomically(FileSystem.join(out, "dedup-clusters.jsonl"), rendered.text)
            let m = try ctx.work.requireMarker(.nearMerge, 0)
            near = [("near_dedup", .object([
                ("on", .string(n.on.rawValue)), ("threshold", .double(n.threshold)), ("permutations", .int(n.permutations)),
                ("ngram", .int(n.ngram)), ("bands", .int(lsh.bands)), ("rows", .int(lsh.rows)),
                ("confirmed_at", .double(LSHParameters.confirmationLevel(threshold: n.threshold, permutations: n.permutations))),
                ("clusters", .int(m["clusters"]?.intValue ?? 0)), ("removed", .int(m["removed"]?.intValue ?? 0)),
                ("candidate_pairs", .int(m["candidate_pairs"]?.intValue ?? 0)), ("confirmed_pairs", .int(m["confirmed_pairs"]?.intValue ?? 0)),
            ]))]
        }

        if let d = spec.decontaminate {
            var loc = try Locator(ctx)
            // Hits by record id, from the scan units that hold the decontaminated records.
            let ids = try readIDs(ShapeStep.decontaminatedPath(ctx.work))
            var hits: [RecordID: (Int, Int, [UInt8])] = [:]
            for u in Set(ids.map(unitOf)).sorted() {
                let path = ScanStage.hitsPath(ctx.work, u)
                var r = ByteReader(try WorkFile.read(path), path: path)
                while !r.atEnd {
                    let row = Int(try r.u32()), file = Int(try r.u64()), line = Int(try r.u64()), sh = try r.blob()
                    hits[recordID(unit: u, row: row)] = (file, line, sh)
                }
            }
            var text: [UInt8] = []
            for id in ids {
                guard let (file, line, sh) = hits[id], file < d.against.count else {
                    throw TokenmillError.corrupt(path: ScanStage.hitsPath(ctx.work, unitOf(id)), message: "no decontamination hit for row \(rowOf(id))")
                }
                let l = JSONOut.object(try loc.ref(id) + [("against", .string(FileSystem.basename(of: d.against[file]))),
                                                          ("eval_line", .int(line)), ("ngram", .string(String(decoding: sh, as: UTF8.self)))])
                text.append(contentsOf: l.renderCompact().utf8); text.append(0x0A)
            }
            try FileSystem.writeAtomically(FileSystem.join(out, "decontaminated.jsonl"), text)
        }

        // Shards by split, from the write stage's markers. The train split is always
        // listed; validation only when it has records.
        var written: [(String, [WriteStep.Written])] = splitNames(spec).map { ($0, []) }
        for (k, plan) in try WriteStep.shardTable(ctx).enumerated() {
            let w = try WriteStep.Written(try ctx.work.requireMarker(.write, k), path: ctx.work.markerPath(.write, k))
            guard let i = written.firstIndex(where: { $0.0 == plan.split }) else { continue }
            written[i].1.append(w)
        }
        let splits = written.filter { $0.0 == "train" || !$0.1.isEmpty }.map { name, shards in
            DatasetIndex.Split(name: name, shards: shards.map(\.shard), documents: shards.reduce(0) { $0 + $1.documents },
                               paddingTokens: shards.reduce(0) { $0 + $1.paddingTokens })
        }

        // Packing efficiency per split: what the sequences hold against their capacity.
        let seqLen = spec.seqLen
        let packing: [(String, JSONOut)] = [("packing", .object(written.filter { !$0.1.isEmpty }.map { name, shards in
            let records = shards.reduce(0) { $0 + $1.shard.records }, tokens = shards.reduce(0) { $0 + $1.shard.tokens }
            let padding = shards.reduce(0) { $0 + $1.paddingTokens }, trained = shards.reduce(0) { $0 + $1.trainedTokens }
            let capacity = spec.strategy == .none ? tokens : records * seqLen
            return (name, .object([("sequences", .int(records)), ("tokens", .int(tokens)), ("padding_tokens", .int(padding)),
                                   ("trained_tokens", .int(trained)), ("capacity", .int(capacity)),
                                   ("efficiency", .double(capacity > 0 ? Double(tokens - padding) / Double(capacity) : 0)),
                                   ("trained_share", .double(tokens > 0 ? Double(trained) / Double(tokens) : 0))]))
        }))]

        // The mix: each source's target share against what the output holds (documents or
        // tokens, after packing's drops), over every split.
        var mixed: [(String, JSONOut)] = []
        if let mix = spec.mix {
            let shape = try ctx.work.requireMarker(.shape, 0)
            let amounts = stats.map { mix.by == .records ? $0.documents : $0.tokens }
            let sum = amounts.reduce(0, +)
            mixed = [("mix", .object([
                ("by", .string(mix.by.rawValue)), ("total", .int(shape["mix_total"]?.intValue ?? 0)), ("achieved_total", .int(sum)),
                ("sources", .object(zip(spec.sources, zip(mix.shares, amounts)).map { src, v in
                    (src.name, .object([("target", .double(v.0)), ("achieved", .double(sum > 0 ? Double(v.1) / Double(sum) : 0)),
                                        (mix.by.rawValue, .int(v.1))]))
                })),
            ]))]
        }

        // What report.html draws beyond the counts: the shape stage's per-source tallies and
        // the near-duplicate clusters by size.
        let shapeMarker = try ctx.work.requireMarker(.shape, 0)
        let perSource = shapeMarker["analysis"]?.arrayValue ?? []
        let analysis: [(String, JSONOut)] = [("analysis", .object([
            ("sources", .object(zip(spec.sources, perSource).map { ($0.name, JSONOut($1)) })),
            ("near_dup_cluster_sizes", .array(clusterSizes.sorted { $0.key < $1.key }.map { .array([.int($0.key), .int($0.value)]) })),
        ]))]

        // Bytes the tokenizer dropped (a vocabulary with no token for them), per source: never
        // silent.
        // Also the files that began with a UTF-8 byte order mark (skipped, and said so).
        var dropped = Array(repeating: 0, count: spec.sources.count), marks = dropped
        for (u, unit) in ctx.units.enumerated() {
            let r = try ScanResult(try ctx.work.requireMarker(.scan, u), path: ctx.work.markerPath(.scan, u))
            dropped[unit.source] += r.droppedBytes
            marks[unit.source] += r.byteOrderMarks
        }
        let droppedJSON: [(String, JSONOut)] = (dropped.contains { $0 > 0 }
            ? [("dropped_bytes", .object(zip(spec.sources, dropped).map { ($0.name, .int($1)) }))] : [])
            + (marks.contains { $0 > 0 } ? [("byte_order_marks", .object(zip(spec.sources, marks).map { ($0.name, .int($1)) }))] : [])

        let checks = try check(ctx, stats)
        let report = reportJSON(ctx, stats: stats, splits: splits, near: near + packing + mixed + analysis + droppedJSON, checks: checks, stageRuns: stageRuns)
        let reportText = report.render()
        try FileSystem.writeAtomically(FileSystem.join(out, "report.json"), Array((reportText + "\n").utf8))
        // The page is drawn from the report as written (parsed back), so it shows exactly
        // what report.json says.
        let parsed = try JSONParser.parse(Array(reportText.utf8))
        try FileSystem.writeAtomically(FileSystem.join(out, "report.html"), Array(ReportHTML.render(parsed).utf8))
        if let failed = checks.first(where: { !$0.ok }) {
            throw TokenmillError.other("accounting check failed for source '\(failed.source)': the readers made \(failed.records) records, the buckets hold \(failed.buckets) (report.json has the counts); index.json was not written")
        }
        try writeIndex(ctx, stats: stats, splits: splits)
        return (report, stats)
    }

    struct Check { var source: String; var records: Int; var buckets: Int; var ok: Bool { records == buckets } }

    /// The readers' count (scan markers, summed here again, independently of shape) against
    /// the buckets.
    static func check(_ ctx: BuildContext, _ stats: [SourceStats]) throws -> [Check] {
        var made = Array(repeating: 0, count: ctx.spec.sources.count)
        for (u, unit) in ctx.units.enumerated() {
            made[unit.source] += try ScanResult(try ctx.work.requireMarker(.scan, u), path: ctx.work.markerPath(.scan, u)).records
        }
        return zip(ctx.spec.sources, zip(made, stats)).map { Check(source: $0.name, records: $1.0, buckets: $1.1.bucketSum) }
    }

    static func sourcesJSON(_ ctx: BuildContext, _ stats: [SourceStats]) -> JSONOut {
        .object(zip(ctx.spec.sources, stats).map { ($0.name, $1.json) })
    }

    static func writeIndex(_ ctx: BuildContext, stats: [SourceStats], splits: [DatasetIndex.Split]) throws {
        let spec = ctx.spec, tokenizer = try ctx.tokenizer
        // A tokenizer.json (or SentencePiece .model) travels with the shards, so `inspect`
        // (and a trainer) can decode them wherever they are copied; its hash is index.json's
        // vocab_hash.
        var vocabularyFile: String? = nil
        let source = TokenizerLoader.tokenizerJSONPath(spec.tokenizer) ?? (spec.tokenizer.hasSuffix(".model") ? spec.tokenizer : nil)
        if let source {
            let name = source.hasSuffix(".model") ? "tokenizer.model" : "tokenizer.json"
            try FileSystem.writeAtomically(FileSystem.join(ctx.outDir, name), try FileSystem.readFile(source))
            vocabularyFile = name
        }
        let index = DatasetIndex(
            toolVersion: toolVersion, specHash: XXH3.hex(spec.specHash), name: spec.name,
            tokenizer: DatasetIndex.Tokenizer(name: tokenizer.name, vocabHash: XXH3.hex(tokenizer.vocabHash), vocabSize: tokenizer.vocabSize,
                                              eosID: Int(tokenizer.eosID), padID: Int(tokenizer.eosID),
                                              specialTokens: tokenizer.specialTokens.map { ($0.text, Int($0.id)) }, file: vocabularyFile),
            template: spec.template.name, seqLen: spec.seqLen, strategy: spec.strategy.rawValue, overflow: spec.overflow.rawValue,
            splits: splits,
            sources: zip(ctx.spec.sources, stats).map { ($0.name, $1.json) })
        let width = try ctx.tokenWidth
        precondition(index.dtype == DatasetDirectory.dtype(tokenWidth: width))
        try index.write(to: ctx.outDir)
    }

    static func reportJSON(_ ctx: BuildContext, stats: [SourceStats], splits: [DatasetIndex.Split], near: [(String, JSONOut)],
                           checks: [Check], stageRuns: [(StageName, JSONValue)]) -> JSONOut {
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, 255)
        let hostName = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let tokens = splits.reduce(0) { $0 + $1.tokens }
        let wall = stageRuns.reduce(0.0) { $0 + ($1.1["wall_seconds"]?.doubleValue ?? 0) }
        var inputs: [JSONOut] = []
        for src in ctx.spec.sources { for f in src.files { inputs.append(.string(f)) } }
        return .object([
            ("name", .string(ctx.spec.name)),
            ("tool_version", .string(toolVersion)),
            ("host", .string(hostName)),
            ("threads", .int(ctx.threads)),
            ("seconds", .double(wall)),
            ("tokens_per_second", .double(wall > 0 ? Double(tokens) / wall : 0)),
            ("stages", .array(stageRuns.map { name, run in
                var members: [(String, JSONOut)] = [("stage", .string(name.rawValue))]
                for m in run.objectValue ?? [] { members.append((m.keyString, JSONOut(m.value))) }
                return .object(members)
            })),
            ("inputs", .array(inputs)),
            ("sources", sourcesJSON(ctx, stats)),
            ("filter_reasons", .object(zip(ctx.spec.sources, stats).map { src, s in
                (src.name, .object(s.filterReasons.sorted { $0.key < $1.key }.map { ($0.key, .int($0.value)) }))
            })),
            ("checks", .object(checks.map { c in
                (c.source, .object([("ok", .bool(c.ok)), ("records_read", .int(c.records)), ("records_in_buckets", .int(c.buckets)),
                                    ("rule", .string("records the readers made (scan) = filtered + exact_dup + near_dup + decontaminated + over_take + subsampled + overflow_dropped + truncated + kept (shape, pack)"))]))
            })),
        ] + near)
    }
}
