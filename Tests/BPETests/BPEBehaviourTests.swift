import BPE
import TokenmillCore
import XCTest

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
}
