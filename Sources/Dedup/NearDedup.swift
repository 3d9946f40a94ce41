import Dispatch
import TokenmillCore

/// The global near-dedup decision over compact signatures (u32 per permutation per
/// record, records in spec order): LSH bands bucketed by sorting (no per-bucket
/// objects), candidate pairs confirmed when their estimated Jaccard reaches the
/// threshold, union-find clusters whose kept record is the smallest index.
///
/// Deterministic: band keys are computed in parallel, but bands, buckets and members are
/// visited in a fixed order, so the clusters and the edge recorded for each removed
/// record do not depend on the thread count.
///
/// A candidate pair is confirmed when its estimate reaches the threshold less 1.5 standard
/// errors (`LSHParameters.confirmationLevel`), so pairs truly at the threshold are kept.
public enum NearDedup {
    public struct Edge: Sendable, Equatable {
        /// The record the removed one was confirmed against, and the removed one.
        public var matched: Int
        public var removed: Int
        public var similarity: Double
        public init(matched: Int, removed: Int, similarity: Double) { self.matched = matched; self.removed = removed; self.similarity = similarity }
    }

    public struct Cluster: Sendable, Equatable {
        public var kept: Int
        /// Removed members in index order, each with the edge that confirmed it.
        public var removed: [Edge]
    }

    public struct Result: Sendable {
        public var parameters: LSHParameters
        /// The estimated Jaccard a candidate pair needed (`LSHParameters.confirmationLevel`).
        public var confirmedAt: Double
        public var clusters: [Cluster]
        public var removed: [Bool]
        public var candidatePairs = 0
        public var confirmedPairs = 0
    }

    /// `signatures` holds `count` signatures of `permutations` values each; records with
    /// `empty[i]` (no shingles) never join a cluster. In memory: what the staged build does
    /// band by band from the work folder (`bandKeys`, `bandEdges`, `clusters`).
    public static func run(signatures: [UInt32], count: Int, permutations: Int, empty: [Bool], threshold: Double, threads: Int) -> Result {
        precondition(count <= Int(UInt32.max), "near dedup indexes records with 32 bits")
        let params = LSHParameters.optimal(threshold: threshold, permutations: permutations)
        let level = LSHParameters.confirmationLevel(threshold: threshold, permutations: permutations)
        let rows = params.rows
        var edges: [Edge] = []
        var candidates = 0
        signatures.withUnsafeBufferPointer { sig in
            let base = sig.baseAddress!
            var band = 0
            while band < params.bands {
                let group = min(max(1, threads), params.bands - band)
                var found = [(Int, [Edge])](repeating: (0, []), count: group)
                found.withUnsafeMutableBufferPointer { out in
                    let outBase = out.baseAddress!
                    DispatchQueue.concurrentPerform(iterations: group) { g in
                        let k = band + g
                        var keys: [UInt64] = []
                        keys.reserveCapacity(count)
                        for i in 0..<count where !empty[i] {
                            let p = UnsafeRawPointer(base + i * permutations + k * rows)
                            keys.append(bandKey(XXH3.hash64(UnsafeRawBufferPointer(start: p, count: rows * 4)), index: i))
                        }
                        (outBase + g).pointee = bandEdges(keys: &keys, level: level) { x, y in
                            MinHasher.similarity(base + x * permutations, base + y * permutations, permutations)
                        }
                    }
                }
                for (c, e) in found { candidates += c; edges.append(contentsOf: e) }
                band += group
            }
        }
        var result = clusters(edges: edges, count: count)
        result.parameters = params
        result.confirmedAt = level
        result.candidatePairs = candidates
        return result
    }

    /// A record's key in one band: the high 32 bits of the band's xxh3 over the record's
    /// index, so a plain integer sort groups a bucket's members in index order. Two bands
    /// sharing 32 key bits only add a candidate that confirmation rejects.
    @inline(__always)
    public static func bandKey(_ bandHash: UInt64, index: Int) -> UInt64 { bandHash & 0xFFFF_FFFF_0000_0000 | UInt64(index) }

    /// One band's confirmed pairs: keys are sorted; in each bucket (run of equal high
    /// halves) every member is compared with the earlier members in index order until one
    /// confirms (estimated Jaccard >= `level`), which gives the edge (earlier, member).
    /// Depends on this band's keys alone, so bands can run anywhere in any order.
    /// Returns (pairs compared, edges).
    public static func bandEdges(keys: inout [UInt64], level: Double, similarity: (Int, Int) throws -> Double) rethrows -> (Int, [Edge]) {
        radixSort(&keys)
        var edges: [Edge] = []
        var compared = 0
        var s = 0
        while s < keys.count {
            var e = s + 1
            let bucket = keys[s] >> 32
            while e < keys.count && keys[e] >> 32 == bucket { e += 1 }
            if e - s > 1 {
                for m in (s + 1)..<e {
                    let y = Int(keys[m] & 0xFFFF_FFFF)
                    for p in s..<m {
                        let x = Int(keys[p] & 0xFFFF_FFFF)
                        compared += 1
                        let sim = try similarity(x, y)
                        if sim >= level { edges.append(Edge(matched: x, removed: y, similarity: sim)); break }
                    }
                }
            }
            s = e
        }
        return (compared, edges)
    }

    /// Clusters from the confirmed edges of all bands (any order: they are sorted first):
    /// union-find components, each kept by its smallest index; rooted there, every other
    /// member gets the edge to its BFS parent (neighbours visited in index order) as its
    /// `matched` record, so the removed members' edges connect the whole cluster.
    public static func clusters(edges unsorted: [Edge], count: Int) -> Result {
        var edges = unsorted
        edges.sort { ($0.matched, $0.removed) < ($1.matched, $1.removed) }
        var uf = UnionFind(count: count)
        var hasEdge = [Bool](repeating: false, count: count)
        var unique: [Edge] = []
        for e in edges where unique.last.map({ $0.matched != e.matched || $0.removed != e.removed }) ?? true {
            unique.append(e)
            uf.union(e.matched, e.removed)
            hasEdge[e.matched] = true; hasEdge[e.removed] = true
        }
        var adjacency: [Int: [(Int, Double)]] = [:]
        for e in unique {
            adjacency[e.matched, default: []].append((e.removed, e.similarity))
            adjacency[e.removed, default: []].append((e.matched, e.similarity))
        }
        var removed = [Bool](repeating: false, count: count)
        var clusters: [Cluster] = []
        var visited = Set<Int>()
        for i in 0..<count where hasEdge[i] && !visited.contains(i) {
            var members: [Edge] = []
            var queue = [i]
            visited.insert(i)
            var head = 0
            while head < queue.count {
                let x = queue[head]; head += 1
                for (y, sim) in (adjacency[x] ?? []).sorted(by: { $0.0 < $1.0 }) where !visited.contains(y) {
                    visited.insert(y)
                    queue.append(y)
                    removed[y] = true
                    members.append(Edge(matched: x, removed: y, similarity: sim))
                }
            }
            members.sort { $0.removed < $1.removed }
            clusters.append(Cluster(kept: i, removed: members))
        }
        return Result(parameters: LSHParameters(bands: 0, rows: 0), confirmedAt: 0, clusters: clusters, removed: removed,
                      candidatePairs: 0, confirmedPairs: unique.count)
    }
}
