import TokenmillCore

/// A document of a split: which record, where its tokens are, how many, from which source.
struct SplitDoc {
    static let size = 28
    var id: RecordID
    var tokenOffset: UInt64
    var tokenCount: UInt32
    var source: UInt32
    /// The first trained token (`tokenCount` when none).
    var firstLoss: UInt32
}

/// Shape (one unit, over the row summaries in spec order): the dedup and decontamination
/// decisions become buckets (`filtered`, `exact_dup`, `near_dup`, `decontaminated`), then
/// `take` (`over_take`), `weight` (`subsampled`, or extra copies) and the split. Writes
/// each split's documents, in order, and the counts table.
enum ShapeStep {
    static func docsPath(_ w: WorkFolder, _ split: String) -> String { w.path(.shape, "\(split).docs") }
    static func decontaminatedPath(_ w: WorkFolder) -> String { w.path(.shape, "decontaminated") }

    /// Per unit, the offset that turns its local line numbers into the file's.
    static func lineOffsets(_ ctx: BuildContext) throws -> [Int] {
        var out: [Int] = []
        var carried = 0
        for (u, unit) in ctx.units.enumerated() {
            if unit.block == 0 { carried = 0 }
            out.append(carried)
            carried += try ScanResult(try ctx.work.requireMarker(.scan, u), path: ctx.work.markerPath(.scan, u)).lines
        }
        return out
    }

    /// A value in [0, 1) from the record's identity: deterministic sampling and splits.
    /// A record's draw in [0, 1) for `salt` (the split's seed, or the subsample's salt):
    /// xxh3-64 of (salt u64 LE, the source's name, 0x00, the record's content hash u64 LE),
    /// top 53 bits. Keyed on the source's name and the record's own content, so adding,
    /// removing or reordering sources or files never moves a record (docs/PIPELINE.md,
    /// "Shape"); equal records of a source draw alike.
    static func draw(salt: UInt64, source: [UInt8], content: UInt64) -> Double {
        var key: [UInt8] = []
        withUnsafeBytes(of: salt.littleEndian) { key.append(contentsOf: $0) }
        key.append(contentsOf: source)
        key.append(0)
        withUnsafeBytes(of: content.littleEndian) { key.append(contentsOf: $0) }
        return Double(XXH3.hash64(key) >> 11) / Double(1 << 53)
    }

    /// The subsample's salt ("WEIGHT").
    static let weightSalt: UInt64 = 0x5745_4947_4854

    /// The ids the global `sample` keeps, sorted: among the records that survive filters,
    /// dedup, decontamination and `take`, those with the smallest draws for the sample's
    /// seed (ties by id) — `records` of them, or as many as fit the `tokens` budget in draw
    /// order (stopping at the first that does not fit). Keyed like the split, so a record's
    /// fate does not depend on where it lies; a first pass over the row summaries, 24 bytes
    /// a candidate.
    /// The records that survive filters, dedup, decontamination, an empty loss mask and
    /// `take` — what `sample` and `mix` choose among — in spec order: each one's source, id
    /// and draw for `salt`, and its tokens. (The shape pass applies the same tests, in the
    /// same order, to count the buckets.)
    static func survivors(_ ctx: BuildContext, _ sourceNames: [[UInt8]], salt: UInt64) throws -> [(source: Int, draw: Double, id: RecordID, tokens: Int)] {
        var exact = SortedIDCursor(try ctx.exactDuplicates())
        var near = SortedIDCursor(ctx.spec.nearDedup == nil ? [] : try readIDs(NearDedupStep.removedPath(ctx.work)))
        var taken = Array(repeating: 0, count: ctx.spec.sources.count)
        var out: [(source: Int, draw: Double, id: RecordID, tokens: Int)] = []
        for (u, unit) in ctx.units.enumerated() {
            let s = unit.source
            for (k, r) in try RowSummary.readAll(ctx.work, u).enumerated() {
                let id = recordID(unit: u, row: k)
                if r.flags & RowSummary.filtered != 0 || exact.contains(id) || near.contains(id) || r.flags & RowSummary.contaminated != 0 || r.trainsNothing { continue }
                if let take = ctx.spec.sources[s].take, taken[s] >= take { continue }
                taken[s] += 1
                out.append((s, draw(salt: salt, source: sourceNames[s], content: r.content), id, Int(r.tokenCount)))
            }
        }
        return out
    }

    static func sample(_ ctx: BuildContext, _ sourceNames: [[UInt8]]) throws -> [RecordID] {
        guard let sample = ctx.spec.sample else { return [] }
        var candidates = try survivors(ctx, sourceNames, salt: sample.seed).map { (draw: $0.draw, id: $0.id, tokens: $0.tokens) }
        candidates.sort { ($0.draw, $0.id) < ($1.draw, $1.id) }
        var chosen: [RecordID] = []
        if let n = sample.records {
            chosen = candidates.prefix(n).map(\.id)
        } else if let budget = sample.tokens {
            var used = 0
            for c in candidates {
                if used + c.tokens > budget { break }
                used += c.tokens
                chosen.append(c.id)
            }
        }
        return chosen.sorted()
    }

    /// The mix's salt ("MIX").
    static let mixSalt: UInt64 = 0x4D49_58

    /// How `mix` repeats and subsamples: every record of source s gets `base[s]` copies, and
    /// the records in `extra` one more. Per source, the target is its share of the total
    /// (records: largest remainders, so the targets sum to the total; tokens: rounded);
    /// whole passes over the source while they fit, then a partial pass in draw order for
    /// the mix's seed (ties by id): the first `target mod n` records, or, by tokens, records
    /// while the remainder holds them (stopping at the first that does not fit, as
    /// `sample.tokens` does). A first pass over the row summaries, 24 bytes a candidate.
    struct MixPlan {
        var base: [Int]
        var extra: [RecordID]
        var total: Int
    }

    static func mixPlan(_ ctx: BuildContext, _ mix: MixSpec, _ sourceNames: [[UInt8]]) throws -> MixPlan {
        let n = ctx.spec.sources.count
        var candidates = Array(repeating: [(draw: Double, id: RecordID, tokens: Int)](), count: n)
        for c in try survivors(ctx, sourceNames, salt: mix.seed ^ mixSalt) { candidates[c.source].append((c.draw, c.id, c.tokens)) }
        let sizes = candidates.map { c in mix.by == .records ? c.count : c.reduce(0) { $0 + $1.tokens } }
        let total = mix.total ?? sizes.reduce(0, +)
        // Targets per source.
        var targets = mix.shares.map { Int(($0 * Double(total)).rounded(.down)) }
        if mix.by == .records {
            var order = Array(0..<n)
            let frac = mix.shares.map { $0 * Double(total) - ($0 * Double(total)).rounded(.down) }
            order.sort { (frac[$0], -$0) > (frac[$1], -$1) }
            for s in order.prefix(max(0, total - targets.reduce(0, +))) where mix.shares[s] > 0 { targets[s] += 1 }
        } else {
            targets = mix.shares.map { Int(($0 * Double(total)).rounded()) }
        }
        for s in 0..<n where targets[s] > 0 && sizes[s] == 0 {
            let name = ctx.spec.sources[s].name
            throw TokenmillError.spec(path: ctx.spec.path, key: "mix.proportions.\(name)",
                                      message: "source '\(name)' has no records left after filters, dedup and take, so its share cannot be met; give it 0 or remove it")
        }
        var base = Array(repeating: 0, count: n)
        var extra: [RecordID] = []
        for s in 0..<n where sizes[s] > 0 && targets[s] > 0 {
            base[s] = targets[s] / sizes[s]
            var rest = targets[s] - base[s] * sizes[s]
            if rest == 0 { continue }
            let order = candidates[s].sorted { ($0.draw, $0.id) < ($1.draw, $1.id) }
            if mix.by == .records {
                extra.append(contentsOf: order.prefix(rest).map(\.id))
            } else {
                for c in order {
                    if c.tokens > rest { break }
                    rest -= c.tokens
                    extra.append(c.id)
                }
            }
        }
        return MixPlan(base: base, extra: extra.sorted(), total: total)
    }

    static func run(_ ctx: BuildContext) throws -> JSONOut {
        let spec = ctx.spec
        var stats = Array(repeating: SourceStats(), count: spec.sources.count)
        var analysis = Array(repeating: SourceAnalysis(), count: spec.sources.count)
        var exact = SortedIDCursor(try ctx.exactDuplicates())
        var near = SortedIDCursor(spec.nearDedup == nil ? [] : try readIDs(NearDedupStep.removedPath(ctx.work)))
        let splits = splitNames(spec)
        var writers: [WorkFileWriter] = []
        for s in splits { writers.append(try WorkFileWriter(path: docsPath(ctx.work, s))) }
        var decontaminated: [RecordID] = []
        var taken = Array(repeating: 0, count: spec.sources.count)
        var docs = Array(repeating: 0, count: splits.count)
        let sourceNames = spec.sources.map { Array($0.name.utf8) }
        var sampled = SortedIDCursor(spec.sample == nil ? [] : try sample(ctx, sourceNames))
        let plan = try spec.mix.map { try mixPlan(ctx, $0, sourceNames) }
        var mixExtra = SortedIDCursor(plan?.extra ?? [])

        for (u, unit) in ctx.units.enumerated() {
            let result = try ScanResult(try ctx.work.requireMarker(.scan, u), path: ctx.work.markerPath(.scan, u))
            let s = unit.source
            stats[s].read += result.rowsRead
            stats[s].records += result.records
            stats[s].rejected += result.rejected
            stats[s].repairedUTF8 += result.repaired
            let rowsPath = ScanStage.rowsPath(ctx.work, u)
            let rows = try RowSummary.readAll(ctx.work, u)
            guard rows.count == result.records else {
                throw TokenmillError.corrupt(path: rowsPath, message: "\(rows.count) rows, its marker says \(result.records)")
            }
            var perSplit = Array(repeating: ByteWriter(), count: splits.count)
            var kinds = [Int](repeating: 0, count: result.types.count)
            defer { analysis[s].addTypes(result.types, kinds) }
            for (k, r) in rows.enumerated() {
                let id = recordID(unit: u, row: k)
                if r.flags & RowSummary.filtered != 0 {
                    stats[s].filtered += 1
                    guard Int(r.reason) < result.reasons.count else { throw TokenmillError.corrupt(path: rowsPath, message: "filter reason \(r.reason) unknown") }
                    stats[s].filterReasons[result.reasons[Int(r.reason)], default: 0] += 1
                    continue
                }
                if exact.contains(id) { stats[s].exactDup += 1; continue }
                if near.contains(id) { stats[s].nearDup += 1; continue }
                if r.flags & RowSummary.contaminated != 0 { stats[s].decontaminated += 1; decontaminated.append(id); continue }
                // A document whose loss mask is empty (a template whose end marker is not
                // trained, around an empty response) would train on nothing: a counted
                // filter, decided here, after dedup, so the copies a repeat skipped
                // tokenizing are already exact duplicates.
                if r.trainsNothing {
                    stats[s].filtered += 1
                    stats[s].filterReasons[RowSummary.noTrainedTokens, default: 0] += 1
                    continue
                }
                if let take = spec.sources[s].take, taken[s] >= take { stats[s].overTake += 1; continue }
                taken[s] += 1
                // Not chosen by the global sample: counted with the weight's subsample.
                if spec.sample != nil && !sampled.contains(id) { stats[s].subsampled += 1; continue }
                var copies: Int
                if let plan {
                    copies = plan.base[s] + (mixExtra.contains(id) ? 1 : 0)
                } else {
                    let w = spec.sources[s].weight
                    copies = Int(w.rounded(.down))
                    let frac = w - Double(copies)
                    if frac > 0 && draw(salt: weightSalt, source: sourceNames[s], content: r.content) < frac { copies += 1 }
                }
                if copies == 0 { stats[s].subsampled += 1; continue }
                // Overflow buckets are the pack stage's; until then a drawn record is kept.
                stats[s].kept += 1
                try analysis[s].add(r, kinds: &kinds, path: rowsPath)
                // One draw a record: its copies go to the split it goes to, so no validation
                // record is also trained on through a copy.
                let split = spec.validationFraction > 0 && draw(salt: spec.splitSeed, source: sourceNames[s], content: r.content) < spec.validationFraction ? 1 : 0
                for _ in 0..<copies {
                    perSplit[split].u64(id); perSplit[split].u64(r.tokenOffset); perSplit[split].u32(r.tokenCount); perSplit[split].u32(UInt32(s))
                    perSplit[split].u32(r.firstLoss)
                    docs[split] += 1
                    stats[s].documents += 1
                    stats[s].tokens += Int(r.tokenCount)
                }
            }
            for i in splits.indices { try writers[i].append(perSplit[i].bytes) }
        }
        for w in writers { _ = try w.commit() }
        try writeIDs(decontaminatedPath(ctx.work), decontaminated)
        return .object([("sources", .array(stats.map(\.json))), ("documents", .array(docs.map { .int($0) })),
                        ("analysis", .array(analysis.map(\.json)))]
                       + (plan.map { [("mix_total", JSONOut.int($0.total))] } ?? []))
    }

    static func readDocs(_ ctx: BuildContext, split: String) throws -> [SplitDoc] {
        let path = docsPath(ctx.work, split)
        var r = ByteReader(try WorkFile.read(path), path: path)
        guard r.remaining % SplitDoc.size == 0 else { throw TokenmillError.corrupt(path: path, message: "size is not a multiple of \(SplitDoc.size)") }
        var out: [SplitDoc] = []
        out.reserveCapacity(r.remaining / SplitDoc.size)
        while !r.atEnd {
            out.append(SplitDoc(id: try r.u64(), tokenOffset: try r.u64(), tokenCount: try r.u32(), source: try r.u32(), firstLoss: try r.u32()))
        }
        return out
    }
}
