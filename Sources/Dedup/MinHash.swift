import TokenmillCore

/// MinHash signatures: `permutations` hash functions over the 64-bit shingle hash x,
/// h_i(x) = a_i · y + b_i  (mod 2^32),  y = low 32 bits of x XOR high 32 bits,
/// a_i odd and b_i from SplitMix64(seed): each h_i is a permutation of the 32-bit values
/// (the linear family datasketch uses, modulo 2^32 instead of a Mersenne prime; the
/// inputs are already xxh3 outputs, so linearity does not meet structured sets). The
/// signature value is the minimum over the record's shingles, a u32.
///
/// Why 32-bit lanes: a permutation step is three AVX2 instructions on eight lanes
/// (`vpmulld`, `vpaddd`, `vpminud`), sixteen permutations to a `SIMD16<UInt32>`;
/// 64-bit arithmetic would need `vpmullq`, which only AVX-512DQ has. The Dedup module is
/// compiled for Haswell-class x86-64 (AVX2) — see Package.swift. Accuracy against true
/// Jaccard is tested (DedupTests: bias and mean error over random sets;
/// python/tests/test_near_dedup.py: recall and precision against brute force).
public struct MinHasher: Sendable {
    public let permutations: Int
    let a: [SIMD16<UInt32>]
    let b: [SIMD16<UInt32>]
    /// `permutations` rounded up to 16 (extra lanes are computed and dropped).
    let lanes: Int

    public init(permutations: Int, seed: UInt64) {
        precondition(permutations > 0 && permutations % 8 == 0)
        self.permutations = permutations
        var rng = SplitMix64(seed: seed ^ 0x4D69_6E48_6173_6821)
        var a: [SIMD16<UInt32>] = [], b: [SIMD16<UInt32>] = []
        for _ in 0..<((permutations + 15) / 16) {
            var va = SIMD16<UInt32>(), vb = SIMD16<UInt32>()
            for l in 0..<16 {
                va[l] = UInt32(truncatingIfNeeded: rng.next() >> 32) | 1
                vb[l] = UInt32(truncatingIfNeeded: rng.next() >> 32)
            }
            a.append(va); b.append(vb)
        }
        self.a = a; self.b = b
        lanes = a.count * 16
    }

    /// Lane-wise minimum, written as a select so it inlines to `vpminud` (the stdlib's
    /// generic `pointwiseMin` was left as a call in the hot loop).
    @inline(__always)
    static func umin(_ a: SIMD16<UInt32>, _ b: SIMD16<UInt32>) -> SIMD16<UInt32> {
        a.replacing(with: b, where: b .< a)
    }

    @inline(__always)
    static func fold(_ x: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: x) ^ UInt32(truncatingIfNeeded: x >> 32) }

    /// The value of permutation i for shingle hash x (scalar; for tests).
    public func value(_ i: Int, _ x: UInt64) -> UInt32 {
        a[i / 16][i % 16] &* MinHasher.fold(x) &+ b[i / 16][i % 16]
    }

    /// Writes the signature of `hashes` to `out` (`permutations` values). An empty set
    /// gives all 0xFFFF_FFFF (callers skip empty records).
    public func sign(_ hashes: UnsafeBufferPointer<UInt64>, into out: UnsafeMutablePointer<UInt32>) {
        let groups = a.count
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                // Four groups (64 permutations) per pass keep multipliers, offsets and
                // minima in registers while the shingle hashes stream through L1.
                var g = 0
                while g < groups {
                    let k = min(4, groups - g)
                    let a0 = a[g], a1 = k > 1 ? a[g + 1] : a0, a2 = k > 2 ? a[g + 2] : a0, a3 = k > 3 ? a[g + 3] : a0
                    let b0 = b[g], b1 = k > 1 ? b[g + 1] : b0, b2 = k > 2 ? b[g + 2] : b0, b3 = k > 3 ? b[g + 3] : b0
                    var m0 = SIMD16<UInt32>(repeating: .max), m1 = m0, m2 = m0, m3 = m0
                    for x in hashes {
                        let y = SIMD16<UInt32>(repeating: MinHasher.fold(x))
                        m0 = MinHasher.umin(m0, a0 &* y &+ b0)
                        m1 = MinHasher.umin(m1, a1 &* y &+ b1)
                        m2 = MinHasher.umin(m2, a2 &* y &+ b2)
                        m3 = MinHasher.umin(m3, a3 &* y &+ b3)
                    }
                    for (j, m) in [m0, m1, m2, m3].prefix(k).enumerated() {
                        let base = (g + j) * 16
                        for l in 0..<16 where base + l < permutations { out[base + l] = m[l] }
                    }
                    g += k
                }
            }
        }
    }

    /// Signatures of `count` texts (`text(i)`), `permutations` values each, computed in
    /// parallel batches (each worker with its own shingler); `empty[i]` when text i has no
    /// shingle. The result does not depend on `threads`.
    public func signatures(count: Int, ngram: Int, threads: Int, text: (Int) -> [UInt8]) throws -> (values: [UInt32], empty: [Bool]) {
        let p = permutations
        let parts: [([UInt32], [Bool])] = try parallelBatches(count: count, threads: threads, batchSize: 512) { range in
            var sh = Shingler(ngram: ngram)
            var hashes: [UInt64] = []
            var sigs = [UInt32](repeating: 0, count: range.count * p)
            var empty = [Bool](repeating: false, count: range.count)
            sigs.withUnsafeMutableBufferPointer { out in
                for (k, i) in range.enumerated() {
                    hashes.removeAll(keepingCapacity: true)
                    text(i).withUnsafeBufferPointer { sh.hashes($0, into: &hashes) }
                    empty[k] = hashes.isEmpty
                    hashes.withUnsafeBufferPointer { sign($0, into: out.baseAddress! + k * p) }
                }
            }
            return (sigs, empty)
        }
        var values: [UInt32] = []
        values.reserveCapacity(count * p)
        var empty: [Bool] = []
        empty.reserveCapacity(count)
        for (s, e) in parts { values.append(contentsOf: s); empty.append(contentsOf: e) }
        return (values, empty)
    }

    /// Fraction of equal values: the MinHash estimate of the Jaccard similarity.
    @inline(__always)
    public static func similarity(_ x: UnsafePointer<UInt32>, _ y: UnsafePointer<UInt32>, _ count: Int) -> Double {
        var equal = 0
        var i = 0
        while i + 8 <= count {
            let vx = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<UInt32>.self)
            let vy = UnsafeRawPointer(y + i).loadUnaligned(as: SIMD8<UInt32>.self)
            let eq = vx .== vy
            for l in 0..<8 where eq[l] { equal += 1 }
            i += 8
        }
        while i < count { if x[i] == y[i] { equal += 1 }; i += 1 }
        return Double(equal) / Double(count)
    }
}
