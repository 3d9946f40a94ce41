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
    /// `empty[i]` (no shingles) never join a cluster.
    public static func run(signatures: [UInt32], count: Int, permutations: Int, empty: [Bool], threshold: Double, threads: Int) -> Result {
        precondition(count <= Int(UInt32.max), "near dedup indexes records with 32 bits")
        let params = LSHParameters.optimal(threshold: threshold, permutations: permutations)
        let level = LSHParameters.confirmationLevel(threshold: threshold, permutations: permutations)
        var uf = UnionFind(count: count)
        var hasEdge = [Bool](repeating: false, count: count)
        var edges: [Edge] = []
        var candidates = 0
        let rows = params.rows
        signatures.withUnsafeBufferPointer { sig in
            let base = sig.baseAddress!
            // Band keys: (xxh3 of the band's values, record), sorted; a bucket is a run of
            // equal keys. Bands are computed `threads` at a time, then visited in order.
            var band = 0
            while band < params.bands {
                let group = min(max(1, threads), params.bands - band)
                var sorted = [[UInt64]](repeating: [], count: group)
                sorted.withUnsafeMutableBufferPointer { out in
                    let outBase = out.baseAddress!
                    DispatchQueue.concurrentPerform(iterations: group) { g in
                        let k = band + g
                        // One u64 per record: the high 32 bits of the band's xxh3 over the
                        // record index, so a plain integer sort groups a bucket's members
                        // in index order. Two different bands sharing 32 key bits only add
                        // a candidate that confirmation rejects.
                        var keys: [UInt64] = []
                        keys.reserveCapacity(count)
                        for i in 0..<count where !empty[i] {
                            let p = UnsafeRawPointer(base + i * permutations + k * rows)
                            let h = XXH3.hash64(UnsafeRawBufferPointer(start: p, count: rows * 4))
                            keys.append(h & 0xFFFF_FFFF_0000_0000 | UInt64(i))
                        }
                        radixSort(&keys)
                        (outBase + g).pointee = keys
                    }
                }
                for keys in sorted {
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
                                    if uf.find(x) == uf.find(y) { break }
                                    candidates += 1
                                    let sim = MinHasher.similarity(base + x * permutations, base + y * permutations, permutations)
                                    if sim >= level {
                                        uf.union(x, y)
                                        hasEdge[x] = true; hasEdge[y] = true
                                        edges.append(Edge(matched: x, removed: y, similarity: sim))
                                        break
                                    }
                                }
                            }
                        }
                        s = e
                    }
                }
                band += group
            }
        }
        // The confirmed edges that joined sets form a spanning forest; rooted at each
        // cluster's smallest index (the kept record), every other member gets the edge to
        // its parent as its `matched` record — so the removed members' edges connect the
        // whole cluster, and rebuilding clusters from them gives the same clusters.
        var adjacency: [Int: [(Int, Double)]] = [:]
        for e in edges {
            adjacency[e.matched, default: []].append((e.removed, e.similarity))
            adjacency[e.removed, default: []].append((e.matched, e.similarity))
        }
        var removed = [Bool](repeating: false, count: count)
        var clusters: [Cluster] = []
        var visited = Set<Int>()
        for i in 0..<count where hasEdge[i] && uf.find(i) == i && !visited.contains(i) {
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
        clusters.sort { $0.kept < $1.kept }
        return Result(parameters: params, confirmedAt: level, clusters: clusters, removed: removed, candidatePairs: candidates, confirmedPairs: edges.count)
    }
}
