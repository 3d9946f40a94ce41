import BPE
import Dedup
import Ingest
import Normalize
import Packing
import ShardFormat
import TokenmillCore

#if canImport(Glibc)
import Glibc
#endif

/// Options of `tokenmill build` that are not part of the spec (they never change bytes).
public struct BuildOptions {
    public var threads: Int
    public var outDir: String?
    public var quiet: Bool
    public init(threads: Int = activeProcessorCount, outDir: String? = nil, quiet: Bool = false) {
        self.threads = threads; self.outDir = outDir; self.quiet = quiet
    }
}

/// What a build produced (for the command line's summary).
public struct BuildSummary {
    public var outDir: String
    public var splits: [(name: String, records: Int, tokens: Int, shards: Int)]
    public var seconds: Double
}

/// Compiles a spec: ingest, normalize, filter, exact dedup, take/weight, split, render +
/// tokenize, pack, write shards, then rejects.jsonl, report.json and finally index.json.
///
/// Block-local stages run on all cores in ordered batches; global decisions (dedup,
/// packing, sharding) run sequentially over compact summaries, so the output bytes depend
/// only on the spec, the inputs and the tool version.
public final class Build {
    let spec: BuildSpec
    let options: BuildOptions
    let outDir: String
    var stats: [SourceStats]
    /// What near-dedup decided, for report.json (nil when it did not run).
    var nearReport: NearDedupReport?
    var stageTimes: [(String, Double)] = []
    var log: (String) -> Void

    public init(spec: BuildSpec, options: BuildOptions) {
        self.spec = spec
        self.options = options
        self.outDir = options.outDir ?? spec.outputDir
        self.stats = Array(repeating: SourceStats(), count: spec.sources.count)
        // One summary line a stage, on a terminal or not (there are no progress bars yet,
        // so --quiet has nothing more to silence).
        self.log = { FileSystem.writeStderr($0) }
    }

    func timed<T>(_ stage: String, _ body: () throws -> T, summary: (T) -> String) rethrows -> T {
        let start = ContinuousClock.now
        let r = try body()
        let d = ContinuousClock.now - start
        let secs = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        stageTimes.append((stage, secs))
        log("\(stage): \(summary(r)) (\(formatSeconds(secs)))")
        return r
    }

    public func run() throws -> BuildSummary {
        let t0 = ContinuousClock.now
        let threads = max(1, options.threads)
        var tokenizer = try TokenizerLoader.load(spec.tokenizer)
        if spec.template.kind == .chatml {
            let (a, b) = TokenizerLoader.chatTokenIDs(for: tokenizer)
            tokenizer = try tokenizer.addingSpecialTokens([("<|im_start|>", a), ("<|im_end|>", b)])
        }
        let docTokenizer = try DocumentTokenizer(tokenizer: tokenizer, template: spec.template)
        try prepareOutputDirectory()

        // Ingest: every file of every source, in spec order.
        var files: [String] = []
        var rejects: [Reject] = []
        let records: [Record] = try timed("ingest", {
            var all: [Record] = []
            for (si, src) in spec.sources.enumerated() {
                let config = SourceConfig(name: src.name, index: Int32(si), files: src.files, format: src.format,
                                          mapping: src.mapping, skipBadRows: src.skipBadRows, invalidUTF8: src.invalidUTF8)
                for f in src.files {
                    let rows = try SourceReader.read(config, fileIndex: Int32(files.count), path: f, threads: threads)
                    files.append(f)
                    stats[si].read += rows.rowsRead
                    stats[si].repairedUTF8 += rows.repaired
                    stats[si].rejected += rows.rejects.count
                    all.append(contentsOf: rows.records)
                    rejects.append(contentsOf: rows.rejects)
                }
            }
            return all
        }, summary: { "\($0.count) records from \(files.count) files, \(rejects.count) rejected" })

        // Normalize + filter, block-local.
        let normalizer = spec.normalizer, normalize = spec.normalize, filter = spec.filter
        let cleaned: [(Record, String?)] = try timed("normalize", {
            try parallelBatches(count: records.count, threads: threads, batchSize: 512) { range in
                range.map { i -> (Record, String?) in
                    var r = records[i]
                    if normalize { r.transformTexts(normalizer.apply) }
                    return (r, filter.reject(r))
                }
            }.flatMap { $0 }
        }, summary: { c in "\(c.filter { $0.1 != nil }.count) filtered" })

        // Exact dedup: keys in parallel, decisions in spec order.
        var candidates: [Record] = []
        try timed("dedup", {
            let exact = self.spec.exactDedup
            let keys: [UInt128Hash?] = try parallelBatches(count: cleaned.count, threads: threads, batchSize: 1024) { range in
                range.map { i in cleaned[i].1 == nil && exact != nil ? ExactDedup.key(of: cleaned[i].0, on: exact!) : nil }
            }.flatMap { $0 }
            var dedup = ExactDedup()
            for (i, (r, reason)) in cleaned.enumerated() {
                let s = Int(r.source)
                if let reason { stats[s].filtered += 1; stats[s].filterReasons[reason, default: 0] += 1; continue }
                if let k = keys[i], !dedup.insert(k) { stats[s].exactDup += 1; continue }
                candidates.append(r)
            }
        }, summary: { _ in "\(self.stats.reduce(0) { $0 + $1.exactDup }) exact duplicates removed" })

        if let near = spec.nearDedup {
            candidates = try timed("near-dedup", { try nearDedup(candidates, near, threads: threads) },
                                   summary: { _ in "\(self.stats.reduce(0) { $0 + $1.nearDup }) near duplicates removed (\(self.nearReport?.clusters ?? 0) clusters)" })
        }
        if let d = spec.decontaminate {
            candidates = try timed("decontaminate", { try decontaminate(candidates, d, threads: threads) },
                                   summary: { _ in "\(self.stats.reduce(0) { $0 + $1.decontaminated }) records share a \(d.ngram)-gram with the eval prompts" })
        }

        var kept: [Record] = []
        var taken = Array(repeating: 0, count: spec.sources.count)
        for r in candidates {
            let s = Int(r.source)
            if let take = spec.sources[s].take, taken[s] >= take { continue }
            taken[s] += 1
            kept.append(r)
        }

        // Weight (repeat/subsample, deterministic) and split assignment.
        var trainRecords: [Record] = [], validRecords: [Record] = []
        for r in kept {
            let s = Int(r.source)
            let w = spec.sources[s].weight
            var copies = Int(w.rounded(.down))
            let frac = w - Double(copies)
            if frac > 0 && unitHash(r, salt: 0x5745_4947_4854, copy: 0) < frac { copies += 1 }
            for c in 0..<copies {
                stats[s].kept += 1
                if spec.validationFraction > 0 && unitHash(r, salt: spec.splitSeed, copy: c) < spec.validationFraction {
                    validRecords.append(r)
                } else {
                    trainRecords.append(r)
                }
            }
        }

        var splitSummaries: [(String, [ShardSummary], Int)] = []
        for (split, recs) in [("train", trainRecords), ("validation", validRecords)] where split == "train" || !recs.isEmpty {
            let docs = try timed("tokenize[\(split)]", { try docTokenizer.tokenize(recs, threads: threads) },
                                 summary: { d in "\(d.count) documents, \(d.reduce(0) { $0 + $1.tokens.count }) tokens" })
            for (r, d) in zip(recs, docs) { stats[Int(r.source)].tokens += d.tokens.count }
            let packed = timed("pack[\(split)]", {
                var p = Packer.pack(lengths: docs.map(\.tokens.count), seqLen: spec.seqLen, strategy: spec.strategy, overflow: spec.overflow)
                if let seed = spec.shuffleSeed { shuffleDeterministically(&p.sequences, seed: seed) }
                return p
            }, summary: { p in "\(p.sequences.count) sequences (\(self.spec.strategy.rawValue), seq_len \(self.spec.seqLen))" + (p.dropped > 0 ? ", \(p.dropped) too long dropped" : "") })
            let shards = try timed("write[\(split)]", {
                try writeShards(split: split, docs: docs, sequences: packed.sequences, tokenizer: tokenizer, threads: threads)
            }, summary: { s in "\(s.count) shards, \(s.reduce(0) { $0 + $1.bytes }) bytes" })
            splitSummaries.append((split, shards, docs.count))
        }

        let total = ContinuousClock.now - t0
        let seconds = Double(total.components.seconds) + Double(total.components.attoseconds) / 1e18
        try writeRejects(rejects)
        try writeReport(seconds: seconds, threads: threads, splits: splitSummaries, files: files)
        try writeIndex(tokenizer: tokenizer, splits: splitSummaries)
        return BuildSummary(outDir: outDir, splits: splitSummaries.map { ($0.0, $0.1.reduce(0) { $0 + $1.records }, $0.1.reduce(0) { $0 + $1.tokens }, $0.1.count) }, seconds: seconds)
    }

    /// A value in [0, 1) from the record's identity: deterministic sampling and splits.
    func unitHash(_ r: Record, salt: UInt64, copy: Int) -> Double {
        var key: [UInt8] = []
        for v in [salt, UInt64(r.source), UInt64(r.file), UInt64(r.line), UInt64(copy)] {
            withUnsafeBytes(of: v.littleEndian) { key.append(contentsOf: $0) }
        }
        return Double(XXH3.hash64(key) >> 11) / Double(1 << 53)
    }

    /// Removes what a previous build left under our file names; index.json first, so the
    /// directory never looks like a complete dataset while it is rebuilt.
    func prepareOutputDirectory() throws {
        try FileSystem.makeDirectories(outDir)
        FileSystem.remove(FileSystem.join(outDir, "index.json"))
        for name in try FileSystem.listDirectory(outDir) {
            let ours = name.hasSuffix(".tkm") || name.hasSuffix(".tmp") || ["report.json", "rejects.jsonl", "dedup-clusters.jsonl", "decontaminated.jsonl"].contains(name)
            if ours { FileSystem.remove(FileSystem.join(outDir, name)) }
        }
    }

    func writeShards(split: String, docs: [TokenizedDocument], sequences: [[Piece]], tokenizer: Tokenizer, threads: Int) throws -> [ShardSummary] {
        let width = tokenizer.vocabSize <= 65536 ? 2 : 4
        var shards: [ShardSummary] = []
        var start = 0
        while start < sequences.count {
            var end = start, tokens = 0
            while end < sequences.count && (tokens < spec.shardTokens || end == start) {
                tokens += spec.strategy == .pad ? spec.seqLen : sequences[end].reduce(0) { $0 + $1.count }
                end += 1
            }
            let records = materialize(sequences[start..<end], docs: docs, padID: tokenizer.eosID)
            let name = "\(split)-\(String(repeating: "0", count: max(0, 5 - String(shards.count).count)))\(shards.count).tkm"
            shards.append(try ShardWriter.write(path: FileSystem.join(outDir, name), records: records[...], tokenWidth: width,
                                                zstdLevel: spec.zstdLevel, threads: threads))
            start = end
        }
        return shards
    }

    func materialize(_ seqs: ArraySlice<[Piece]>, docs: [TokenizedDocument], padID: UInt32) -> [SequenceRecord] {
        seqs.map { pieces in
            var r = SequenceRecord(tokens: [], lossMask: [], docStarts: [])
            for p in pieces {
                r.docStarts.append(UInt32(r.tokens.count))
                r.tokens.append(contentsOf: docs[p.doc].tokens[p.start..<p.end])
                r.lossMask.append(contentsOf: docs[p.doc].lossMask[p.start..<p.end])
            }
            if spec.strategy == .pad && r.tokens.count < spec.seqLen {
                // Padding is its own (untrained) document, so varlen attention keeps it apart.
                r.docStarts.append(UInt32(r.tokens.count))
                let n = spec.seqLen - r.tokens.count
                r.tokens.append(contentsOf: repeatElement(padID, count: n))
                r.lossMask.append(contentsOf: repeatElement(0, count: n))
            }
            return r
        }
    }

    func writeRejects(_ rejects: [Reject]) throws {
        var out: [UInt8] = []
        for r in rejects {
            let line = JSONOut.object([("source", .string(r.source)), ("path", .string(r.path)), ("line", .int(r.line)), ("reason", .string(r.reason))])
            out.append(contentsOf: line.renderCompact().utf8); out.append(0x0A)
        }
        try FileSystem.writeAtomically(FileSystem.join(outDir, "rejects.jsonl"), out)
    }

    func sourcesJSON() -> JSONOut {
        .object(zip(spec.sources, stats).map { src, s in
            (src.name, .object([("read", .int(s.read)), ("rejected", .int(s.rejected)), ("filtered", .int(s.filtered)),
                                ("exact_dup", .int(s.exactDup)), ("near_dup", .int(s.nearDup)), ("decontaminated", .int(s.decontaminated)),
                                ("repaired_utf8", .int(s.repairedUTF8)),
                                ("kept", .int(s.kept)), ("tokens", .int(s.tokens))]))
        })
    }

    func writeIndex(tokenizer: Tokenizer, splits: [(String, [ShardSummary], Int)]) throws {
        let splitJSON: JSONOut = .object(splits.map { name, shards, docs in
            (name, .object([
                ("records", .int(shards.reduce(0) { $0 + $1.records })),
                ("tokens", .int(shards.reduce(0) { $0 + $1.tokens })),
                ("documents", .int(shards.reduce(0) { $0 + $1.documents })),
                ("bytes", .int(shards.reduce(0) { $0 + $1.bytes })),
                ("shards", .array(shards.map { s in
                    .object([("file", .string(s.file)), ("records", .int(s.records)), ("tokens", .int(s.tokens)),
                             ("bytes", .int(s.bytes)), ("checksum", .string(XXH3.hex(s.checksum)))])
                })),
            ]))
        })
        let index: JSONOut = .object([
            ("format", .string("tokenmill-shards")),
            ("format_version", .string("\(ShardLayout.versionMajor).\(ShardLayout.versionMinor)")),
            ("tool_version", .string(toolVersion)),
            ("spec_hash", .string(XXH3.hex(spec.specHash))),
            ("name", .string(spec.name)),
            ("tokenizer", .object([
                ("name", .string(tokenizer.name)),
                ("vocab_hash", .string(XXH3.hex(tokenizer.vocabHash))),
                ("vocab_size", .int(tokenizer.vocabSize)),
                ("eos_id", .int(Int(tokenizer.eosID))),
                ("pad_id", .int(Int(tokenizer.eosID))),
                ("special_tokens", .object(tokenizer.specialTokens.map { ($0.text, .int(Int($0.id))) })),
            ])),
            ("template", .string(spec.template.name)),
            ("seq_len", .int(spec.seqLen)),
            ("pack", .object([("strategy", .string(spec.strategy.rawValue)), ("overflow", .string(spec.overflow.rawValue))])),
            ("dtype", .string(tokenizer.vocabSize <= 65536 ? "uint16" : "uint32")),
            ("splits", splitJSON),
            ("sources", sourcesJSON()),
        ])
        try FileSystem.writeAtomically(FileSystem.join(outDir, "index.json"), Array((index.render() + "\n").utf8))
    }

    func writeReport(seconds: Double, threads: Int, splits: [(String, [ShardSummary], Int)], files: [String]) throws {
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, 255)
        let hostName = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let tokens = splits.reduce(0) { $0 + $1.1.reduce(0) { $0 + $1.tokens } }
        var near: [(String, JSONOut)] = []
        if let n = nearReport {
            near = [("near_dedup", .object([
                ("on", .string(n.on)), ("threshold", .double(n.threshold)), ("permutations", .int(n.permutations)),
                ("ngram", .int(n.ngram)), ("bands", .int(n.bands)), ("rows", .int(n.rows)), ("confirmed_at", .double(n.confirmedAt)), ("clusters", .int(n.clusters)),
                ("removed", .int(n.removed)), ("candidate_pairs", .int(n.candidatePairs)), ("confirmed_pairs", .int(n.confirmedPairs)),
            ]))]
        }
        let report: JSONOut = .object([
            ("name", .string(spec.name)),
            ("tool_version", .string(toolVersion)),
            ("host", .string(hostName)),
            ("threads", .int(threads)),
            ("seconds", .double(seconds)),
            ("tokens_per_second", .double(seconds > 0 ? Double(tokens) / seconds : 0)),
            ("stages", .array(stageTimes.map { .object([("stage", .string($0.0)), ("seconds", .double($0.1))]) })),
            ("inputs", .array(files.map { .string($0) })),
            ("sources", sourcesJSON()),
            ("filter_reasons", .object(zip(spec.sources, stats).map { src, s in
                (src.name, .object(s.filterReasons.sorted { $0.key < $1.key }.map { ($0.key, .int($0.value)) }))
            })),
            ("checks", .object(zip(spec.sources, stats).map { src, s in
                (src.name, .string("read \(s.read) + rejected \(s.rejected) = \(s.read + s.rejected) input rows"))
            })),
        ] + near)
        try FileSystem.writeAtomically(FileSystem.join(outDir, "report.json"), Array((report.render() + "\n").utf8))
    }
}

func formatSeconds(_ s: Double) -> String {
    let ms = Int((s * 1000).rounded())
    return ms < 1000 ? "\(ms) ms" : "\(Double(ms) / 1000) s"
}
