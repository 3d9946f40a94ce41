import BPE
import TokenmillCore
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class BPEBehaviourTests: XCTestCase {
    func testSpecialTokenTextIsEncodedAsOrdinaryText() throws {
        for name in ["gpt2", "cl100k_base", "o200k_base"] {
            let t = try TokenizerLoader.load(name).addingSpecialTokens([])
            for special in ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|endofprompt|>"] {
                let ids = t.encodeOrdinary(Array(special.utf8))
                XCTAssertGreaterThan(ids.count, 1, "\(name): \(special) must not become one special token")
                XCTAssertFalse(ids.contains(t.eosID))
                XCTAssertTrue(ids.allSatisfy { Int($0) < t.ranks.count }, "\(name): only ordinary ranks")
                XCTAssertEqual(try t.decode(ids), Array(special.utf8))
            }
        }
    }

    func testChatTokensAreAddedAtOpenAIIds() throws {
        let cl = try TokenizerLoader.load("cl100k_base")
        let (a, b) = TokenizerLoader.chatTokenIDs(for: cl)
        XCTAssertEqual([a, b], [100264, 100265])
        let chat = try cl.addingSpecialTokens([("<|im_start|>", a), ("<|im_end|>", b)])
        XCTAssertEqual(chat.specialID("<|im_end|>"), 100265)
        XCTAssertEqual(chat.vocabSize, 100277)
        XCTAssertEqual(try chat.decode([100264]), Array("<|im_start|>".utf8))
        let o = try TokenizerLoader.load("o200k_base")
        XCTAssertEqual([TokenizerLoader.chatTokenIDs(for: o).0, TokenizerLoader.chatTokenIDs(for: o).1], [200264, 200265])
        // An id that is already a rank is refused.
        XCTAssertThrowsError(try cl.addingSpecialTokens([("<|x|>", 5)]))
    }

    /// Differential test against a slow, obviously-correct twin of the merge loop: merge
    /// the lowest-ranked adjacent pair (leftmost on ties) until none is in the vocabulary.
    func testMergeLoopEqualsSlowTwinOnRandomPieces() throws {
        let t = try TokenizerLoader.load("cl100k_base")
        var rng = SplitMix64(seed: 11)
        let alphabet = Array("aeiou tnsrl THE.,'\n0123456789éß中文😀".unicodeScalars)
        for _ in 0..<400 {
            var s = ""
            for _ in 0..<(1 + Int(rng.below(40))) { s.unicodeScalars.append(alphabet[Int(rng.below(UInt64(alphabet.count)))]) }
            let bytes = Array(s.utf8)
            // Whole text through the fast path vs. pre-token pieces through the twin.
            var twin: [UInt32] = []
            for piece in pieces(t, bytes) { twin += slowMerge(t, piece) }
            XCTAssertEqual(t.encodeOrdinary(bytes), twin, s.debugDescription)
        }
    }

    /// The flat merge (pieces of up to 16 parts, ranks held in vector registers, parts in
    /// place under a live mask) at every length around its limit: words of 2 to 20 letters
    /// of rare letter pairs (so few are tokens and most merge in many steps), a space
    /// before some, and runs of CJK and Cyrillic characters (the character merge uses the
    /// same loop for up to 16 characters), against the slow twin, for both vocabularies.
    func testFlatMergeAtEveryLengthEqualsSlowTwin() throws {
        let letters = Array("qxzjkvwyfbgpmhcd".unicodeScalars), wide = Array("北京微信彩票赛车中文字典鳥龍Жщъыэюяфх".unicodeScalars)
        for name in ["cl100k_base", "o200k_base"] {
            let t = try TokenizerLoader.load(name)
            var rng = SplitMix64(seed: 29)
            for k in 0..<1200 {
                var s = rng.below(2) == 0 ? " " : ""
                let pool = k % 3 == 2 ? wide : letters
                for _ in 0..<(2 + Int(rng.below(19))) { s.unicodeScalars.append(pool[Int(rng.below(UInt64(pool.count)))]) }
                let bytes = Array(s.utf8)
                var twin: [UInt32] = []
                for piece in pieces(t, bytes) { twin += slowMerge(t, piece) }
                XCTAssertEqual(t.encodeOrdinary(bytes), twin, "\(name): \(s.debugDescription)")
            }
        }
    }

    /// `pairRank` answers through two filters before it probes the pair table (a bitmap of
    /// the tokens that start or end a pair, a Bloom filter of the pairs): they may only
    /// answer "no pair" when there is none. Oracle: merging a token's own bytes with the slow
    /// twin; its last merge (a, b) is the one pair the table holds for it. Every token's
    /// pair must be found, and for random pairs of tokens the answer must be the token
    /// their bytes make when that is its pair, and none otherwise.
    func testPairRankFindsEveryTokensPairAndNoOther() throws {
        for name in ["cl100k_base", "o200k_base"] {
            let t = try TokenizerLoader.load(name)
            let table = t.ranks
            var found = 0
            for r in 0..<table.count where table.isToken(r) && table.tokenBytes(r).count > 1 {
                guard let (a, b) = lastMerge(t, Array(table.tokenBytes(r))) else {
                    XCTFail("\(name): token \(r) does not merge from its bytes"); continue
                }
                XCTAssertEqual(table.pairRank(a, b), UInt32(r), "\(name): pair of token \(r)")
                found += 1
            }
            XCTAssertGreaterThan(found, name == "o200k_base" ? 199_000 : 99_000)
            var rng = SplitMix64(seed: 3)
            var positives = 0
            for k in 0..<200_000 {
                // Half the draws among the 4,096 lowest ranks, where most real pairs are.
                let bound = UInt64(k % 2 == 0 ? 4096 : table.count)
                let a = UInt32(rng.below(bound)), b = UInt32(rng.below(bound))
                guard table.isToken(Int(a)), table.isToken(Int(b)) else { continue }
                let joined = Array(table.tokenBytes(Int(a))) + Array(table.tokenBytes(Int(b)))
                let whole = joined.withUnsafeBufferPointer { table.rank($0.baseAddress!, $0.count) }
                var want = RankTable.none
                if whole != RankTable.none, let (x, y) = lastMerge(t, joined), x == a, y == b { want = whole }
                if want != RankTable.none { positives += 1 }
                XCTAssertEqual(table.pairRank(a, b), want, "\(name): pair (\(a), \(b))")
            }
            XCTAssertGreaterThan(positives, 100, "\(name): the draws must include real pairs")
        }
    }

    /// The token ids of the last merge when `bytes` are merged alone, if they end as one token.
    func lastMerge(_ t: Tokenizer, _ bytes: [UInt8]) -> (UInt32, UInt32)? {
        func rank(_ b: [UInt8]) -> UInt32? {
            let r = b.withUnsafeBufferPointer { t.ranks.rank($0.baseAddress!, $0.count) }
            return r == RankTable.none ? nil : r
        }
        var parts = bytes.map { [$0] }
        var last: (UInt32, UInt32)? = nil
        while parts.count > 1 {
            var best: (UInt32, Int)? = nil
            for i in 0..<(parts.count - 1) {
                if let r = rank(parts[i] + parts[i + 1]), best == nil || r < best!.0 { best = (r, i) }
            }
            guard let (_, i) = best else { return nil }
            last = (rank(parts[i])!, rank(parts[i + 1])!)
            parts[i] += parts[i + 1]
            parts.remove(at: i + 1)
        }
        return last
    }

    func pieces(_ t: Tokenizer, _ b: [UInt8]) -> [[UInt8]] {
        var out: [[UInt8]] = []
        b.withUnsafeBufferPointer { p in t.pretokenizer.split(p.baseAddress!, p.count) { s, e in out.append(Array(b[s..<e])) } }
        return out
    }

    func slowMerge(_ t: Tokenizer, _ piece: [UInt8]) -> [UInt32] {
        func rank(_ b: [UInt8]) -> UInt32? {
            let r = b.withUnsafeBufferPointer { t.ranks.rank($0.baseAddress!, $0.count) }
            return r == RankTable.none ? nil : r
        }
        var parts = piece.map { [$0] }
        while parts.count > 1 {
            var best: (UInt32, Int)? = nil
            for i in 0..<(parts.count - 1) {
                if let r = rank(parts[i] + parts[i + 1]), best == nil || r < best!.0 { best = (r, i) }
            }
            guard let (_, i) = best else { break }
            parts[i] += parts[i + 1]
            parts.remove(at: i + 1)
        }
        return parts.map { rank($0)! }
    }

    func testPiecesTileTheTextForEveryPattern() throws {
        var rng = SplitMix64(seed: 5)
        let alphabet = Array(" \t\r\n\u{A0}\u{3000}aZ'sé\u{301}1٣中/.!😀".unicodeScalars)
        for name in ["gpt2", "cl100k_base", "o200k_base"] {
            let t = try TokenizerLoader.load(name)
            for _ in 0..<300 {
                var s = ""
                for _ in 0..<Int(rng.below(30)) { s.unicodeScalars.append(alphabet[Int(rng.below(UInt64(alphabet.count)))]) }
                let b = Array(s.utf8)
                let ps = pieces(t, b)
                XCTAssertEqual(ps.flatMap { $0 }, b)
                XCTAssertFalse(ps.contains { $0.isEmpty })
            }
        }
    }

    func testUnknownTokenizerIsRefusedWithTheNames() {
        XCTAssertThrowsError(try TokenizerLoader.load("llama99")) { e in
            XCTAssertEqual((e as? TokenmillError)?.exitCode, 2)
            XCTAssertTrue("\(e)".contains("cl100k_base"))
        }
    }

    /// A tokenizer.json without `model.type` (older exports of BERT, T5, ...) is refused
    /// naming the model its fields show, as `tokenizers` reads it, not as a broken BPE.
    func testARefusalNamesTheModelAFileWithoutTypeHolds() throws {
        let dir = "/tmp/tokenmill-untyped-\(getpid())"
        try FileSystem.makeDirectories(dir)
        defer { FileSystem.removeTree(dir) }
        let cases: [(String, String)] = [
            (###"{"unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": {"[UNK]": 0, "a": 1}}"###, "model WordPiece"),
            (#"{"unk_id": 0, "vocab": [["<unk>", 0.0], ["a", -1.5]]}"#, "model Unigram"),
            (#"{"unk_token": "<unk>", "vocab": {"<unk>": 0, "a": 1}}"#, "model WordLevel"),
            (#"{"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"[UNK]": 0}}"#, "model WordPiece: only BPE"),
        ]
        for (k, (model, expected)) in cases.enumerated() {
            let path = "\(dir)/t\(k).json"
            try FileSystem.writeAtomically(path, Array("{\"model\": \(model)}".utf8))
            XCTAssertThrowsError(try TokenizerLoader.load(path)) { error in
                let message = "\(error)"
                XCTAssertTrue(message.contains(expected) && message.contains(path), message)
            }
        }
    }
}

