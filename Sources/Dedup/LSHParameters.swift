import TokenmillCore

/// LSH bands and rows from the threshold, as datasketch chooses them: the (b, r) with
/// b·r <= permutations minimising w_fp·FP + w_fn·FN, where FP is the area under the
/// collision probability 1 - (1 - s^r)^b for s in [0, t] and FN the area above it for s
/// in [t, 1]. Never set independently of the threshold.
///
/// Tokenmill weighs false negatives 0.9 and false positives 0.1 (datasketch's default is
/// 0.5/0.5): with 0.5/0.5 at 0.8 and 128 permutations (9 bands of 13 rows) a pair at true
/// Jaccard 0.8 becomes a candidate only ~40% of the time and recall over pairs >= 0.8 is
/// ~0.8; 0.1/0.9 gives 14 bands of 9 rows and recall ~0.98, while the confirmation step
/// (`NearDedup`) keeps precision. Measured against brute-force Jaccard in
/// python/tests/test_near_dedup.py; the decision is in docs/DEDUP.md.
public struct LSHParameters: Sendable, Equatable {
    public var bands: Int
    public var rows: Int

    public static let falsePositiveWeight = 0.1
    public static let falseNegativeWeight = 0.9

    /// Results by (threshold, permutations, weights): the search integrates ~600 (b, r)
    /// pairs, tens of milliseconds, and callers ask more than once.
    nonisolated(unsafe) private static var cache: [[Double]: LSHParameters] = [:]
    private static let cacheLock = NSLockLite()

    public static func optimal(threshold t: Double, permutations: Int,
                               weights: (fp: Double, fn: Double) = (falsePositiveWeight, falseNegativeWeight),
                               threads: Int = 1) -> LSHParameters {
        let key = [t, Double(permutations), weights.fp, weights.fn]
        cacheLock.lock()
        if let hit = cache[key] { cacheLock.unlock(); return hit }
        cacheLock.unlock()
        let result = search(threshold: t, permutations: permutations, weights: weights, threads: threads)
        cacheLock.lock()
        cache[key] = result
        cacheLock.unlock()
        return result
    }

    static func search(threshold t: Double, permutations: Int, weights: (fp: Double, fn: Double), threads: Int = 1) -> LSHParameters {
        let p = max(permutations, 1)
        // The collision probability 1 - (1 - s^r)^b at Simpson's points, with s^r computed
        // once a row count and shared by every band count (evaluating collision(s, b, r)
        // whole for each pair takes twice the powers). The same operations on the same
        // values as that plain loop, so the same errors to the last bit
        // (`testLSHSearchEqualsThePlainLoop`). Row counts on workers.
        let n = integrationIntervals
        func points(_ lo: Double, _ hi: Double) -> [Double] {
            let h = (hi - lo) / Double(n)
            return [lo] + (1..<n).map { lo + Double($0) * h } + [hi]
        }
        let below = points(0, t), above = points(t, 1)
        let perRows = (try? parallelBatches(count: p, threads: threads, batchSize: 1) { range -> [Double] in
            let r = range.lowerBound + 1
            let a = below.map { 1 - pow1($0, r) }, c = above.map { 1 - pow1($0, r) }
            return (1...max(1, p / r)).map { b in
                let fp = simpson(0, t) { 1 - pow1(a[$0], b) }
                let fn = simpson(t, 1) { 1 - (1 - pow1(c[$0], b)) }
                return weights.fp * fp + weights.fn * fn
            }
        }) ?? []
        // The choice in (b, r) order, the first of equal errors winning.
        var best = (Double.infinity, LSHParameters(bands: 1, rows: 1))
        for b in 1...p {
            for r in 1...max(1, p / b) where r <= perRows.count && perRows[r - 1][b - 1] < best.0 {
                best = (perRows[r - 1][b - 1], LSHParameters(bands: b, rows: r))
            }
        }
        return best.1
    }

    /// Composite Simpson's rule on 2000 intervals over values at its points (`f(k)`: the
    /// integrand at point k of `integrationIntervals` + 1, lo first, hi last): the
    /// integrands are smooth polynomials, so this agrees with scipy's adaptive quadrature
    /// far below the gaps between neighbouring (b, r) choices.
    static func simpson(_ lo: Double, _ hi: Double, _ f: (Int) -> Double) -> Double {
        let n = integrationIntervals
        let h = (hi - lo) / Double(n)
        var sum = f(0) + f(n)
        for k in 1..<n { sum += f(k) * (k % 2 == 1 ? 4 : 2) }
        return sum * h / 3
    }

    static let integrationIntervals = 2000

    /// The estimate a candidate pair must reach: the threshold less 1.5 standard errors of
    /// a `permutations`-value estimate at the threshold, sqrt(t(1-t)/P) (0.747 at 0.8/128,
    /// i.e. 96 equal values of 128). A pair truly at the threshold passes ~93% of the time,
    /// one at 0.7 ~11%.
    public static func confirmationLevel(threshold t: Double, permutations: Int) -> Double {
        var sd = t * (1 - t) / Double(permutations)
        // sqrt without Foundation: Newton's method from a good start.
        if sd > 0 {
            var x = sd
            for _ in 0..<40 { x = 0.5 * (x + sd / x) }
            sd = x
        }
        return t - 1.5 * sd
    }

    /// x^k by squaring (no Foundation `pow`).
    static func pow1(_ x: Double, _ k: Int) -> Double {
        var result = 1.0, base = x, e = k
        while e > 0 {
            if e & 1 == 1 { result *= base }
            base *= base
            e >>= 1
        }
        return result
    }

}
