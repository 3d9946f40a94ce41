import XCTest
@testable import Dedup
import TokenmillCore

final class DedupTests: XCTestCase {
    /// Values of datasketch 2.0's `_optimal_param(t, p, 0.5, 0.5)` (scipy quadrature).
    /// The search (powers shared across band counts, row counts on workers) chooses what
    /// the plain loop over (b, r) with `integrate` chooses, on a grid of thresholds,
    /// permutation counts and weights.
    func testLSHSearchEqualsThePlainLoop() {
        // Simpson's rule on the same points, written out as its definition.
        func integrate(_ lo: Double, _ hi: Double, _ f: (Double) -> Double) -> Double {
            let n = LSHParameters.integrationIntervals
            let h = (hi - lo) / Double(n)
            var sum = f(lo) + f(hi)
            for k in 1..<n { sum += f(lo + Double(k) * h) * (k % 2 == 1 ? 4 : 2) }
            return sum * h / 3
        }
        func plain(_ t: Double, _ p: Int, _ w: (Double, Double)) -> LSHParameters {
            func collision(_ s: Double, _ b: Int, _ r: Int) -> Double { 1 - LSHParameters.pow1(1 - LSHParameters.pow1(s, r), b) }
            var best = (Double.infinity, LSHParameters(bands: 1, rows: 1))
            for b in 1...p {
                for r in 1...max(1, p / b) {
                    let e = w.0 * integrate(0, t) { collision($0, b, r) } + w.1 * integrate(t, 1) { 1 - collision($0, b, r) }
                    if e < best.0 { best = (e, LSHParameters(bands: b, rows: r)) }
                }
            }
            return best.1
        }
        for (t, p) in [(0.5, 16), (0.7, 64), (0.8, 112), (0.85, 128), (0.9, 200), (0.95, 50), (0.3, 96), (0.75, 1), (0.6, 7)] {
            for w in [(0.5, 0.5), (0.1, 0.9), (0.9, 0.1)] {
                XCTAssertEqual(LSHParameters.search(threshold: t, permutations: p, weights: w, threads: 2), plain(t, p, w), "t=\(t) p=\(p) w=\(w)")
            }
        }
    }

    func testLSHParametersEqualDatasketch() {
        let cases: [(Double, Int, Int, Int)] = [(0.8, 128, 9, 13), (0.5, 128, 25, 5), (0.9, 256, 9, 28), (0.7, 64, 8, 8), (0.85, 16, 2, 8)]
        for (t, p, b, r) in cases {
            XCTAssertEqual(LSHParameters.optimal(threshold: t, permutations: p, weights: (0.5, 0.5)), LSHParameters(bands: b, rows: r), "t=\(t) p=\(p)")
        }
        // Tokenmill's weights (0.1, 0.9), also datasketch's values.
        for (t, p, b, r) in [(0.8, 128, 14, 9), (0.5, 128, 32, 4), (0.9, 256, 13, 19), (0.7, 64, 12, 5)] {
            XCTAssertEqual(LSHParameters.optimal(threshold: t, permutations: p), LSHParameters(bands: b, rows: r), "t=\(t) p=\(p)")
        }
        // The search on several workers chooses as one loop does (the first of equal errors).
        for (t, p, b, r) in [(0.8, 128, 14, 9), (0.5, 128, 32, 4), (0.9, 256, 13, 19), (0.7, 64, 12, 5)] {
            XCTAssertEqual(LSHParameters.search(threshold: t, permutations: p, weights: (0.1, 0.9), threads: 3), LSHParameters(bands: b, rows: r))
        }
        XCTAssertEqual(LSHParameters.search(threshold: 0.8, permutations: 128, weights: (0.5, 0.5), threads: 2), LSHParameters(bands: 9, rows: 13))
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

    /// The shingler's fast paths (whole-ASCII texts, ASCII runs inside mixed texts, the
    /// byte-count test of a text's script) against the definition written plainly: the
    /// scalars, the script count, the units and the joined shingles, on random texts of
    /// ASCII words, accented Latin, Greek, CJK, Thai and Unicode spaces in every mix.
    func testShinglesEqualTheirDefinitionOnMixedTexts() {
        func reference(_ text: String, _ n: Int) -> [String] {
            let scalars = text.unicodeScalars.map(\.value)
            let nonSpace = scalars.filter { !UnicodeData.isSpace($0) }
            let unspaced = nonSpace.filter { Shingler.isUnspaced($0) }.count
            func fold(_ c: UInt32) -> UInt32 { c < 0x80 ? (c >= 0x41 && c <= 0x5A ? c | 0x20 : c) : UnicodeData.fold(c) }
            func string(_ cs: [UInt32]) -> String { String(String.UnicodeScalarView(cs.compactMap(Unicode.Scalar.init))) }
            if 2 * unspaced > nonSpace.count {
                let units = nonSpace.map { string([fold($0)]) }
                if units.isEmpty { return [] }
                if units.count < n { return [units.joined()] }
                return (0...(units.count - n)).map { units[$0..<($0 + n)].joined() }
            }
            var words: [String] = [], word: [UInt32] = []
            for c in scalars {
                if UnicodeData.isSpace(c) { if !word.isEmpty { words.append(string(word)); word = [] } } else { word.append(fold(c)) }
            }
            if !word.isEmpty { words.append(string(word)) }
            if words.isEmpty { return [] }
            if words.count < n { return [words.joined(separator: " ")] }
            return (0...(words.count - n)).map { words[$0..<($0 + n)].joined(separator: " ") }
        }
        let pieces = ["The", "quick", "BROWN", "fox", "a", "Zebra", "x1", "don't", "café", "Ärger", "naïve", "ΣΑΣ", "straße",
                      "中文", "机器学习", "の", "สวัสดี", "ครับ", "!", "K\u{212A}"]
        let spaces = [" ", "  ", "\t", "\n", "\u{3000}", "\u{A0}", "\r\n", ""]
        var rng = SplitMix64(seed: 2026)
        for round in 0..<4000 {
            var text = ""
            // Mostly ASCII words with some of the others, or mostly CJK/Thai: both modes.
            let cjkHeavy = round % 3 == 0
            for _ in 0..<(1 + Int(rng.below(40))) {
                let k = Int(rng.below(UInt64(pieces.count)))
                let piece = cjkHeavy && rng.below(2) == 0 ? pieces[13 + Int(rng.below(4))] : pieces[k]
                text += piece + spaces[Int(rng.below(UInt64(spaces.count)))]
            }
            let n = 1 + Int(rng.below(5))
            let got = shingles(text, n)
            let want = reference(text, n)
            if got != want { XCTFail("n=\(n) \(text.debugDescription): \(got) != \(want)"); return }
            var sh = Shingler(ngram: n)
            var hashes: [UInt64] = []
            Array(text.utf8).withUnsafeBufferPointer { sh.hashes($0, into: &hashes) }
            XCTAssertEqual(hashes, want.map { XXH3.hash64(Array($0.utf8)) })
        }
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

    /// The one-load fold table agrees with the binary search over the fold pairs for every scalar.
    func testFoldTableEqualsTheFoldPairsForEveryScalar() {
        for c in UInt32(0)..<0x110000 where !(0xD800..<0xE000).contains(c) {
            if UnicodeData.fold(c) != UnicodeData.foldSearch(c) { XCTFail(String(c, radix: 16)); return }
        }
    }

    /// The table-driven key equals the definition (decompose the whole text, then classify
    /// and fold) for every BMP scalar in context, and for random texts of the scalars where
    /// they could differ: combining marks around expanding and non-starter-bearing
    /// decompositions, Hangul, compatibility forms, spaces, punctuation, beyond the BMP.
    /// What the CJK fast paths of the exact key and the shingler assume: every scalar of
    /// U+4000...U+9FFF (lead bytes E4-E9) keys as its own bytes, is not a space and folds
    /// to itself; and U+5000...U+9FFF (E5-E9) is unspaced.
    func testCJKScalarsKeyAsThemselves() {
        for c in UInt32(0x4000)..<0xA000 {
            var u: [UInt8] = []
            Shingler.append(c, to: &u)
            XCTAssertEqual(ExactKeyTable.contribution(c), u, String(c, radix: 16))
            XCTAssertEqual(ExactDedup.generalKey(u), u, String(c, radix: 16))
            XCTAssertFalse(UnicodeData.isSpace(c))
            XCTAssertEqual(UnicodeData.fold(c), c)
            if c >= 0x5000 { XCTAssertTrue(Shingler.isUnspaced(c)) }
        }
    }

    func testTableKeyEqualsTheGeneralKey() {
        func utf8(_ cs: [UInt32]) -> [UInt8] { cs.reduce(into: [UInt8]()) { Shingler.append($1, to: &$0) } }
        var slow = 0
        for c in UInt32(0x80)..<0x10000 where !(0xD800..<0xE000).contains(c) {
            let t = utf8([0x41, c, 0x20, 0x301, c, c, 0x2E, 0x20, 0x62, c])
            let fast = t.withUnsafeBufferPointer { ExactDedup.withFastKey($0) { Array($0) } }
            if fast == nil { slow += 1 }
            if ExactDedup.normalizedKey(t) != ExactDedup.generalKey(t) { XCTFail("U+\(String(c, radix: 16))"); return }
        }
        XCTAssertLessThan(slow, 2000, "most scalars take the table path")
        // Expanding scalars (one of 3 bytes becomes 33) and then a long ASCII run: the key
        // outgrows the input, and the buffer must grow before the ASCII path writes.
        for k in [1, 7, 100, 1000] {
            let t = utf8(Array(repeating: 0xFDFA, count: k) + Array(repeating: 0x61, count: 5000) + [0x3300, 0x20, 0x62])
            XCTAssertEqual(ExactDedup.normalizedKey(t), ExactDedup.generalKey(t))
            XCTAssertEqual(t.withUnsafeBufferPointer { ExactDedup.withFastKey($0) { $0.count } }, ExactDedup.generalKey(t).count)
        }
        let pool: [UInt32] = [0x41, 0x7A, 0x20, 0x0A, 0x2C, 0x21, 0xA0, 0xA8, 0xC9, 0xDF, 0x130, 0x1C4, 0x2B0, 0x300, 0x301, 0x316, 0x327,
                              0x345, 0x385, 0x390, 0x3D3, 0x5B0, 0x5C1, 0x93C, 0x94D, 0x9BE, 0x9CB, 0xE31, 0xE48, 0xF73, 0xF81,
                              0x1100, 0x1161, 0x11A8, 0x1E9E, 0x1F80, 0x2000, 0x2126, 0x2160, 0x2460, 0x3000, 0x3001, 0x3131,
                              0x3300, 0x4E2D, 0xAC00, 0xD55C, 0xFB01, 0xFDFA, 0xFF21, 0xFF0C, 0xFFE3, 0x1D165, 0x1D16D, 0x1D400,
                              0x1F600, 0x1F1E6, 0x2F800, 0x10400, 0x1E900]
        var rng = SplitMix64(seed: 11)
        for _ in 0..<50_000 {
            let t = utf8((0..<(1 + Int(rng.below(12)))).map { _ in pool[Int(rng.below(UInt64(pool.count)))] })
            if ExactDedup.normalizedKey(t) != ExactDedup.generalKey(t) {
                XCTFail("differs on \(String(decoding: t, as: UTF8.self).unicodeScalars.map { String($0.value, radix: 16) })"); return
            }
        }
    }

    func testUnionFindRootIsTheSmallest() {
        var uf = UnionFind(count: 6)
        uf.union(4, 5); uf.union(5, 2); uf.union(3, 4)
        XCTAssertEqual(uf.find(5), 2)
        XCTAssertFalse(uf.union(2, 3))
        XCTAssertEqual(uf.find(0), 0)
    }

    /// The mode test (32 ASCII bytes a step) counts as a scalar-by-scalar count does, on
    /// texts mixing ASCII words, whitespace runs, CJK and other scripts at every offset
    /// around its 32-byte blocks.
    func testMostlyUnspacedAgreesWithAScalarCount() {
        func reference(_ s: String) -> Bool {
            var nonSpace = 0, unspaced = 0
            for c in s.unicodeScalars where !UnicodeData.isSpace(c.value) {
                nonSpace += 1
                if Shingler.isUnspaced(c.value) { unspaced += 1 }
            }
            return 2 * unspaced > nonSpace
        }
        let pieces = ["word ", "Hello, world. ", "\t\n  ", "中文", "字", "ひらがな", "é", "🙂", "x", "  ", "ไทย", "abcdefghij"]
        var rng = SplitMix64(seed: 5)
        for _ in 0..<5_000 {
            var s = ""
            for _ in 0..<Int(rng.next() % 40) { s += pieces[Int(rng.next() % UInt64(pieces.count))] }
            let bytes = Array(s.utf8)
            XCTAssertEqual(bytes.withUnsafeBufferPointer(Shingler.isMostlyUnspaced), reference(s), s)
        }
    }
    /// Random texts over every ASCII byte (letters, digits, punctuation, symbols, control
    /// characters, the six whitespace bytes in runs) at lengths around the C kernels'
    /// 16-byte blocks, a few with non-ASCII scalars inside: the exact key equals its
    /// definition (`generalKey`), and the shingler's words and shingles equal a split on
    /// whitespace with capitals lowercased.
    func testASCIIBlockKernelsEqualTheirDefinitions() {
        var rng = SplitMix64(seed: 16)
        let whitespace: [UInt8] = [0x20, 0x09, 0x0A, 0x0B, 0x0C, 0x0D]
        let nonASCII = ["é", "中", "\u{A0}", "\u{3000}", "\u{2014}", "Ａ"].map { Array($0.utf8) }
        for round in 0..<20_000 {
            let length = Int(rng.below(round < 10_000 ? 80 : 400))
            var t: [UInt8] = []
            while t.count < length {
                switch rng.below(10) {
                case 0, 1: t += (0..<(1 + Int(rng.below(4)))).map { _ in whitespace[Int(rng.below(6))] }
                case 2: t.append(UInt8(rng.below(128)))
                case 3: t.append([0x2C, 0x2E, 0x21, 0x27, 0x2D, 0x28, 0x24, 0x2B, 0x5F, 0x7E][Int(rng.below(10))])
                default: t += (0..<(1 + Int(rng.below(9)))).map { _ in UInt8(rng.below(2) == 0 ? 0x61 + rng.below(26) : 0x41 + rng.below(26)) }
                }
            }
            let ascii = t
            if round % 4 == 3, !t.isEmpty { t.insert(contentsOf: nonASCII[Int(rng.below(6))], at: Int(rng.below(UInt64(t.count)))) }
            let fast = t.withUnsafeBufferPointer { ExactDedup.withFastKey($0) { Array($0) } }
            if fast != ExactDedup.generalKey(t) {
                XCTFail("exact key differs on \(t)"); return
            }
            // The shingler on the all-ASCII text (word mode).
            let words = ascii.split(whereSeparator: { whitespace.contains($0) }).map { w in
                String(decoding: w.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }, as: UTF8.self)
            }
            let n = 1 + Int(rng.below(5))
            let want = words.isEmpty ? [] : words.count < n ? [words.joined(separator: " ")] : (0...(words.count - n)).map { words[$0..<($0 + n)].joined(separator: " ") }
            var sh = Shingler(ngram: n)
            let count = ascii.withUnsafeBufferPointer { sh.prepare($0) }
            let got = (0..<count).map { sh.shingleText($0) }
            if got != want { XCTFail("shingles differ on \(ascii): \(got) != \(want)"); return }
        }
    }
}
