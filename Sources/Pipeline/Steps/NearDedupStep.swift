import Dedup
import TokenmillCore

/// Near dedup (drop reason `near_dup`, docs/DEDUP.md), in three places:
/// - scan: the MinHash signature (`scan/<u>.sig`, row-major, for confirmation) and the
///   key in every LSH band (the bands section of `scan/<u>.data`, band-major, so a band
///   reads one contiguous slice of each unit) of each record that was signed and has a shingle (`sigEmpty`
///   clear), in row order: the "signed rows";
/// - near-bands, one unit a band: candidates are the records that survived the filter and
///   exact dedup, numbered in spec order; the band's buckets give confirmed edges;
/// - near-merge: the clusters of all bands' edges, each kept by its earliest record.
struct NearDedupStep {
    let spec: NearDedupSpec
    let lsh: LSHParameters
    let hasher: MinHasher

    init(spec: NearDedupSpec, lsh: LSHParameters) {
        self.spec = spec; self.lsh = lsh
        hasher = MinHasher(permutations: spec.permutations, seed: spec.seed)
    }

    struct Scratch {
        var shingler: Shingler?
        var hashes: [UInt64] = []
    }

    /// The record's signature into `sig` (`permutations` values) and its band hashes into
    /// `bands` (`lsh.bands` values, left as they are when it has no shingle); returns
    /// whether it has none. The caller's buffers hold a whole piece's rows, so a record
    /// allocates nothing.
    func sign(_ r: Record, _ scratch: inout Scratch, sig: UnsafeMutablePointer<UInt32>, bands: UnsafeMutablePointer<UInt64>) -> Bool {
        if scratch.shingler == nil { scratch.shingler = Shingler(ngram: spec.ngram) }
        scratch.hashes.removeAll(keepingCapacity: true)
        let text = spec.on.text(of: r)
        text.withUnsafeBufferPointer { scratch.shingler!.hashes($0, into: &scratch.hashes) }
        scratch.hashes.withUnsafeBufferPointer { hasher.sign($0, into: sig) }
        if scratch.hashes.isEmpty { return true }
        let row = lsh.rows * 4
        for k in 0..<lsh.bands {
            bands[k] = XXH3.hash64(UnsafeRawBufferPointer(start: UnsafeRawPointer(sig) + k * row, count: row))
        }
        return false
    }

    static func edgesPath(_ w: WorkFolder, _ b: Int) -> String { w.path(.nearBands, "\(b).edges") }
    static func removedPath(_ w: WorkFolder) -> String { w.path(.nearMerge, "removed") }
    static func clustersPath(_ w: WorkFolder) -> String { w.path(.nearMerge, "clusters") }

    /// The candidates in spec order (records that survived the filter and exact dedup):
    /// their ids and where their signature lies among their unit's signed rows (-1 for a
    /// candidate without a shingle), and per unit each signed row's candidate number (-1
    /// for a signed row that is not a candidate: an exact duplicate found by the exact
    /// stage). At most 16 bytes a record, computed once a process from the row summaries
    /// and shared by the bands it runs.
    struct Candidates { var ids: [RecordID] = []; var signedRows: [Int32] = []; var numbers: [[Int32]] = [] }

    static func candidates(_ ctx: BuildContext) throws -> Candidates {
        ctx.lock.lock(); defer { ctx.lock.unlock() }
        if let c = ctx.candidatesMemo { return c }
        // Each unit on a worker (its rows file read and its candidates numbered from 0, its
        // share of the sorted exact duplicates found by binary search), then the numbers
        // offset by the candidates of the units before it: the serial pass this was took a
        // third of near-bands at two threads.
        let dups = try ctx.exactDuplicates()
        func firstAtLeast(_ id: RecordID) -> Int {
            var lo = 0, hi = dups.count
            while lo < hi { let m = (lo + hi) / 2; if dups[m] < id { lo = m + 1 } else { hi = m } }
            return lo
        }
        let perUnit = try parallelBatches(count: ctx.units.count, threads: ctx.threads, batchSize: 1) { r -> ([RecordID], [Int32], [Int32]) in
            let u = r.lowerBound
            let rows = try RowSummary.readAll(ctx.work, u)
            let from = firstAtLeast(recordID(unit: u, row: 0)), to = firstAtLeast(recordID(unit: u + 1, row: 0))
            var unitDups = SortedIDCursor(Array(dups[from..<to]))
            var ids: [RecordID] = [], signedRows: [Int32] = [], numbers: [Int32] = []
            for (k, r) in rows.enumerated() {
                let signed = r.flags & RowSummary.sigEmpty == 0
                let id = recordID(unit: u, row: k)
                if r.flags & RowSummary.filtered != 0 || unitDups.contains(id) {
                    if signed { numbers.append(-1) }
                    continue
                }
                signedRows.append(signed ? Int32(numbers.count) : -1)
                if signed { numbers.append(Int32(ids.count)) }
                ids.append(id)
            }
            return (ids, signedRows, numbers)
        }
        var c = Candidates()
        let total = perUnit.reduce(0) { $0 + $1.0.count }
        c.ids.reserveCapacity(total)
        c.signedRows.reserveCapacity(total)
        for (ids, signedRows, numbers) in perUnit {
            let base = Int32(c.ids.count)
            c.numbers.append(base == 0 ? numbers : numbers.map { $0 >= 0 ? $0 + base : -1 })
            c.ids.append(contentsOf: ids)
            c.signedRows.append(contentsOf: signedRows)
        }
        ctx.candidatesMemo = c
        return c
    }

    /// Unit `b` of near-bands.
    static func runBand(_ ctx: BuildContext, band b: Int) throws -> JSONOut {
        let near = ctx.spec.nearDedup!
        let level = LSHParameters.confirmationLevel(threshold: near.threshold, permutations: near.permutations)
        let c = try candidates(ctx)
        var keys: [UInt64] = []
        for u in ctx.units.indices where !c.numbers[u].isEmpty {
            let numbers = c.numbers[u]
            let f = try ScanStage.section(ctx.work, u, .bands)
            var r = ByteReader(try f.read(offset: b * numbers.count * 8, count: numbers.count * 8), path: f.path)
            for k in numbers.indices {
                let h = try r.u64()
                if numbers[k] >= 0 { keys.append(NearDedup.bandKey(h, index: Int(numbers[k]))) }
            }
        }
        let sigs = SignatureReader(ctx, candidates: c)
        let (compared, edges) = try NearDedup.bandEdges(keys: &keys, level: level) { x, y in
            try sigs.similarity(x, y)
        }
        var w = ByteWriter(capacity: edges.count * 16)
        for e in edges { w.u32(UInt32(e.matched)); w.u32(UInt32(e.removed)); w.f64(e.similarity) }
        try WorkFile.write(edgesPath(ctx.work, b), w.bytes)
        return .object([("compared", .int(compared)), ("edges", .int(edges.count))])
    }

    /// The near-merge unit: clusters, the removed ids, and the clusters' records.
    static func runMerge(_ ctx: BuildContext) throws -> JSONOut {
        let ids = try candidates(ctx).ids
        var edges: [NearDedup.Edge] = []
        var compared = 0
        for b in 0..<ctx.lsh!.bands {
            compared += ctx.work.marker(.nearBands, b)?["compared"]?.intValue ?? 0
            let path = edgesPath(ctx.work, b)
            var r = ByteReader(try WorkFile.read(path), path: path)
            while !r.atEnd {
                let x = Int(try r.u32()), y = Int(try r.u32()), sim = try r.f64()
                guard x < ids.count, y < ids.count else { throw TokenmillError.corrupt(path: path, message: "edge names candidate \(max(x, y)) of \(ids.count)") }
                edges.append(NearDedup.Edge(matched: x, removed: y, similarity: sim))
            }
        }
        let result = NearDedup.clusters(edges: edges, count: ids.count)
        var removed: [RecordID] = []
        var w = ByteWriter()
        for c in result.clusters {
            w.u64(ids[c.kept]); w.u32(UInt32(c.removed.count))
            for e in c.removed { w.u64(ids[e.removed]); w.u64(ids[e.matched]); w.f64(e.similarity); removed.append(ids[e.removed]) }
        }
        removed.sort()
        try WorkFile.write(clustersPath(ctx.work), w.bytes)
        try writeIDs(removedPath(ctx.work), removed)
        return .object([("clusters", .int(result.clusters.count)), ("removed", .int(removed.count)),
                        ("candidate_pairs", .int(compared)), ("confirmed_pairs", .int(result.confirmedPairs))])
    }

    struct ClusterEntry { var kept: RecordID; var removed: [(removed: RecordID, matched: RecordID, similarity: Double)] }

    static func readClusters(_ ctx: BuildContext) throws -> [ClusterEntry] {
        let path = clustersPath(ctx.work)
        var r = ByteReader(try WorkFile.read(path), path: path)
        var out: [ClusterEntry] = []
        while !r.atEnd {
            var c = ClusterEntry(kept: try r.u64(), removed: [])
            let n = Int(try r.u32())
            guard n <= r.remaining / 24 else { throw TokenmillError.corrupt(path: path, message: "cluster size \(n) out of bounds") }
            for _ in 0..<n { c.removed.append((try r.u64(), try r.u64(), try r.f64())) }
            out.append(c)
        }
        return out
    }
}

/// Signatures by candidate number, read by `pread` from the scan units' `.sig` files
/// (which hold the signed rows only).
final class SignatureReader {
    let ctx: BuildContext
    let candidates: NearDedupStep.Candidates
    let permutations: Int
    var files: [Int: RandomAccessWorkFile] = [:]
    var last: (Int, [UInt32])?

    init(_ ctx: BuildContext, candidates: NearDedupStep.Candidates) {
        self.ctx = ctx; self.candidates = candidates; permutations = ctx.spec.nearDedup!.permutations
    }

    func signature(_ x: Int) throws -> [UInt32] {
        if let last, last.0 == x { return last.1 }
        let u = unitOf(candidates.ids[x])
        let row = Int(candidates.signedRows[x])
        let path = ScanStage.sigPath(ctx.work, u)
        // Only candidates with a shingle join a band's buckets.
        guard row >= 0 else { throw TokenmillError.corrupt(path: path, message: "candidate \(x) has no signature") }
        if files[u] == nil {
            if files.count >= 256 { files.removeAll() }
            files[u] = try RandomAccessWorkFile(path: path)
        }
        var sig = [UInt32](repeating: 0, count: permutations)
        try sig.withUnsafeMutableBytes { try files[u]!.read(offset: row * permutations * 4, count: permutations * 4, into: $0.baseAddress!) }
        return sig
    }

    func similarity(_ x: Int, _ y: Int) throws -> Double {
        let sy = try signature(y)
        last = (y, sy)
        let sx = try signature(x)
        return sx.withUnsafeBufferPointer { a in sy.withUnsafeBufferPointer { b in MinHasher.similarity(a.baseAddress!, b.baseAddress!, permutations) } }
    }
}
