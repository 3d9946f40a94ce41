import XCTest
@testable import Dedup
import TokenmillCore

final class DedupTests: XCTestCase {
    /// Values of datasketch 2.0's `_optimal_param(t, p, 0.5, 0.5)` (scipy quadrature).
    func testLSHParametersEqualDatasketch() {
        let cases: [(Double, Int, Int, Int)] = [(0.8, 128, 9, 13), (0.5, 128, 25, 5), (0.9, 256, 9, 28), (0.7, 64, 8, 8), (0.85, 16, 2, 8)]
        for (t, p, b, r) in cases {
            XCTAssertEqual(LSHParameters.optimal(threshold: t, permutations: p, weights: (0.5, 0.5)), LSHParameters(bands: b, rows: r), "t=\(t) p=\(p)")
        }
        // Tokenmill's weights (0.1, 0.9), also datasketch's values.
        for (t, p, b, r) in [(0.8, 128, 14, 9), (0.5, 128, 32, 4), (0.9, 256, 13, 19), (0.7, 64, 12, 5)] {
            XCTAssertEqual(LSHParameters.optimal(threshold: t, permutations: p), LSHParameters(bands: b, rows: r), "t=\(t) p=\(p)")
        }
        XCTAssertEqual(LSHParameters.confirmationLevel(threshold: 0.8, permutations: 128), 0.8 - 1.5 * (0.16 / 128.0).squareRoot(), accuracy: 1e-12)
    }

    func shingles(_ text: String, _ n: Int) -> [String] {
        var sh = Shingler(ngram: n)
        let count = Array(text.utf8).withUnsafeBufferPointer { sh.prepare($0) }
        return (0..<count).map { sh.shingleText($0) }
    }

    func testWordShinglesFoldCaseAndSplitOnWhitespace() {
        XCTAssertEqual(shingles("The quick  brown\tFOX\u{3000}jumps", 3), ["the quick brown", "quick brown fox", "brown fox jumps"])
        XCTAssertEqual(shingles("  Hello, World!  ", 5), ["hello, world!"])   // shorter than n: one shingle
        XCTAssertEqual(shingles(" \n\t ", 5), [])
        XCTAssertEqual(shingles("ÀÉÎ ΣΑΣ Straße", 2), ["àéî σασ", "σασ straße"])
        XCTAssertEqual(shingles("K\u{212A}", 1), ["kk"])                         // Kelvin sign folds to k
    }

    func testCJKTextIsShingledByCharacters() {
        XCTAssertEqual(shingles("给出 三个保持健康的秘诀。", 5), ["给出三个保", "出三个保持", "三个保持健", "个保持健康", "保持健康的", "持健康的秘", "健康的秘诀", "康的秘诀。"])
        // Mostly Latin with a few ideographs stays in word mode.
        XCTAssertEqual(shingles("use the 中文 word here", 5), ["use the 中文 word here"])
        XCTAssertEqual(shingles("สวัสดีครับ", 8).count, 3)
    }

    /// Over random set pairs of known Jaccard, the 128-permutation estimate is unbiased
    /// and within its standard error sqrt(J(1-J)/128) on average.
    func testMinHashEstimatesJaccard() {
        let hasher = MinHasher(permutations: 128, seed: 1)
        var rng = SplitMix64(seed: 7)
        var totalError = 0.0, bias = 0.0
        let trials = 400
        for _ in 0..<trials {
            let shared = Int(rng.below(200)) + 1, onlyA = Int(rng.below(100)), onlyB = Int(rng.below(100))
            let common = (0..<shared).map { _ in rng.next() }
            let a = common + (0..<onlyA).map { _ in rng.next() }
            let b = common + (0..<onlyB).map { _ in rng.next() }
            let truth = Double(shared) / Double(shared + onlyA + onlyB)
            var sa = [UInt32](repeating: 0, count: 128), sb = sa
            a.withUnsafeBufferPointer { hasher.sign($0, into: &sa) }
            b.withUnsafeBufferPointer { hasher.sign($0, into: &sb) }
            let est = MinHasher.similarity(sa, sb, 128)
            totalError += abs(est - truth)
            bias += est - truth
        }
        XCTAssertLessThan(totalError / Double(trials), 0.04)
        XCTAssertLessThan(abs(bias / Double(trials)), 0.01)
    }

    func testSignatureIgnoresOrderAndRepeats() {
        let hasher = MinHasher(permutations: 64, seed: 3)
        let x: [UInt64] = [5, 9, 1 << 40, 77]
        var s1 = [UInt32](repeating: 0, count: 64), s2 = s1
        x.withUnsafeBufferPointer { hasher.sign($0, into: &s1) }
        (x.reversed() + x).withUnsafeBufferPointer { hasher.sign($0, into: &s2) }
        XCTAssertEqual(s1, s2)
        // Each value is the minimum of the lane's hash function (checked lane by lane).
        for i in 0..<64 {
            XCTAssertEqual(s1[i], x.map { hasher.value(i, $0) }.min()!)
        }
    }

    func testClustersKeepTheEarliestAndAreThreadIndependent() {
        // Records 0..9: 2, 5, 7 copy record 1's set; 8 copies 3; the rest are distinct.
        let hasher = MinHasher(permutations: 128, seed: 1)
        var rng = SplitMix64(seed: 11)
        var sets = (0..<10).map { _ in (0..<50).map { _ in rng.next() } }
        for k in [2, 5, 7] { sets[k] = sets[1] }
        sets[8] = Array(sets[3].dropLast(1))          // Jaccard 49/50
        var sigs = [UInt32](repeating: 0, count: 10 * 128)
        for (i, s) in sets.enumerated() {
            sigs.withUnsafeMutableBufferPointer { o in s.withUnsafeBufferPointer { hasher.sign($0, into: o.baseAddress! + i * 128) } }
        }
        let empty = [Bool](repeating: false, count: 10)
        let r1 = NearDedup.run(signatures: sigs, count: 10, permutations: 128, empty: empty, threshold: 0.8, threads: 1)
        let r2 = NearDedup.run(signatures: sigs, count: 10, permutations: 128, empty: empty, threshold: 0.8, threads: 2)
        XCTAssertEqual(r1.clusters, r2.clusters)
        XCTAssertEqual(r1.clusters.map(\.kept), [1, 3])
        XCTAssertEqual(r1.clusters[0].removed.map(\.removed), [2, 5, 7])
        XCTAssertEqual(r1.clusters[1].removed.map(\.removed), [8])
        XCTAssertEqual(r1.removed.enumerated().filter(\.element).map(\.offset), [2, 5, 7, 8])
    }

    func testExactKeyFoldsCasePunctuationDiacriticsAndSpaces() {
        func key(_ s: String) -> String { String(decoding: ExactDedup.normalizedKey(Array(s.utf8)), as: UTF8.self) }
        XCTAssertEqual(key("  Héllo,   WORLD!\n"), "hello world")
        XCTAssertEqual(key("hello world"), "hello world")
        XCTAssertEqual(key("Ｆｕｌｌ—width «quotes»"), "fullwidth quotes")
        XCTAssertEqual(key("100% $5 a+b"), "100 $5 a+b")      // symbols stay, punctuation goes
        XCTAssertEqual(key("!!!"), "")
    }

    func testUnionFindRootIsTheSmallest() {
        var uf = UnionFind(count: 6)
        uf.union(4, 5); uf.union(5, 2); uf.union(3, 4)
        XCTAssertEqual(uf.find(5), 2)
        XCTAssertFalse(uf.union(2, 3))
        XCTAssertEqual(uf.find(0), 0)
    }
}
